/**
 * The thin edge to the API server: JSON requests and line-delimited watch streams over node:https, with
 * the connection settings (server, CA, client certificate or token) taken from a kubeconfig by
 * `@kubernetes/client-node`. egw does its own requests instead of the client's generated APIs and informers
 * because it needs exact control of watches (the client's watches can stop silently and never restart).
 */
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { EgwError } from '../../platform/errors.js';

/** A response: status code and the parsed JSON body (undefined when the body is not JSON). */
export interface KubeResponse {
  status: number;
  body: unknown;
}

/** Options of {@link KubeHttp}. */
export interface KubeHttpOptions {
  /** Deadline of one request (not of a watch stream), ms. Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * How many parsed lines a watch stream holds for a consumer that does not read, before it stops reading
   * the response (TCP then pushes back on the API server). Default {@link WATCH_HIGH_WATER}.
   */
  watchHighWater?: number;
}

/** Default high-water mark of a watch stream's buffer, in lines (as the etcd backend's 64 responses). */
export const WATCH_HIGH_WATER = 64;

/** Where the kubeconfig comes from: a file, else KUBECONFIG, else the in-cluster service account. */
export function loadKubeConfig(path: string | undefined, env: Record<string, string | undefined>): { kc: KubeConfig; source: string } {
  const kc = new KubeConfig();
  try {
    if (path !== undefined && path !== '') {
      kc.loadFromFile(path);
      return { kc, source: path };
    }
    const fromEnv = env['KUBECONFIG'];
    if (fromEnv !== undefined && fromEnv !== '') {
      kc.loadFromFile(fromEnv.split(':')[0]!);
      return { kc, source: fromEnv };
    }
    if (env['KUBERNETES_SERVICE_HOST'] !== undefined && env['KUBERNETES_SERVICE_HOST'] !== '') {
      kc.loadFromCluster();
      return { kc, source: 'in-cluster service account' };
    }
  } catch (err) {
    throw new EgwError('DatastoreUnavailable', `cannot load the kubeconfig ${path ?? env['KUBECONFIG'] ?? ''}: ${(err as Error).message}`, {
      retry: 'terminal',
      cause: err,
      hint: 'give kubernetes:/path/to/kubeconfig, set KUBECONFIG, or run in a pod with a service account',
    });
  }
  throw new EgwError('DatastoreUnavailable', 'no kubeconfig: none given, KUBECONFIG is not set and this is not a pod (KUBERNETES_SERVICE_HOST is not set)', {
    retry: 'terminal',
    hint: 'give kubernetes:/path/to/kubeconfig, set KUBECONFIG, or run in a pod with a service account',
  });
}

/** JSON over HTTPS to one API server. */
export class KubeHttp {
  readonly server: string;
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly streams = new Set<http.ClientRequest>();

