/**
 * The operator's validation of an EgressGateway against the cluster's IP pools, with its exact messages
 * and in its order (the first failing rule wins, as the operator returns its first error). Pure.
 */
import { defaultEgressGateway, nativeIP, normalizeCidr, PROBE_DEFAULTS, type EgressGateway, type IPPool } from '../../api/index.js';

/** Prefix the operator puts before a validation error in the Degraded condition. */
export const VALIDATION_MESSAGE_PREFIX = 'Error validating egress gateway err = ';

/**
 * The first rule `egw` breaks, as the operator words it, or undefined when it is valid:
 * 1. `at least one IPPool must be specified`;
 * 2. per ipPools entry, in order — by name: the pool must exist (the API's NotFound,
 *    `ippools.projectcalico.org "<name>" not found`), a cidr given beside the name must be the pool's
 *    (`IPPool CIDR does not match with name`); by cidr: a pool with that CIDR must exist
 *    (`IPPool matching CIDR = <cidr> not present`); with `aws.nativeIP` Enabled the pool must be
 *    AWS-backed (`AWS subnet ID must be set when NativeIP is enabled`);
 * 3. `NativeIP must be enabled when elastic IPs are used`;
 * 4. with egressGatewayFailureDetection: `either ICMP or HTTP probe must be configured`, then
 *    `ICMP probe timeout must be greater than interval` and `HTTP probe timeout must be greater than interval`
 *    (timeout < interval is refused; equal is accepted).
 * CIDRs are compared in canonical form (the operator compares the strings; IPPool CIDRs are stored
 * canonical). externalNetworks are not checked: egw has no ExternalNetwork resource.
 * With `poolsKnown: false` (rendering a file that holds no IPPools) the per-pool rules of step 2 are
 * skipped; everything else is checked.
 */
export function operatorValidationError(egw: EgressGateway, pools: readonly IPPool[], options: { poolsKnown?: boolean } = {}): string | undefined {
  const d = defaultEgressGateway(egw);
  const spec = d.spec;
  const refs = spec.ipPools ?? [];
  if (refs.length === 0) return 'at least one IPPool must be specified';
  const native = nativeIP(d) === 'Enabled';
  const awsBacked = (p: IPPool): boolean => p.spec.awsSubnetID !== undefined && p.spec.awsSubnetID !== '';
  const canonical = (cidr: string): string => normalizeCidr(cidr) ?? cidr;

  for (const ref of options.poolsKnown === false ? [] : refs) {
    const name = ref.name ?? '';
    const cidr = ref.cidr ?? '';
    if (name !== '') {
      const pool = pools.find((p) => p.metadata.name === name);
      if (pool === undefined) return `ippools.projectcalico.org "${name}" not found`;
      if (cidr !== '' && canonical(cidr) !== canonical(pool.spec.cidr)) return 'IPPool CIDR does not match with name';
      if (native && !awsBacked(pool)) return 'AWS subnet ID must be set when NativeIP is enabled';
      continue;
    }
    const pool = cidr === '' ? undefined : pools.find((p) => canonical(p.spec.cidr) === canonical(cidr));
    if (pool === undefined) return `IPPool matching CIDR = ${cidr} not present`;
    if (native && !awsBacked(pool)) return 'AWS subnet ID must be set when NativeIP is enabled';
  }

  if ((spec.aws?.elasticIPs ?? []).length > 0 && !native) return 'NativeIP must be enabled when elastic IPs are used';

  const fd = spec.egressGatewayFailureDetection;
  if (fd !== undefined) {
    if (fd.icmpProbe === undefined && fd.httpProbe === undefined) return 'either ICMP or HTTP probe must be configured';
    const icmp = fd.icmpProbe;
    if (icmp !== undefined && (icmp.timeoutSeconds ?? PROBE_DEFAULTS.icmp.timeoutSeconds) < (icmp.intervalSeconds ?? PROBE_DEFAULTS.icmp.intervalSeconds)) {
      return 'ICMP probe timeout must be greater than interval';
    }
    const http = fd.httpProbe;
    if (http !== undefined && (http.timeoutSeconds ?? PROBE_DEFAULTS.http.timeoutSeconds) < (http.intervalSeconds ?? PROBE_DEFAULTS.http.intervalSeconds)) {
      return 'HTTP probe timeout must be greater than interval';
    }
  }
  return undefined;
}
