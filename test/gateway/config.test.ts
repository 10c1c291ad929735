import { describe, expect, it } from 'vitest';
import { gatewayConfig, logLevelOf, parseGatewayDuration } from '../../src/gateway/config.js';
import { isEgwError } from '../../src/platform/errors.js';

// The environment an operator-rendered gateway Deployment sets (docs/operator.md), and the flags over it.
const RENDERED = {
  HEALTH_PORT: '8080',
  EGRESS_POD_IP: '100.64.0.5',
  EGRESS_POD_IPS: '100.64.0.5',
  EGRESS_VXLAN_VNI: '4097',
  LOG_SEVERITY: 'Info',
  ICMP_PROBE_IPS: '192.0.2.1,192.0.2.2',
  ICMP_PROBE_INTERVAL: '5s',
  ICMP_PROBE_TIMEOUT: '15s',
  HTTP_PROBE_URLS: 'http://192.0.2.1/health',
  HTTP_PROBE_INTERVAL: '10s',
  HTTP_PROBE_TIMEOUT: '30s',
  HEALTH_TIMEOUT_DATASTORE: '90s',
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isEgwError(e, 'InvalidInput')) return e.describe();
    throw e;
  }
  throw new Error('no error');
}

describe('gateway configuration', () => {
  it("reads the operator's environment as rendered", () => {
    expect(gatewayConfig({}, RENDERED)).toEqual({
      podIp: '100.64.0.5',
      vni: 4097,
      vxlanPort: undefined,
      mtu: undefined,
      healthPort: 8080,
      icmp: { targets: ['192.0.2.1', '192.0.2.2'], intervalMs: 5000, timeoutMs: 15000 },
      http: { targets: ['http://192.0.2.1/health'], intervalMs: 10000, timeoutMs: 30000 },
      datastoreTimeoutMs: 90000,
      logLevel: 'info',
      drainSeconds: 0,
    });
  });

  it('EGW_DRAIN_SECONDS: how long to keep forwarding after SIGTERM (0 by default, an integer up to a day)', () => {
    expect(gatewayConfig({}, { ...RENDERED, EGW_DRAIN_SECONDS: '28' }).drainSeconds).toBe(28);
    expect(gatewayConfig({ drainSeconds: '5' }, RENDERED).drainSeconds).toBe(5);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, EGW_DRAIN_SECONDS: '-1' }))).toMatch(/EGW_DRAIN_SECONDS "-1" is not an integer from 0 to 86400/);
  });

  it('has Calico defaults; probes only with targets; empty variables count as unset', () => {
    const c = gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', ICMP_PROBE_IPS: '', HTTP_PROBE_URLS: ' ', ICMP_PROBE_INTERVAL: '1s' });
    expect(c).toMatchObject({ healthPort: 8080, icmp: undefined, http: undefined, datastoreTimeoutMs: 90000, logLevel: 'info', vni: undefined, vxlanPort: undefined });
    expect(gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', ICMP_PROBE_IPS: '192.0.2.1' }).icmp).toEqual({ targets: ['192.0.2.1'], intervalMs: 5000, timeoutMs: 15000 });
    expect(gatewayConfig({}, { EGRESS_POD_IP: '100.64.0.5', HTTP_PROBE_URLS: 'https://example.com/' }).http).toEqual({ targets: ['https://example.com/'], intervalMs: 10000, timeoutMs: 30000 });
  });

  it('flags win over the environment; the pod IP can come from EGRESS_POD_IPS', () => {
    const c = gatewayConfig({ podIp: '100.64.0.9', healthPort: '0', vxlanPort: '4799', logSeverity: 'debug' }, RENDERED);
    expect(c).toMatchObject({ podIp: '100.64.0.9', healthPort: 0, vxlanPort: 4799, logLevel: 'debug' });
    expect(gatewayConfig({}, { EGRESS_POD_IPS: 'fd00::5,100.64.0.7' }).podIp).toBe('100.64.0.7');
  });

  it('refuses bad values naming the flag and the variable', () => {
    expect(errorOf(() => gatewayConfig({}, {}))).toBe('the gateway pod IP is not set (set EGRESS_POD_IP (downward API status.podIP) or --pod-ip)');
    expect(errorOf(() => gatewayConfig({}, { EGRESS_POD_IP: 'fd00::5' }))).toMatch(/^--pod-ip \/ EGRESS_POD_IP "fd00::5" is not an IPv4 address/);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, HEALTH_PORT: '80000' }))).toMatch(/^--health-port \/ HEALTH_PORT "80000" is not an integer from 0 to 65535/);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, ICMP_PROBE_INTERVAL: 'often' }))).toMatch(/^--icmp-probe-interval \/ ICMP_PROBE_INTERVAL "often" is not a positive duration/);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, ICMP_PROBE_IPS: '192.0.2.1,nope' }))).toMatch(/ICMP_PROBE_IPS "nope"/);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, HTTP_PROBE_URLS: 'ftp://x/' }))).toMatch(/HTTP_PROBE_URLS "ftp:\/\/x\/"/);
    expect(errorOf(() => gatewayConfig({}, { ...RENDERED, LOG_SEVERITY: 'loud' }))).toMatch(/LOG_SEVERITY "loud" is not one of Fatal/);
  });

  it('durations: Go syntax as the operator writes them, or bare seconds', () => {
    expect(parseGatewayDuration('5s')).toBe(5000);
    expect(parseGatewayDuration('1m30s')).toBe(90000);
    expect(parseGatewayDuration('250ms')).toBe(250);
    expect(parseGatewayDuration('1.5s')).toBe(1500);
    expect(parseGatewayDuration('15')).toBe(15000);
    expect(parseGatewayDuration('5 s')).toBeUndefined();
    expect(parseGatewayDuration('')).toBeUndefined();
  });

  it("log severities: Calico's names, any case", () => {
    expect(['Fatal', 'ERROR', 'Warning', 'warn', 'Info', 'Debug', 'trace'].map(logLevelOf)).toEqual(['fatal', 'error', 'warn', 'warn', 'info', 'debug', 'trace']);
    expect(logLevelOf(undefined)).toBeUndefined();
    expect(logLevelOf('loud')).toBeUndefined();
  });
});