  constructor(
    private readonly kc: KubeConfig,
    options: KubeHttpOptions = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) {
      throw new EgwError('DatastoreUnavailable', 'the kubeconfig has no current cluster', { retry: 'terminal', hint: 'set current-context' });
    }
    this.server = cluster.server;
    this.url = new URL(cluster.server);
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.highWater = Math.max(1, options.watchHighWater ?? WATCH_HIGH_WATER);
  }

  private readonly highWater: number;

  private auth: { opts: https.RequestOptions; at: number } | undefined;

  /**
   * The kubeconfig's TLS options and headers, re-read every 30 s: reading them costs milliseconds (files,
   * token plugins), and in-cluster tokens rotate (hourly), so a short cache is both fast and fresh.
   */
  private async authOptions(): Promise<https.RequestOptions> {
    if (this.auth !== undefined && Date.now() - this.auth.at < 30_000) return this.auth.opts;
    const opts: https.RequestOptions = { headers: {} };
    try {
      await this.kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new EgwError('DatastoreUnavailable', `the kubeconfig's settings for ${this.server} are unusable: ${(err as Error).message}`, {
        retry: 'terminal',
        cause: err,
        hint: 'fix the kubeconfig',
      });
    }
    delete opts.agent;
    this.auth = { opts, at: Date.now() };
    return opts;
  }

  private async options(method: string, path: string): Promise<https.RequestOptions> {
    const base = this.url.pathname.replace(/\/+$/, '');
    const auth = await this.authOptions();
    const opts: https.RequestOptions = {
      ...auth,
      method,
      protocol: this.url.protocol,
      hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port === '' ? undefined : Number(this.url.port),
      path: base + path,
      headers: { ...auth.headers, Accept: 'application/json' },
      // applyToHTTPSOptions makes a new agent per call (a TLS handshake per request, ~30 ms); the TLS
      // options stay on the request, so our pooled agent keeps connections. (A kubeconfig proxy-url is
      // not supported.)
      agent: this.agent,
    };
    return opts;
  }

  /** One request; throws `DatastoreUnavailable` (retry) on connection errors and timeouts, never on a status. */
  async request(method: string, path: string, body?: unknown): Promise<KubeResponse> {
    const opts = await this.options(method, path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload !== undefined) {
      opts.headers = { ...opts.headers, 'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json', 'Content-Length': payload.length };
    }
    return new Promise<KubeResponse>((resolve, reject) => {
      const mod = this.url.protocol === 'https:' ? https : http;
      const req = mod.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.unavailable(method, path, err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(this.unavailable(method, path, err)));
      req.end(payload);
    });
  }

  /**
   * Opens a watch stream and yields its JSON lines. Ends when the server ends the stream or the signal
   * aborts (quietly); throws `DatastoreUnavailable` on connection errors, and `{status}` responses other
   * than 200 are yielded as one `{ httpStatus, body }` item. Bounded: at `watchHighWater` unread lines the
   * response is paused (nothing more is read from the socket) until the consumer has taken half of them.
   */
  async *stream(path: string, signal: AbortSignal): AsyncGenerator<unknown> {
    if (signal.aborted) return;
    const opts = await this.options('GET', path);
    const mod = this.url.protocol === 'https:' ? https : http;
    // A stream gets its own connection: it is long-lived and must not hold one of the request pool's.
    opts.agent = false;
    const queue: unknown[] = [];
    let done = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    let response: http.IncomingMessage | undefined;
    const req = mod.request(opts, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          queue.push({ httpStatus: res.statusCode ?? 0, body });
          done = true;
          notify();
        });
        return;
      }
      response = res;
      let rest = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        rest += chunk;
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl).trim();
          rest = rest.slice(nl + 1);
          if (line === '') continue;
          try {
            queue.push(JSON.parse(line));
          } catch (err) {
            failure ??= err;
          }
        }
        // A slow consumer: stop reading here (the lines of this chunk are kept, so the buffer may pass
        // the mark by one chunk's lines) and let TCP flow control hold the rest at the API server.
        if (queue.length >= this.highWater) res.pause();
        notify();
      });
      res.on('end', () => {
        done = true;
        notify();
      });
      res.on('error', (err) => {
        failure ??= err;
        done = true;
        notify();
      });
    });
    req.on('error', (err) => {
      failure ??= err;
      done = true;
      notify();
    });
    const onAbort = (): void => {
      req.destroy();
      done = true;
      notify();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.streams.add(req);
    req.end();
    try {
      for (;;) {
        if (signal.aborted) return;
        const item = queue.shift();
        if (item !== undefined) {
          if (response?.isPaused() === true && queue.length <= this.highWater / 2) response.resume();
          yield item;
          continue;
        }
        if (done) {
          if (failure !== undefined && !signal.aborted) throw this.unavailable('WATCH', path, failure);
          return;
        }
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.streams.delete(req);
      req.destroy();
    }
  }

  private unavailable(method: string, path: string, err: unknown): EgwError {
    return new EgwError('DatastoreUnavailable', `the Kubernetes API server ${this.server} did not answer ${method} ${path}: ${err instanceof Error ? err.message : String(err)}`, {
      retry: 'retry',
      cause: err,
      hint: 'check that the API server is running and reachable',
    });
  }

  /** Closes pooled connections and open streams. */
  close(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    this.agent.destroy();
  }
}
