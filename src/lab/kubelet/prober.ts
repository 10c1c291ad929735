/**
 * Running one probe action against a pod, from the kubelet's (the node's) network namespace, as the
 * kubelet does: HTTP GET (200–399 passes; HTTPS without verifying the certificate), a TCP connect, or a
 * command inside the pod's network namespace (exit 0 passes). Every probe ends within its timeout.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { errorMessage } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';
import type { ProbeAction } from './probe.js';

/** One probe's outcome; `detail` says why it failed (or the HTTP status). */
export interface ProbeOutcome {
  ok: boolean;
  detail: string;
}

/** Runs probe actions. */
export interface ProberPort {
  run(action: ProbeAction, target: { podIP: string; netns: string }, timeoutMs: number): Promise<ProbeOutcome>;
}

/** The real prober. */
export class NetProber implements ProberPort {
  constructor(private readonly shell: Shell) {}

  run(action: ProbeAction, target: { podIP: string; netns: string }, timeoutMs: number): Promise<ProbeOutcome> {
    switch (action.kind) {
      case 'http':
        return httpProbe(action, action.host ?? target.podIP, timeoutMs);
      case 'tcp':
        return tcpProbe(action.host ?? target.podIP, action.port, timeoutMs);
      case 'exec':
        return this.shell
          .run(['ip', 'netns', 'exec', target.netns, ...action.command], { timeoutMs, allowFailure: true })
          .then(
            (r) => ({ ok: r.exitCode === 0, detail: `exit ${r.exitCode}` }),
            (e: unknown) => ({ ok: false, detail: errorMessage(e) }),
          );
    }
  }
}

function httpProbe(action: Extract<ProbeAction, { kind: 'http' }>, host: string, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const request = action.scheme === 'HTTPS' ? httpsRequest : httpRequest;
    const req = request({ host, port: action.port, path: action.path, method: 'GET', headers: { 'User-Agent': 'kube-probe/egw-lab', ...action.headers }, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve({ ok: code >= 200 && code < 400, detail: `HTTP ${code}` });
    });
    const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => resolve({ ok: false, detail: e.message }));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (o: ProbeOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `timeout after ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ok: true, detail: 'connected' }));
    socket.once('error', (e) => done({ ok: false, detail: e.message }));
  });
}
