/**
 * The webhook's HTTPS edge (node:https): `POST /validate` takes an AdmissionReview and answers one,
 * `GET /healthz` answers `ok` (readiness). Everything else is 404. The decision is the reviewer's.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { EgwError, errorMessage } from '../../platform/errors.js';
import { guardedHandler, hardenServer } from '../../platform/http-edge.js';
import type { Logger } from '../../platform/logger.js';
import type { AdmissionReviewResponse } from './admission.js';
import type { WebhookTls } from './x509.js';

/** The path the API server posts AdmissionReviews to. */
export const WEBHOOK_PATH = '/validate';

/** The largest request body read (the API server's own request limit is 3 MiB; a review holds two objects). */
const MAX_BODY = 8 * 1024 * 1024;

/** What the server needs from the reviewer. */
export interface ReviewPort {
  review(body: unknown): Promise<AdmissionReviewResponse>;
}

/** A running HTTPS server; {@link close} stops it. */
export interface RunningWebhookServer {
  /** The bound address (the port is the real one when 0 was asked for). */
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Parses `host:port` (IPv4 or name; port 0 = any free one). Throws `InvalidInput`. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]*):(\d{1,5})$/.exec(text.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || port > 65535) {
    throw new EgwError('InvalidInput', `webhook listen address "${text}" is not HOST:PORT`, { hint: 'e.g. 0.0.0.0:9443 or 127.0.0.1:0' });
  }
  return { host: m[1] === '' ? '0.0.0.0' : m[1]!, port };
}

/**
 * Starts the HTTPS server with `tls` on `listen` and resolves once it accepts connections. A request never
 * gets an exception: a body that is not JSON is answered 400, a reviewer failure 500 (the reviewer itself
 * does not throw). Throws `InvalidInput` when the address cannot be bound.
 */
export async function startWebhookServer(
  deps: { reviewer: ReviewPort; logger: Logger },
  tls: WebhookTls,
  listen: { host: string; port: number },
): Promise<RunningWebhookServer> {
  const handler = guardedHandler(
    (req, res, target) => {
      const send = (code: number, body: string, type = 'application/json') => {
        res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.method === 'GET' && target.path === '/healthz' && target.query === '') return send(200, 'ok', 'text/plain');
      if (req.method !== 'POST' || target.path !== WEBHOOK_PATH) return send(404, '{"message":"not found"}');
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          send(413, '{"message":"request body too large"}');
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return send(400, '{"message":"the body is not JSON"}');
        }
        deps.reviewer.review(body).then(
          (answer) => send(200, JSON.stringify(answer)),
          (err: unknown) => {
            deps.logger.error({ err: errorMessage(err) }, 'webhook: the reviewer failed');
            send(500, JSON.stringify({ message: `egw webhook failed: ${errorMessage(err)}` }));
          },
        );
      });
    },
    (err) => deps.logger.error({ err: errorMessage(err) }, 'webhook: request failed'),
  );
  const server: Server = hardenServer(createServer({ cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' }, handler));
  // The API server keeps connections alive; a short idle timeout frees them when it moves to a replica.
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new EgwError('InvalidInput', `cannot listen on ${listen.host}:${listen.port}: ${err.message}`, { hint: 'pick a free port for --webhook-listen', cause: err })));
    server.listen(listen.port, listen.host, () => resolve());
  });
  server.on('error', (err) => deps.logger.error({ err: err.message }, 'webhook server error'));
  const addr = server.address() as AddressInfo;
  deps.logger.info({ host: addr.address, port: addr.port }, 'webhook serving');
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
