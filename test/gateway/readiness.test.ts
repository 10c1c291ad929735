import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/platform/clock.js';
import { ReadinessState } from '../../src/gateway/readiness.js';

// The readiness rules of docs/gateway.md, driven by a fake clock: facts go in at clock.now(), the
// verdict is asked at clock.now().
const S = 1000;

function machine(config: ConstructorParameters<typeof ReadinessState>[0]): { r: ReadinessState; clock: FakeClock; ready: () => boolean; reasons: () => string[] } {
  const clock = new FakeClock();
  const r = new ReadinessState(config);
  return { r, clock, ready: () => r.evaluate(clock.now()).ready, reasons: () => r.evaluate(clock.now()).reasons };
}

describe('gateway readiness', () => {
  it('without probes: ready once the data plane is programmed and the datastore answered; not after the datastore timeout', () => {
    const { r, clock, ready, reasons } = machine({ datastoreTimeoutMs: 90 * S });
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['data plane not programmed yet', 'datastore not reached yet']);
    r.setDataplane(true);
    expect(reasons()).toEqual(['datastore not reached yet']);
    r.datastore(true, clock.now());
    expect(ready()).toBe(true);
    // Silence: still ready at exactly the timeout, not ready just after it.
    clock.advance(30 * S);
    r.datastore(false, clock.now(), 'connection refused');
    clock.advance(60 * S);
    expect(ready()).toBe(true);
    clock.advance(1);
    expect(ready()).toBe(false);
    expect(reasons()[0]).toMatch(/^datastore not reached for 90\.0s \(timeout 90s\): connection refused$/);
    r.datastore(true, clock.now());
    expect(ready()).toBe(true);
  });

  it('ICMP only: not ready until a first echo; ready while any target answered within timeoutSeconds', () => {
    const { r, clock, ready, reasons } = machine({ icmp: { timeoutMs: 15 * S }, datastoreTimeoutMs: 90 * S });
    r.setDataplane(true);
    r.datastore(true, clock.now());
    r.probe('icmp', '192.0.2.1', false, clock.now());
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['icmp probes: no target has answered yet (last failure: 192.0.2.1: no answer)']);
    // Every 5 s: one target answers, the other never does — one is enough.
    for (let i = 0; i < 4; i++) {
      clock.advance(5 * S);
      r.probe('icmp', '192.0.2.1', false, clock.now());
      r.probe('icmp', '192.0.2.2', true, clock.now());
      expect(ready()).toBe(true);
    }
    // Then every ping fails: ready for the 15 s window after the last echo, not ready after it.
    for (let t = 5; t <= 15; t += 5) {
      clock.advance(5 * S);
      r.probe('icmp', '192.0.2.1', false, clock.now());
      r.probe('icmp', '192.0.2.2', false, clock.now(), 'no echo reply');
      expect(ready(), `${t} s after the last echo`).toBe(true);
    }
    clock.advance(1);
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['icmp probes: no target answered for 15.0s (timeout 15s) (last failure: 192.0.2.2: no echo reply)']);
    // One echo brings it back at once.
    clock.advance(4 * S);
    r.probe('icmp', '192.0.2.1', true, clock.now());
    expect(ready()).toBe(true);
  });

  it('both kinds configured: at least one target of each kind must answer', () => {
    const { r, clock, ready, reasons } = machine({ icmp: { timeoutMs: 15 * S }, http: { timeoutMs: 30 * S }, datastoreTimeoutMs: 90 * S });
    r.setDataplane(true);
    r.datastore(true, clock.now());
    r.probe('icmp', '192.0.2.1', true, clock.now());
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['http probes: no target has answered yet']);
    r.probe('http', 'http://192.0.2.1/', true, clock.now());
    expect(ready()).toBe(true);
    // ICMP keeps answering, HTTP stops: not ready once the HTTP window has passed.
    for (let i = 0; i < 7; i++) {
      clock.advance(5 * S);
      r.probe('icmp', '192.0.2.1', true, clock.now());
      r.probe('http', 'http://192.0.2.1/', false, clock.now(), 'HTTP 500');
      r.datastore(true, clock.now());
    }
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['http probes: no target answered for 35.0s (timeout 30s) (last failure: http://192.0.2.1/: HTTP 500)']);
    // And the other way round.
    r.probe('http', 'http://192.0.2.1/', true, clock.now());
    expect(ready()).toBe(true);
    clock.advance(16 * S);
    r.probe('http', 'http://192.0.2.1/', true, clock.now());
    r.datastore(true, clock.now());
    expect(ready()).toBe(false);
    expect(reasons()[0]).toMatch(/^icmp probes: no target answered for/);
  });

  it('a data plane failure or shutdown makes it not ready whatever the probes say; shutdown is final', () => {
    const { r, clock, ready, reasons } = machine({ datastoreTimeoutMs: 90 * S });
    r.setDataplane(true);
    r.datastore(true, clock.now());
    expect(ready()).toBe(true);
    r.setDataplane(false, 'data plane: link add egw.vxlan: injected');
    expect(reasons()).toEqual(['data plane: link add egw.vxlan: injected']);
    r.setDataplane(true);
    r.shutdown();
    r.datastore(true, clock.now());
    expect(ready()).toBe(false);
    expect(reasons()).toEqual(['shutting down']);
  });

  it('late or out-of-order facts never move the last success backwards', () => {
    const { r, clock, ready } = machine({ icmp: { timeoutMs: 10 * S }, datastoreTimeoutMs: 90 * S });
    r.setDataplane(true);
    r.datastore(true, clock.now());
    r.probe('icmp', 'a', true, clock.now());
    const early = clock.now();
    clock.advance(8 * S);
    r.probe('icmp', 'b', true, clock.now());
    r.probe('icmp', 'a', true, early); // a slow answer reported late
    clock.advance(9 * S);
    expect(ready()).toBe(true);
  });
});
