/**
 * Readiness probes as the kubelet runs them: the probe's spec read from the container (Kubernetes'
 * defaults, the lab's speed-up applied) and the result state machine. Pure: the caller runs the probe
 * and passes the time.
 *
 * Kubernetes' semantics: the container is not ready until a probe passes; no probe runs before
 * `initialDelaySeconds` after the container started; then one every `periodSeconds`, each failing after
 * `timeoutSeconds`; `successThreshold` consecutive passes make it ready, `failureThreshold` consecutive
 * failures make it not ready; anything in between keeps the last verdict. A restart starts over.
 */
import type { Built } from './env.js';

/** What a probe does. */
export type ProbeAction =
  | { kind: 'http'; scheme: 'HTTP' | 'HTTPS'; host: string | undefined; port: number; path: string; headers: Record<string, string> }
  | { kind: 'tcp'; host: string | undefined; port: number }
  | { kind: 'exec'; command: string[] };

/** A probe with its timings in ms (already divided by the speed-up). */
export interface ProbeSpec {
  action: ProbeAction;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

/** Lower bounds of the scaled timings: a fast lab must still leave a loaded machine time to answer. */
export const PROBE_FLOORS = { periodMs: 100, timeoutMs: 500 } as const;

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function seconds(v: unknown, fallback: number, min: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.max(min, v) : fallback;
}

/** A container port as the probe sees it. */
export interface PortSpec {
  name?: string | undefined;
  containerPort: number;
}

function port(v: unknown, ports: readonly PortSpec[]): Built<number> {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535) return { ok: true, value: v };
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return port(Number(v), ports);
    const named = ports.find((p) => p.name === v);
    if (named !== undefined) return { ok: true, value: named.containerPort };
    return { ok: false, error: `probe port ${JSON.stringify(v)} names no container port` };
  }
  return { ok: false, error: `probe port ${JSON.stringify(v)} is not a port` };
}

/**
 * The readiness probe of a container, or undefined when it has none. Kubernetes' defaults fill the gaps
 * (period 10 s, timeout 1 s, success 1, failure 3, no initial delay); every duration is divided by
 * `speedup` (≥ 1) and then held above {@link PROBE_FLOORS}. Named ports resolve through the container's ports.
 */
export function parseProbe(v: unknown, ports: readonly PortSpec[], speedup = 1): Built<ProbeSpec> | undefined {
  const p = obj(v);
  if (p === undefined) return undefined;
  const scale = (s: number): number => (s * 1000) / Math.max(1, speedup);
  let action: ProbeAction;
  const http = obj(p['httpGet']);
  const tcp = obj(p['tcpSocket']);
  const exec = obj(p['exec']);
  if (http !== undefined) {
    const n = port(http['port'], ports);
    if (!n.ok) return n;
    const headers: Record<string, string> = {};
    for (const h of Array.isArray(http['httpHeaders']) ? (http['httpHeaders'] as unknown[]) : []) {
      const o = obj(h);
      if (typeof o?.['name'] === 'string' && typeof o['value'] === 'string') headers[o['name']] = o['value'];
    }
    const path = typeof http['path'] === 'string' && http['path'] !== '' ? http['path'] : '/';
    action = { kind: 'http', scheme: http['scheme'] === 'HTTPS' ? 'HTTPS' : 'HTTP', host: typeof http['host'] === 'string' && http['host'] !== '' ? http['host'] : undefined, port: n.value, path: path.startsWith('/') ? path : `/${path}`, headers };
  } else if (tcp !== undefined) {
    const n = port(tcp['port'], ports);
    if (!n.ok) return n;
    action = { kind: 'tcp', host: typeof tcp['host'] === 'string' && tcp['host'] !== '' ? tcp['host'] : undefined, port: n.value };
  } else if (exec !== undefined && Array.isArray(exec['command']) && exec['command'].length > 0) {
    action = { kind: 'exec', command: (exec['command'] as unknown[]).map(String) };
  } else {
    return { ok: false, error: 'the probe has no httpGet, tcpSocket or exec action the lab kubelet runs' };
  }
  return {
    ok: true,
    value: {
      action,
      initialDelayMs: scale(seconds(p['initialDelaySeconds'], 0, 0)),
      periodMs: Math.max(PROBE_FLOORS.periodMs, scale(seconds(p['periodSeconds'], 10, 1))),
      timeoutMs: Math.max(PROBE_FLOORS.timeoutMs, scale(seconds(p['timeoutSeconds'], 1, 1))),
      successThreshold: Math.trunc(seconds(p['successThreshold'], 1, 1)),
      failureThreshold: Math.trunc(seconds(p['failureThreshold'], 3, 1)),
    },
  };
}

/** The probe's verdict so far and when it runs next. */
export interface ProbeState {
  /** The container's readiness (false until enough probes passed). */
  ready: boolean;
  /** The last probe's outcome, and how many probes in a row had it. */
  last: boolean | undefined;
  run: number;
  /** When the next probe is due (ms). */
  nextAt: number;
  /** Probes run so far (for logs and tests). */
  probes: number;
}

/** The state when the container (re)starts at `startedAt`: not ready, first probe after the initial delay. */
export function startProbe(spec: ProbeSpec, startedAt: number): ProbeState {
  return { ready: false, last: undefined, run: 0, nextAt: startedAt + spec.initialDelayMs, probes: 0 };
}

/** True when a probe is due at `now`. */
export function probeDue(state: ProbeState, now: number): boolean {
  return now >= state.nextAt;
}

/**
 * The state after a probe with outcome `ok` that ran at `now`: consecutive outcomes are counted, the
 * verdict moves only at the thresholds, and the next probe is one period after the one just due (or now,
 * when the probe overran its period).
 */
export function recordProbe(state: ProbeState, ok: boolean, spec: ProbeSpec, now: number): ProbeState {
  const run = state.last === ok ? state.run + 1 : 1;
  let ready = state.ready;
  if (ok && run >= spec.successThreshold) ready = true;
  if (!ok && run >= spec.failureThreshold) ready = false;
  return { ready, last: ok, run, nextAt: Math.max(state.nextAt + spec.periodMs, now), probes: state.probes + 1 };
}
