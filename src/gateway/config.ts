/**
 * `egw gateway`'s configuration: command-line flags over the environment variables Calico's gateway
 * image reads (so that an operator-rendered Deployment runs unchanged), over Calico's defaults. Pure.
 */
import { isIP } from 'node:net';
import { EgwError } from '../platform/errors.js';

/** Calico's probe defaults (operator API: icmpProbe 5 s / 15 s, httpProbe 10 s / 30 s). */
export const ICMP_PROBE_DEFAULTS = { intervalMs: 5_000, timeoutMs: 15_000 } as const;
export const HTTP_PROBE_DEFAULTS = { intervalMs: 10_000, timeoutMs: 30_000 } as const;
/** `healthTimeoutDataStoreSeconds` default. */
export const DATASTORE_TIMEOUT_DEFAULT_MS = 90_000;
/** `HEALTH_PORT` default (the container port named `health`). */
export const HEALTH_PORT_DEFAULT = 8080;

/** One kind of probe: its targets (IPs or URLs), how often, and how long all may fail before not-ready. */
export interface ProbeConfig {
  targets: string[];
  intervalMs: number;
  timeoutMs: number;
}

/** Everything `egw gateway` runs with. */
export interface GatewayConfig {
  /** The pod's own IP: VTEP address, MAC source and SNAT target. */
  podIp: string;
  /** VNI and UDP port of the tunnel; undefined: FelixConfiguration `default`, else 4097 / 4790. */
  vni: number | undefined;
  vxlanPort: number | undefined;
  mtu: number | undefined;
  /** Readiness port; 0 disables the readiness server. */
  healthPort: number;
  icmp: ProbeConfig | undefined;
  http: ProbeConfig | undefined;
  /** Not ready after this long without reaching the datastore. */
  datastoreTimeoutMs: number;
  /** pino level from `LOG_SEVERITY`. */
  logLevel: string;
  /**
   * After SIGTERM, keep forwarding this long before removing the data plane and exiting (0: at once), so
   * that established flows the clients' drain keeps on this gateway can finish (docs/gateway.md, "Drain").
   */
  drainSeconds: number;
}

/** The flags of `egw gateway` (strings as typed; undefined when not given). */
export interface GatewayFlags {
  podIp?: string | undefined;
  healthPort?: string | undefined;
  vni?: string | undefined;
  vxlanPort?: string | undefined;
  mtu?: string | undefined;
  icmpProbeIps?: string | undefined;
  icmpProbeInterval?: string | undefined;
  icmpProbeTimeout?: string | undefined;
  httpProbeUrls?: string | undefined;
  httpProbeInterval?: string | undefined;
  httpProbeTimeout?: string | undefined;
  healthTimeoutDatastore?: string | undefined;
  logSeverity?: string | undefined;
  drainSeconds?: string | undefined;
}

/** The environment variable behind each flag (Calico's gateway image names). */
export const GATEWAY_ENV: Readonly<Record<keyof GatewayFlags, string>> = {
  podIp: 'EGRESS_POD_IP',
  healthPort: 'HEALTH_PORT',
  vni: 'EGRESS_VXLAN_VNI',
  vxlanPort: 'EGRESS_VXLAN_PORT',
  mtu: 'EGRESS_VXLAN_MTU',
  icmpProbeIps: 'ICMP_PROBE_IPS',
  icmpProbeInterval: 'ICMP_PROBE_INTERVAL',
  icmpProbeTimeout: 'ICMP_PROBE_TIMEOUT',
  httpProbeUrls: 'HTTP_PROBE_URLS',
  httpProbeInterval: 'HTTP_PROBE_INTERVAL',
  httpProbeTimeout: 'HTTP_PROBE_TIMEOUT',
  healthTimeoutDatastore: 'HEALTH_TIMEOUT_DATASTORE',
  logSeverity: 'LOG_SEVERITY',
  drainSeconds: 'EGW_DRAIN_SECONDS',
};

/** The flag spelling of each setting, for messages. */
function flagName(key: keyof GatewayFlags): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function bad(key: keyof GatewayFlags, value: string, what: string): never {
  throw new EgwError('InvalidInput', `${flagName(key)} / ${GATEWAY_ENV[key]} "${value}" is not ${what}`, { hint: `set ${GATEWAY_ENV[key]} (or ${flagName(key)}) to ${what}` });
}

