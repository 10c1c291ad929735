/**
 * The gateway's own probes of the outside world (Calico's `icmpProbe` / `httpProbe`): one attempt at one
 * target, with a deadline. Never reject.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Shell } from '../platform/shell.js';

/** The outcome of one probe attempt. */
export interface ProbeOutcome {
  ok: boolean;
  /** Why it failed (for the readiness report and logs). */
  detail?: string;
}

/** One probe attempt against one target. */
export interface Prober {
  probe(target: string, timeoutMs: number): Promise<ProbeOutcome>;
}

/**
 * ICMP echo with iputils `ping` (one packet, `-W` deadline in seconds with a fraction): no raw socket
 * code of our own, and the capability it needs (NET_RAW, or the unprivileged ping group) is the one the
 * operator already grants the gateway container. Runs in the pod's network namespace (where the
 * process is).
 */
export class PingProber implements Prober {
  constructor(private readonly shell: Shell) {}

  async probe(target: string, timeoutMs: number): Promise<ProbeOutcome> {
    const family = isIP(target) === 6 ? '-6' : '-4';
    const wait = Math.max(0.1, timeoutMs / 1000).toFixed(1);
    try {
      const r = await this.shell.run(['ping', family, '-n', '-q', '-c', '1', '-W', wait, target], { allowFailure: true, timeoutMs: timeoutMs + 2000 });
      if (r.exitCode === 0) return { ok: true };
      return { ok: false, detail: r.exitCode === 1 ? 'no echo reply' : (r.stderr.trim().split('\n')[0] ?? `ping exited ${r.exitCode}`) };
    } catch (e) {
      return { ok: false, detail: e instanceof Error ? e.message : String(e) };
    }
  }
}

/**
 * HTTP(S) GET of the URL; any 2xx answer within the deadline succeeds (redirects are not followed: a 3xx
 * proves the service answers but is not what was asked for, so it fails). TLS certificates are checked.
 */
export class HttpProber implements Prober {
  probe(target: string, timeoutMs: number): Promise<ProbeOutcome> {
    return new Promise<ProbeOutcome>((resolve) => {
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        resolve({ ok: false, detail: 'not a URL' });
        return;
      }
      let settled = false;
      const finish = (o: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(o);
      };
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method: 'GET', agent: false, headers: { connection: 'close', 'user-agent': 'egw-gateway-probe' } }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        finish(status >= 200 && status < 300 ? { ok: true } : { ok: false, detail: `HTTP ${status}` });
      });
      const timer = setTimeout(() => finish({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, detail: e.code ?? e.message }));
      req.end();
    });
  }
}
