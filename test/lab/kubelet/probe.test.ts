import { describe, expect, it } from 'vitest';
import { parseProbe, probeDue, PROBE_FLOORS, recordProbe, startProbe, type ProbeSpec, type ProbeState } from '../../../src/lab/kubelet/probe.js';
import { backoffResets, restartDelayMs, shouldRestart } from '../../../src/lab/kubelet/restart.js';
import { FakeClock } from '../../../src/platform/clock.js';

const ports = [{ name: 'health', containerPort: 8080 }];
/** The operator's readiness probe, with Kubernetes' defaults as the pod record holds them. */
const operatorProbe = { httpGet: { path: '/readiness', port: 8080, scheme: 'HTTP' }, initialDelaySeconds: 10, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 };

function spec(v: unknown, speedup = 1): ProbeSpec {
  const r = parseProbe(v, ports, speedup);
  if (r === undefined || !r.ok) throw new Error(`no probe: ${JSON.stringify(r)}`);
  return r.value;
}

/**
 * Drives the state machine on a fake clock as the kubelet does (a probe whenever one is due), with the
 * probe's outcome a function of the time since start; returns the readiness at each second.
 */
function simulate(s: ProbeSpec, outcome: (t: number) => boolean, seconds: number): { ready: boolean[]; probes: number } {
  const clock = new FakeClock(0);
  let state: ProbeState = startProbe(s, clock.now());
  const ready: boolean[] = [];
  for (let t = 0; t <= seconds * 1000; t += 100) {
    if (probeDue(state, clock.now())) state = recordProbe(state, outcome(clock.now()), s, clock.now());
    if (t % 1000 === 0) ready.push(state.ready);
    clock.advance(100);
  }
  return { ready, probes: state.probes };
}

describe('readiness probe: parsing', () => {
  it("Kubernetes' defaults fill what is not written", () => {
    expect(spec({ httpGet: { port: 'health' } })).toEqual({
      action: { kind: 'http', scheme: 'HTTP', host: undefined, port: 8080, path: '/', headers: {} },
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1_000,
      successThreshold: 1,
      failureThreshold: 3,
    });
  });

  it("the operator's probe, and the speed-up dividing every timing (with floors)", () => {
    expect(spec(operatorProbe)).toMatchObject({ initialDelayMs: 10_000, periodMs: 10_000, timeoutMs: 1_000 });
    expect(spec(operatorProbe, 10)).toMatchObject({ initialDelayMs: 1_000, periodMs: 1_000, timeoutMs: PROBE_FLOORS.timeoutMs });
    expect(spec(operatorProbe, 1000)).toMatchObject({ initialDelayMs: 10, periodMs: PROBE_FLOORS.periodMs, timeoutMs: PROBE_FLOORS.timeoutMs });
  });

  it('tcpSocket, exec, named and numeric-string ports; errors for what cannot run', () => {
    expect(spec({ tcpSocket: { port: '8080' } }).action).toEqual({ kind: 'tcp', host: undefined, port: 8080 });
    expect(spec({ exec: { command: ['cat', '/tmp/ok'] } }).action).toEqual({ kind: 'exec', command: ['cat', '/tmp/ok'] });
    expect(parseProbe({ httpGet: { port: 'nope' } }, ports)).toEqual({ ok: false, error: 'probe port "nope" names no container port' });
    expect(parseProbe({ grpc: { port: 1 } }, ports)).toMatchObject({ ok: false });
    expect(parseProbe(undefined, ports)).toBeUndefined();
  });
});

describe('readiness probe: state machine on a fake clock', () => {
  it('not ready until the initial delay has passed and a probe succeeded', () => {
    const r = simulate(spec(operatorProbe), () => true, 25);
    // initialDelaySeconds 10: the first probe at t=10 s passes (successThreshold 1).
    expect(r.ready.indexOf(true)).toBe(10);
    expect(r.ready.slice(0, 10).every((x) => !x)).toBe(true);
    expect(r.probes).toBe(2); // t=10 s and t=20 s
  });

  it('with the speed-up 10, the same probe answers in a tenth of the time', () => {
    const r = simulate(spec(operatorProbe, 10), () => true, 3);
    expect(r.ready).toEqual([false, true, true, true]);
  });

  it('failureThreshold consecutive failures to become not ready; fewer keep it ready', () => {
    const s = spec({ ...operatorProbe, initialDelaySeconds: 0, periodSeconds: 1 });
    // Passes, then fails from t=5 s on: probes at 5, 6, 7 fail → not ready from t=7 s.
    const r = simulate(s, (t) => t < 5_000, 10);
    expect(r.ready).toEqual([true, true, true, true, true, true, true, false, false, false, false]);
    // Two failures (t=5, 6) then success: stays ready throughout.
    const blip = simulate(s, (t) => t < 5_000 || t >= 7_000, 10);
    expect(blip.ready.every((x) => x)).toBe(true);
  });

  it('successThreshold consecutive passes to become ready again', () => {
    const s = spec({ ...operatorProbe, initialDelaySeconds: 0, periodSeconds: 1, successThreshold: 3, failureThreshold: 1 });
    const r = simulate(s, (t) => t < 2_000 || t >= 5_000, 10);
    // Passes at 0 and 1 s (two of the three needed), fails at 2–4 s, passes at 5, 6, 7 s: ready from 7 s.
    expect(r.ready).toEqual([false, false, false, false, false, false, false, true, true, true, true]);
  });

  it('alternating outcomes never reach a threshold of 2: the verdict stays', () => {
    const s = spec({ ...operatorProbe, initialDelaySeconds: 0, periodSeconds: 1, successThreshold: 2, failureThreshold: 2 });
    const r = simulate(s, (t) => Math.floor(t / 1000) % 2 === 0, 8);
    expect(r.ready.every((x) => !x)).toBe(true);
  });

  it('a probe that overran its period runs again at once; a restart starts over', () => {
    const s = spec({ ...operatorProbe, initialDelaySeconds: 0, periodSeconds: 1 });
    let st = recordProbe(startProbe(s, 0), true, s, 0);
    expect(st.nextAt).toBe(1_000);
    st = recordProbe(st, true, s, 3_500);
    expect(st.nextAt).toBe(3_500);
    expect(startProbe(s, 10_000)).toEqual({ ready: false, last: undefined, run: 0, nextAt: 10_000, probes: 0 });
  });
});

describe('restart back-off', () => {
  it('10 s doubling to 5 min, divided by the speed-up', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 30].map((n) => restartDelayMs(n))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    expect(restartDelayMs(1, 10)).toBe(1_000);
    expect(restartDelayMs(0)).toBe(10_000);
  });

  it('reset after 10 minutes of running', () => {
    expect(backoffResets(599_999)).toBe(false);
    expect(backoffResets(600_000)).toBe(true);
    expect(backoffResets(60_000, 10)).toBe(true);
  });

  it('restartPolicy', () => {
    expect(shouldRestart('Always', 0)).toBe(true);
    expect(shouldRestart('Always', 1)).toBe(true);
    expect(shouldRestart('OnFailure', 0)).toBe(false);
    expect(shouldRestart('OnFailure', 2)).toBe(true);
    expect(shouldRestart('OnFailure', undefined)).toBe(true);
    expect(shouldRestart('Never', 1)).toBe(false);
  });
});
