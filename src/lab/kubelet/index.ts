/**
 * The lab's pod runtime ("kubelet"): one per node, inside the node's network namespace. It makes each
 * pod bound to its node real — a network namespace wired through CNI (ptp + egw-ipam), `egw` processes,
 * readiness from the probe — and removes it gracefully. docs/lab-kubelet.md describes the contract.
 */
export {
  absoluteDatastore,
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_EGW_IPAM_MAIN,
  DEFAULT_EGW_MAIN,
  defaultStateDir,
  egwCommandFor,
  labKubeletArgv,
  registerLabKubeletCommand,
  type LabKubeletLaunch,
} from './command.js';
export { LabKubelet, KUBELET_WATCHED_KINDS, NODE_READY, type LabKubeletDeps, type LabKubeletOptions } from './kubelet.js';
export { containerIdOf, checkNetnsPrefix, MAX_NETNS_NAME, podDirName, podNetnsName, podSandboxId } from './naming.js';
export { containerArgv, containerEnv, expandVars, parseContainer, resolveFieldRef, type Built, type ContainerSpec, type DownwardFacts } from './env.js';
export { parseProbe, probeDue, recordProbe, startProbe, PROBE_FLOORS, type ProbeAction, type ProbeSpec, type ProbeState } from './probe.js';
export { BACKOFF, backoffResets, restartDelayMs, shouldRestart } from './restart.js';
export { kubeletConditions, mergePodStatus, type ContainerView, type PodView } from './pod-status.js';
export { DEFAULT_NETWORK_NAME, ExecCni, installEgwIpam, kubeletCniConfig, parseAddResult, type CniPort } from './cni.js';
export { currentNetnsMountPropagation, IpNetns, NETNS_DIR, netnsMountPropagation, type NetnsPort } from './netns.js';
export { ChildProcesses, parseProcStat, procStartTicks, type ProcessPort, type ProcHandle } from './processes.js';
export { NetProber, type ProberPort } from './prober.js';
export { StateDir, type PodRecord, type ContainerRecord } from './state.js';
