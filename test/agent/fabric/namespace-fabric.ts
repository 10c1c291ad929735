/**
 * A fabric driver of the emulator for the agent's fabric tests on a real kernel: a throwaway namespace
 * (never connected to the host) plays the node, and an attached ENI appears in it as a veth (both ends in
 * the namespace) with the ENI's MAC, as the lab's driver plugs it; the agent's ENI routing finds it by MAC.
 */
import type { Shell } from '../../../src/platform/shell.js';
import type { FabricDriver, FabricEni } from '../../../src/sim/aws/fabric.js';

/** The link name of an ENI in the namespace. */
export const eniLinkName = (mac: string): string => `eni${mac.replace(/:/g, '').slice(-6)}`;

/** Plugs the ENI's link into the namespace `inNs` runs in on attach; unplugs it on detach. */
export class NamespaceFabric implements FabricDriver {
  constructor(private readonly inNs: Shell) {}

  async eniAttached(eni: FabricEni): Promise<void> {
    const name = eniLinkName(eni.macAddress);
    await this.inNs.run(['ip', 'link', 'del', name], { allowFailure: true });
    await this.inNs.run(['ip', 'link', 'add', name, 'address', eni.macAddress, 'type', 'veth', 'peer', 'name', `${name}p`]);
    await this.inNs.run(['ip', 'link', 'set', `${name}p`, 'up']);
  }
  async eniDetached(eni: FabricEni): Promise<void> {
    await this.inNs.run(['ip', 'link', 'del', eniLinkName(eni.macAddress)], { allowFailure: true });
  }
  async privateIpAssigned(): Promise<void> {}
  async privateIpUnassigned(): Promise<void> {}
  async addressAssociated(): Promise<void> {}
  async addressDisassociated(): Promise<void> {}
}
