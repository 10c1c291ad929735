/**
 * The gateway room's public face (docs/gateway.md): `egw gateway`'s configuration, readiness state
 * machine, probes and process.
 */
export * from './config.js';
export { ReadinessState, type ProbeKind, type ReadinessConfig, type ReadinessReport, type CheckReport } from './readiness.js';
export { HttpProber, PingProber, type Prober, type ProbeOutcome } from './probes.js';
export { GatewayProcess, nodeAddresses, type GatewayDeps, type GatewayOptions } from './gateway.js';
export { initGatewayPod } from './init.js';
