/**
 * The node's `projectcalico.org/aws-secondary-ipv4` capacity: how many AWS-backed workloads the
 * instance can hold in the configured mode. Pure.
 */

/** FelixConfiguration `awsSecondaryIPSupport` values (the same literals as the API's). */
export type AwsSecondaryIpMode = 'Disabled' | 'Enabled' | 'EnabledENIPerWorkload';

/** What the formula needs of the instance type. */
export interface EniLimits {
  /** ENIs on the default network card, the primary included. */
  maxEnis: number;
  /** IPv4 addresses per ENI, the primary included. */
  ipv4PerEni: number;
}

/**
 * The capacity: ENI-per-workload `maxEnis − 1` (the primary ENI is never used); Secondary-IP
 * `(maxEnis − 1) × (ipv4PerEni − 1)` (each secondary ENI's primary address is a host address); 0 when
 * disabled or when the limits are unknown. Never negative.
 */
export function awsSecondaryCapacity(mode: AwsSecondaryIpMode, limits: EniLimits | undefined): number {
  if (mode === 'Disabled' || limits === undefined) return 0;
  const enis = Math.max(0, limits.maxEnis - 1);
  return mode === 'EnabledENIPerWorkload' ? enis : enis * Math.max(0, limits.ipv4PerEni - 1);
}

/**
 * Allocatable: the capacity minus what ENIs that are not egw's (other tools' secondary ENIs, attached to
 * this instance) take away — one workload each in ENI mode, a whole ENI's worth in Secondary-IP mode.
 * A decision of egw's; Calico does not document it.
 */
export function awsSecondaryAllocatable(mode: AwsSecondaryIpMode, limits: EniLimits | undefined, foreignEnis: number): number {
  const capacity = awsSecondaryCapacity(mode, limits);
  if (capacity === 0 || limits === undefined) return 0;
  const perEni = mode === 'EnabledENIPerWorkload' ? 1 : Math.max(0, limits.ipv4PerEni - 1);
  return Math.max(0, capacity - foreignEnis * perEni);
}
