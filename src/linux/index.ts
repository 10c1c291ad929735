/**
 * egw's Linux kernel layer (docs/linux-dataplane.md). Three drivers, each render/plan (pure),
 * parse (pure) and apply (minimal diff through an injected Shell), plus the namespace topology helper
 * the tests and the lab build worlds with.
 */
export * from './ownership.js';
export { tunnelMac, ipOfTunnelMac, canonicalMac } from './net/mac.js';
export { NetnsShell } from './netns.js';
export type { BatchCommand, BatchFailure } from './iproute/batch.js';

export type { ClientNodeState, ClientNodeConfig, VxlanSpec, EgressRoute, EgressClient, ReturnPath, ReturnClient, NatOutgoing, ResilientSpec } from './client-node/types.js';
export { DEFAULT_CLIENT_NODE_CONFIG } from './client-node/types.js';
export type { ClientNodeObserved, ClientNodePlan, Problem, TableAssignment } from './client-node/plan.js';
export { planClientNode, isEmptyPlan, nodeNftSpec } from './client-node/plan.js';
export type { ClientNodeApplyResult } from './client-node/driver.js';
export { applyClientNode, readClientNode } from './client-node/driver.js';

export type { GatewayPodState, GatewayPodObserved, GatewayPodPlan, GatewayPodApplyResult } from './gateway-pod/gateway-pod.js';
export { applyGatewayPod, readGatewayPod, planGatewayPod, gatewayNftSpec, isEmptyGatewayPlan } from './gateway-pod/gateway-pod.js';

export type { EniState, EniInterfaceSpec, EniConfig, EniObserved, EniPlan, EniApplyResult } from './eni/eni-routing.js';
export { applyEni, readEni, planEni, DEFAULT_ENI_CONFIG } from './eni/eni-routing.js';

export type { TopologySpec, NamespaceSpec, BridgeSpec, VethEnd, VethSpec, RouteSpec, PodOptions } from './topology/spec.js';
export { TopologyBuilder, validateTopologySpec, namespaceName, ALLOWED_RANGES } from './topology/spec.js';
export type { TopologyDeps, SweepReport } from './topology/topology.js';
export { Topology, createTopology, sweepTopology, topologyTmpDir } from './topology/topology.js';
export type { ProcessRunner, RunningProcess } from './topology/process.js';
export { ChildProcessRunner } from './topology/process.js';
export type { EchoServer, EchoResult, EchoOptions, FlowSet } from './topology/echo.js';
export { startEchoServer, echoFrom, openFlows, tally, seenAll, ECHO_SERVER_SOURCE, ECHO_CLIENT_SOURCE } from './topology/echo.js';
