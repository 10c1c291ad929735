import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { PollOutcome, ReadinessProbe } from './gateway-poller.js';

/** The path Calico's client nodes poll on a gateway's health port (and the kubelet's readiness probe). */
export const READINESS_PATH = '/readiness';

/**
 * The real readiness poll: `GET http://<ip>:<port>/readiness` over a fresh TCP connection (no keep-alive,
 * so each poll proves the path to the gateway, not an old socket), with one deadline for connect and
 * answer. 200 is up; any other status is `not-ready`; no answer within `timeoutMs` is `timeout`; a
 * refused or unreachable connection is `error`. Never rejects.
 *
 * The deadline is judged fairly when the agent's own event loop is late: the verdict `timeout` is given
 * only after the loop has processed pending I/O (an answer already in the socket wins), and a deadline
 * timer that fired much later than due (the loop was blocked across it) is extended once, because
 * then the time the gateway really had is unknown. A silent gateway is still declared timed out after
 * `timeoutMs` when the agent is healthy.
 */
export class HttpReadinessProbe implements ReadinessProbe {
  check(target: { ip: string; port: number }, timeoutMs: number): Promise<PollOutcome> {
    return new Promise<PollOutcome>((resolve) => {
      let settled = false;
      let extended = false;
      const started = performance.now();
      const finish = (outcome: PollOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(outcome);
      };
      const onDeadline = (): void => {
        const late = performance.now() - started - timeoutMs;
        if (!extended && late > Math.max(25, timeoutMs / 2)) {
          extended = true;
          timer = setTimeout(onDeadline, timeoutMs);
          return;
        }
        // Let the poll phase of this loop turn deliver an answer that is already there.
        setImmediate(() => finish({ ok: false, reason: 'timeout', detail: `no answer within ${timeoutMs} ms` }));
      };
      const req = request({ host: target.ip, port: target.port, path: READINESS_PATH, method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        finish(status === 200 ? { ok: true } : { ok: false, reason: 'not-ready', detail: `HTTP ${status}` });
      });
      let timer = setTimeout(onDeadline, timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: 'error', detail: e.code ?? e.message }));
      req.end();
    });
  }
}
