import type { FelixConfiguration, Node } from '../api/index.js';
import { effectiveFelixSettings, validateDocument } from '../api/index.js';
import type { Datastore } from '../datastore/contract.js';
import type { GatewayPodApplyResult, GatewayPodState } from '../linux/index.js';
import { applyGatewayPod } from '../linux/index.js';
import type { Shell } from '../platform/shell.js';
import type { GatewayConfig } from './config.js';
import { nodeAddresses } from './gateway.js';

/**
 * `egw gateway init` (the operator's init container): programs the pod's namespace once — forwarding,
 * the tunnel end, SNAT and the filter — with the node set and VXLAN settings read from the datastore
 * when it answers, and an empty node set otherwise (the tunnel then stays closed until `egw gateway`
 * starts and reads the nodes). Idempotent; returns what the driver did and how many nodes it admitted.
 */
export async function initGatewayPod(shell: Shell, config: GatewayConfig, store: Datastore | undefined): Promise<GatewayPodApplyResult & { nodes: number; datastore: boolean }> {
  const nodes: Node[] = [];
  let felix: FelixConfiguration | undefined;
  let reached = false;
  if (store !== undefined) {
    try {
      const [n, f] = await Promise.all([store.list('Node'), store.get({ kind: 'FelixConfiguration', name: 'default' })]);
      for (const s of n.items) {
        const { resource } = validateDocument(s.value, { file: 'datastore:Node', documentIndex: 1 });
        if (resource?.kind === 'Node') nodes.push(resource);
      }
      if (f !== undefined) {
        const { resource } = validateDocument(f.value, { file: 'datastore:FelixConfiguration/default', documentIndex: 1 });
        if (resource?.kind === 'FelixConfiguration') felix = resource;
      }
      reached = true;
    } catch {
      reached = false;
    }
  }
  const settings = effectiveFelixSettings(felix);
  const state: GatewayPodState = {
    podIp: config.podIp,
    vxlan: {
      vni: config.vni ?? settings.egressIPVXLANVNI,
      port: config.vxlanPort ?? settings.egressIPVXLANPort,
      ...(config.mtu === undefined ? {} : { mtu: config.mtu }),
    },
    nodeIps: nodeAddresses(nodes),
    ...(config.healthPort === 0 ? {} : { healthPort: config.healthPort }),
  };
  const r = await applyGatewayPod(shell, state);
  return { ...r, nodes: state.nodeIps.length, datastore: reached };
}
