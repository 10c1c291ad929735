/**
 * The edge every HTTP server of egw shares (aws-sim and its IMDS, the gateway's health port, the agent's
 * metrics, the webhook): a malformed request is answered 400, a handler failure 500, and nothing a client
 * sends can throw out of a request handler and stop the process (docs/security.md).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

/** The path and query of a request, split but not decoded (no server of ours needs decoding). */
export interface RequestTarget {
  /** Starts with a single `/`. */
  readonly path: string;
  /** After the first `?`, without it ('' when none). */
  readonly query: string;
}

/** The longest request target accepted (Node's parser bounds the whole header block at 16 KiB). */
const MAX_TARGET = 8192;

/**
 * Splits an origin-form request target (`/path?query`). Anything else is malformed: absolute-form
 * (`http://…`), `*`, an empty target, a target starting with `//` (resolved against a base URL it names
 * a host, and `//[` throws in `new URL`), control characters, or more than 8 KiB. Pure; never throws.
 */
export function parseRequestTarget(raw: string | undefined): RequestTarget | undefined {
  if (raw === undefined || raw.length === 0 || raw.length > MAX_TARGET || raw[0] !== '/' || raw[1] === '/') return undefined;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\u0000-\u0020\u007f]/.test(raw)) return undefined;
  const q = raw.indexOf('?');
  return q < 0 ? { path: raw, query: '' } : { path: raw.slice(0, q), query: raw.slice(q + 1) };
}

/** A request handler behind {@link guardedHandler}: it gets the parsed target, and may be async. */
export type GuardedHandler = (req: IncomingMessage, res: ServerResponse, target: RequestTarget) => void | Promise<void>;

function finish(res: ServerResponse, status: number, body: string): void {
  if (res.headersSent || res.writableEnded) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
}

/**
 * Wraps a request handler: a malformed target is answered `400 Bad Request` without calling it; a throw
 * or a rejected promise is answered `500` (or the connection is closed when an answer was under way) and
 * reported to `onError`; errors of the request and response streams (a client that resets mid-upload)
 * are absorbed. The process never sees an exception from a request.
 */
export function guardedHandler(handler: GuardedHandler, onError?: (err: unknown) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Without a listener, an 'error' on either stream would be thrown as an uncaught exception.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const failed = (err: unknown): void => {
      try {
        onError?.(err);
      } finally {
        finish(res, 500, 'internal error\n');
      }
    };
    const target = parseRequestTarget(req.url);
    if (target === undefined) {
      finish(res, 400, 'bad request\n');
      return;
    }
    try {
      const pending = handler(req, res, target);
      if (pending !== undefined) pending.catch(failed);
    } catch (err) {
      failed(err);
    }
  };
}

/**
 * Answers a request Node's parser refuses (garbage, a bad header, a header block too large) with
 * `400 Bad Request` and closes the connection; socket errors of such clients go nowhere else.
 */
export function hardenServer<S extends Server | HttpsServer>(server: S): S {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    socket.on('error', () => undefined);
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return server;
}
