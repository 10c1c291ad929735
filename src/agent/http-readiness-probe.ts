import { request } from 'node:http';
import type { PollOutcome, ReadinessProbe } from './gateway-poller.js';

/** The path Calico's client nodes poll on a gateway's health port (and the kubelet's readiness probe). */
export const READINESS_PATH = '/readiness';

/**
 * The real readiness poll: `GET http://<ip>:<port>/readiness` over a fresh TCP connection (no keep-alive,
 * so each poll proves the path to the gateway, not an old socket), with one deadline for connect and
 * answer. 200 is up; any other status is `not-ready`; no answer within `timeoutMs` is `timeout`; a
 * refused or unreachable connection is `error`. Never rejects.
 */
export class HttpReadinessProbe implements ReadinessProbe {
  check(target: { ip: string; port: number }, timeoutMs: number): Promise<PollOutcome> {
    return new Promise<PollOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: PollOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(outcome);
      };
      const req = request({ host: target.ip, port: target.port, path: READINESS_PATH, method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        finish(status === 200 ? { ok: true } : { ok: false, reason: 'not-ready', detail: `HTTP ${status}` });
      });
      const timer = setTimeout(() => finish({ ok: false, reason: 'timeout', detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: 'error', detail: e.code ?? e.message }));
      req.end();
    });
  }
}