/**
 * A duration as the operator writes it (`5s`, Go syntax: `1m30s`, `500ms`, `1.5s`), or a bare number of
 * seconds. Milliseconds, or undefined when the text is neither.
 */
export function parseGatewayDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(t)) return undefined;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (unit[m[2] ?? ''] ?? 0);
  return Math.round(total);
}

/** Calico's log severities (Fatal, Error, Warn/Warning, Info, Debug, Trace; any case) as pino levels. */
export function logLevelOf(severity: string | undefined): string | undefined {
  if (severity === undefined || severity.trim() === '') return undefined;
  const map: Record<string, string> = { fatal: 'fatal', panic: 'fatal', error: 'error', warn: 'warn', warning: 'warn', info: 'info', debug: 'debug', trace: 'trace' };
  return map[severity.trim().toLowerCase()];
}

/**
 * Reads the configuration: each setting from its flag, else its environment variable, else the default.
 * Empty strings count as unset (the operator renders probe variables only when probes are configured).
 * Throws `InvalidInput` naming the flag and variable of the first bad value.
 */
export function gatewayConfig(flags: GatewayFlags, env: Readonly<Record<string, string | undefined>>): GatewayConfig {
  const get = (key: keyof GatewayFlags): string | undefined => {
    const v = flags[key] ?? env[GATEWAY_ENV[key]];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (key: keyof GatewayFlags, min: number, max: number): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) bad(key, v, `an integer from ${min} to ${max}`);
    return Number(v);
  };
  const duration = (key: keyof GatewayFlags): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const ms = parseGatewayDuration(v);
    if (ms === undefined || ms <= 0) bad(key, v, 'a positive duration such as 5s or 500ms');
    return ms;
  };

  let podIp = get('podIp');
  if (podIp === undefined) {
    // EGRESS_POD_IPS (downward API status.podIPs, comma-joined): the first IPv4 one.
    podIp = (env['EGRESS_POD_IPS'] ?? '').split(',').map((s) => s.trim()).find((s) => isIP(s) === 4);
  }
  if (podIp === undefined) {
    throw new EgwError('InvalidInput', 'the gateway pod IP is not set', { hint: 'set EGRESS_POD_IP (downward API status.podIP) or --pod-ip' });
  }
  if (isIP(podIp) !== 4) bad('podIp', podIp, 'an IPv4 address');

  const list = (key: keyof GatewayFlags): string[] => (get(key) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const icmpIps = list('icmpProbeIps');
  for (const ip of icmpIps) if (isIP(ip) === 0) bad('icmpProbeIps', ip, 'a comma-separated list of IP addresses');
  const httpUrls = list('httpProbeUrls');
  for (const u of httpUrls) {
    let ok = false;
    try {
      const url = new URL(u);
      ok = url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) bad('httpProbeUrls', u, 'a comma-separated list of http:// or https:// URLs');
  }
  const icmpInterval = duration('icmpProbeInterval') ?? ICMP_PROBE_DEFAULTS.intervalMs;
  const icmpTimeout = duration('icmpProbeTimeout') ?? ICMP_PROBE_DEFAULTS.timeoutMs;
  const httpInterval = duration('httpProbeInterval') ?? HTTP_PROBE_DEFAULTS.intervalMs;
  const httpTimeout = duration('httpProbeTimeout') ?? HTTP_PROBE_DEFAULTS.timeoutMs;
  const severity = get('logSeverity');
  const logLevel = logLevelOf(severity);
  if (severity !== undefined && logLevel === undefined) bad('logSeverity', severity, 'one of Fatal, Error, Warn, Info, Debug, Trace');

  return {
    podIp,
    vni: int('vni', 0, 16_777_215),
    vxlanPort: int('vxlanPort', 1, 65_535),
    mtu: int('mtu', 576, 9_000),
    healthPort: int('healthPort', 0, 65_535) ?? HEALTH_PORT_DEFAULT,
    icmp: icmpIps.length === 0 ? undefined : { targets: icmpIps, intervalMs: icmpInterval, timeoutMs: icmpTimeout },
    http: httpUrls.length === 0 ? undefined : { targets: httpUrls, intervalMs: httpInterval, timeoutMs: httpTimeout },
    datastoreTimeoutMs: duration('healthTimeoutDatastore') ?? DATASTORE_TIMEOUT_DEFAULT_MS,
    logLevel: logLevel ?? 'info',
    drainSeconds: int('drainSeconds', 0, 86_400) ?? 0,
  };
}
