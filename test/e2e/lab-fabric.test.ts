import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AssignPrivateIpAddressesCommand,
  AssociateAddressCommand,
  AttachNetworkInterfaceCommand,
  CreateNetworkInterfaceCommand,
  DescribeNetworkInterfacesCommand,
  DetachNetworkInterfaceCommand,
  DisassociateAddressCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  UnassignPrivateIpAddressesCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fabricConfig, labNames, SERVER_PORT, staticWorld, worldDefinition } from '../../src/lab/layout.js';
import type { LabNames } from '../../src/lab/layout.js';
import { LabProcesses } from '../../src/lab/processes.js';
import { LAB_ECHO_SERVER_SOURCE, LAB_PROBE_SOURCE } from '../../src/lab/programs.js';
import { parseScenario } from '../../src/lab/scenario.js';
import type { Scenario } from '../../src/lab/scenario.js';
import { buildWorld, labNamespaces, sweepWorld } from '../../src/lab/world.js';
import { LabFabricDriver } from '../../src/sim/aws/lab-fabric.js';
import { FABRIC_ROUTE_PROTOCOL, routerLinkName } from '../../src/sim/aws/lab-fabric-plan.js';
import { startAwsSim } from '../../src/sim/aws/index.js';
import type { AwsSimHandle } from '../../src/sim/aws/index.js';
import { ExecShell } from '../../src/platform/shell.js';
import { waitFor } from './support/mini-cluster.js';
import { runPrefix, sweepDeadRuns } from './support/run-prefix.js';

// The lab fabric driver with the real emulator and real namespaces: ENI links, routes, the source/
// destination check, Elastic IP NAT, restart convergence. Namespaces prefixed "fab<pid>" (unique per run).
const PREFIX = runPrefix('fab');
const shell = new ExecShell();
const EGRESS = 'subnet-0a1b2c3d4e5f60718';
const EIP = 'eipalloc-0123456789abcdef0';

const scenarioDoc = {
  name: 'fabric-test',
  region: 'us-west-2',
  zones: ['us-west-2a'],
  vpc: { id: 'vpc-0e1a2b3c4d5e6f708', cidr: '100.64.0.0/16' },
  subnets: [
    { id: EGRESS, name: 'egress', cidr: '100.64.0.0/22', zone: 'us-west-2a' },
    { id: 'subnet-0c3d4e5f607182930', name: 'nodes', cidr: '100.64.16.0/22', zone: 'us-west-2a' },
    { id: 'subnet-0e5f60718293a4b52', name: 'services', cidr: '100.64.32.0/24', zone: 'us-west-2a' },
  ],
  nodes: [
    { name: 'n1', subnet: 'nodes', instanceType: 't3.large', ip: '100.64.16.10' },
    { name: 'n2', subnet: 'nodes', instanceType: 't3.large', ip: '100.64.16.11' },
  ],
  controlPlane: { subnet: 'services' },
  servers: [
    { name: 'internet', network: 'internet', ip: '198.51.100.10' },
    { name: 'onprem', network: 'onprem', ip: '198.18.0.10' },
    { name: 'local', network: 'vpc', subnet: 'services', ip: '100.64.32.20' },
  ],
  onprem: { cidr: '198.18.0.0/16' },
  internet: { cidr: '198.51.100.0/24' },
  elasticIps: [{ allocationId: EIP, publicIp: '203.0.113.7' }],
  // The driver's test drives EC2 one call at a time: without the emulator's Describe lag and ID propagation
  // (the agent's tests and the lab run them).
  sim: { seed: 3, latencyMs: 0, attachLatencyMs: 50, detachLatencyMs: 50, throttle: false, describeLagMs: 0, createPropagationMs: 0 },
};

let scenario: Scenario;
let names: LabNames;
let dir: string;
let sim: AwsSimHandle | undefined;
let ec2: EC2Client;
let procs: LabProcesses;
let probeFile: string;

async function startSim(): Promise<AwsSimHandle> {
  const driver = new LabFabricDriver({ shell }, fabricConfig(names, scenario));
  const h = await startAwsSim({ world: worldDefinition(scenario), listen: '127.0.0.1:0', stateFile: join(dir, 'sim-state.json'), fabric: driver });
  await h.idle();
  return h;
}

async function probe(ns: string, target: string, from?: string): Promise<{ seen?: string; error?: string }> {
  const r = await shell.run(['ip', 'netns', 'exec', ns, process.execPath, probeFile, '1500', ...(from === undefined ? [] : ['--from', from]), `${target}:${SERVER_PORT}`]);
  return JSON.parse(r.stdout.trim().split('\n')[0] ?? '{}') as { seen?: string; error?: string };
}

async function inNs(ns: string, ...argv: string[]): Promise<string> {
  return (await shell.run(['ip', 'netns', 'exec', ns, ...argv])).stdout;
}

/** Where the router sends an address: its device, or `unreachable` when the VPC does not know it. */
async function routeOf(ip: string): Promise<string> {
  const r = await shell.run(['ip', 'netns', 'exec', names.router, 'ip', 'route', 'get', ip], { allowFailure: true });
  if (r.exitCode !== 0) return /No route to host/.test(r.stderr) ? 'unreachable' : r.stderr;
  return /dev (\S+)/.exec(r.stdout)?.[1] ?? r.stdout;
}

/** Waits (generously: the machine may be busy) until the emulator reports `eni` in `status`, then until its fabric is idle. */
async function waitStatus(eni: string, status: 'in-use' | 'available'): Promise<void> {
  await waitFor(`${eni} ${status}`, async () => (await ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }))).NetworkInterfaces?.[0]?.Status === status, 30_000, 20);
  await sim!.idle();
}

async function waitAttached(eni: string): Promise<void> {
  await waitStatus(eni, 'in-use');
}

beforeAll(async () => {
  await sweepWorld(shell, PREFIX);
  await sweepDeadRuns(PREFIX, (dead) => sweepWorld(shell, dead));
  dir = mkdtempSync(join(tmpdir(), 'egw-lab-fabric-'));
  scenario = parseScenario(scenarioDoc, 'fabric-test', dir);
  names = labNames(PREFIX, scenario);
  await buildWorld(shell, staticWorld(names, scenario));
  sim = await startSim();
  ec2 = new EC2Client({ endpoint: sim.url, region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  procs = new LabProcesses(dir);
  const echo = join(dir, 'echo.mjs');
  writeFileSync(echo, LAB_ECHO_SERVER_SOURCE);
  probeFile = join(dir, 'probe.mjs');
  writeFileSync(probeFile, LAB_PROBE_SOURCE);
  for (const [name, ns] of [['internet', names.inet], ['onprem', names.onprem], ['local', names.vpcServers['local']!]] as const) {
    procs.start({ name: `echo-${name}`, netns: ns, argv: [process.execPath, echo, String(SERVER_PORT), name] });
  }
  // Servers listen within a moment (longer on a busy machine); wait for the first answer.
  await waitFor('the local echo server answering', async () => (await probe(names.nodes['n1']!, '100.64.32.20')).seen !== undefined, 30_000);
}, 60_000);

afterAll(async () => {
  await sim?.close();
  await sweepWorld(shell, PREFIX);
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  expect(await labNamespaces(shell, PREFIX)).toEqual([]);
});

// Each test drives the emulator and probes through real namespaces: minutes, not seconds, on a busy machine.
describe('lab fabric driver', { timeout: 120_000 }, () => {
  it('gives every instance its primary ENI as eth0, as EC2 and its DHCP would', async () => {
    const link = JSON.parse(await inNs(names.nodes['n1']!, 'ip', '-json', '-4', 'addr', 'show', 'dev', 'eth0')) as { address: string; addr_info: { local: string; prefixlen: number }[] }[];
    expect(link[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['100.64.16.10/22']);
    expect(await inNs(names.nodes['n1']!, 'ip', 'route', 'show', 'default')).toContain('via 100.64.16.1 dev eth0');
    const routes = await inNs(names.router, 'ip', 'route', 'show', 'proto', String(FABRIC_ROUTE_PROTOCOL));
    for (const ip of ['100.64.16.10', '100.64.16.11', '100.64.32.20', scenario.controlPlane.ip]) expect(routes).toContain(ip);
    // No link of the lab in the root namespace.
    expect((await shell.run(['ip', '-br', 'link', 'show'])).stdout).not.toMatch(/\be-[0-9a-f]{6}/);
  });

  it('routes instances to each other and to on-prem without NAT; the internet drops a private IP without an Elastic IP', async () => {
    expect(await probe(names.nodes['n1']!, '100.64.32.20')).toMatchObject({ seen: '100.64.16.10' });
    expect(await probe(names.nodes['n2']!, '100.64.16.10')).toMatchObject({ error: 'ECONNREFUSED' });
    expect(await probe(names.nodes['n1']!, '198.18.0.10')).toMatchObject({ seen: '100.64.16.10' });
    expect(await probe(names.nodes['n1']!, '198.51.100.10')).toMatchObject({ error: 'ETIMEDOUT' });
  });

  it('drops what an ENI sends from an address that is not its own (source/destination check)', async () => {
    await inNs(names.nodes['n1']!, 'ip', 'addr', 'add', '100.64.16.99/32', 'dev', 'lo');
    expect(await probe(names.nodes['n1']!, '100.64.32.20', '100.64.16.99')).toMatchObject({ error: 'ETIMEDOUT' });
    expect(await inNs(names.router, 'nft', 'list', 'chain', 'ip', 'egw-fabric', 'srcdst')).toMatch(/counter packets [1-9]/);
  });

  it('passes any source from an ENI whose check is disabled (awsSrcDstCheck: Disable), and drops again once enabled', async () => {
    const found = await ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'private-ip-address', Values: ['100.64.16.10'] }] }));
    const primary = found.NetworkInterfaces?.[0]?.NetworkInterfaceId ?? '';
    await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: primary, SourceDestCheck: { Value: false } }));
    await sim!.idle();
    expect(await inNs(names.router, 'nft', 'list', 'set', 'ip', 'egw-fabric', 'eni_unchecked')).toContain(routerLinkName(primary));
    // The VPC has no route back to a foreign address (that would be a route table entry targeting the ENI),
    // so the server's side counts what arrives.
    const server = names.vpcServers['local']!;
    const arrived = async (src: string): Promise<number> => {
      const out = await inNs(server, 'nft', 'list', 'chain', 'ip', 'lfabtest', 'in');
      return Number(new RegExp(`ip saddr ${src.replace(/\./g, '\\.')} counter packets (\\d+)`).exec(out)?.[1] ?? 'NaN');
    };
    await shell.run(['ip', 'netns', 'exec', server, 'nft', '-f', '-'], {
      input: 'table ip lfabtest {\n chain in {\n  type filter hook prerouting priority raw; policy accept;\n  ip saddr 100.64.16.99 counter\n  ip saddr 100.64.16.98 counter\n }\n}\n',
    });
    await probe(names.nodes['n1']!, '100.64.32.20', '100.64.16.99');
    expect(await arrived('100.64.16.99')).toBeGreaterThan(0);
    // Another instance's ENI keeps its check.
    await inNs(names.nodes['n2']!, 'ip', 'addr', 'add', '100.64.16.98/32', 'dev', 'lo');
    await probe(names.nodes['n2']!, '100.64.32.20', '100.64.16.98');
    expect(await arrived('100.64.16.98')).toBe(0);
    await ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: primary, SourceDestCheck: { Value: true } }));
    await sim!.idle();
    const before = await arrived('100.64.16.99');
    await probe(names.nodes['n1']!, '100.64.32.20', '100.64.16.99');
    expect(await arrived('100.64.16.99')).toBe(before);
    await inNs(server, 'nft', 'delete', 'table', 'ip', 'lfabtest');
    await inNs(names.nodes['n1']!, 'ip', 'addr', 'del', '100.64.16.99/32', 'dev', 'lo');
    await inNs(names.nodes['n2']!, 'ip', 'addr', 'del', '100.64.16.98/32', 'dev', 'lo');
  });

  it('an attached ENI is a link with its MAC in the instance; its addresses are routed only while EC2 knows them', async () => {
    const created = await ec2.send(new CreateNetworkInterfaceCommand({ SubnetId: EGRESS, PrivateIpAddress: '100.64.0.5' }));
    const eni = created.NetworkInterface!.NetworkInterfaceId!;
    const mac = created.NetworkInterface!.MacAddress!;
    const n1 = names.nodes['n1']!;
    // Before the attachment the address is unknown to the VPC: the router answers "unreachable".
    expect(await routeOf('100.64.0.5')).toBe('unreachable');
    const att = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: eni, InstanceId: scenario.nodes[0]!.instanceId, DeviceIndex: 1 }));
    await waitAttached(eni);
    const eth1 = JSON.parse(await inNs(n1, 'ip', '-json', 'link', 'show', 'dev', 'eth1')) as { address: string; flags: string[] }[];
    expect(eth1[0]?.address).toBe(mac);
    expect(eth1[0]?.flags).not.toContain('UP');
    expect(await routeOf('100.64.0.5')).toBe(routerLinkName(eni));

    // The node routes the address through the ENI, as the agent's ENI driver does.
    for (const args of [
      ['ip', 'addr', 'add', '100.64.0.5/32', 'dev', 'eth1'],
      ['ip', 'link', 'set', 'eth1', 'up'],
      ['ip', 'route', 'add', '100.64.0.0/22', 'dev', 'eth1', 'table', '200'],
      ['ip', 'route', 'add', 'default', 'via', '100.64.0.1', 'dev', 'eth1', 'table', '200'],
      ['ip', 'rule', 'add', 'from', '100.64.0.5', 'lookup', '200', 'priority', '101'],
    ]) await inNs(n1, ...args);
    expect(await probe(n1, '100.64.32.20', '100.64.0.5')).toMatchObject({ seen: '100.64.0.5' });
    expect(await probe(n1, '198.18.0.10', '100.64.0.5')).toMatchObject({ seen: '100.64.0.5' });
    expect(await probe(n1, '198.51.100.10', '100.64.0.5')).toMatchObject({ error: 'ETIMEDOUT' });

    // An Elastic IP maps the address 1:1 at the internet gateway; without it the internet is closed again.
    const assoc = await ec2.send(new AssociateAddressCommand({ AllocationId: EIP, NetworkInterfaceId: eni, PrivateIpAddress: '100.64.0.5', AllowReassociation: false }));
    expect(await probe(n1, '198.51.100.10', '100.64.0.5')).toMatchObject({ seen: '203.0.113.7' });
    expect(await probe(n1, '100.64.32.20', '100.64.0.5')).toMatchObject({ seen: '100.64.0.5' });
    await ec2.send(new DisassociateAddressCommand({ AssociationId: assoc.AssociationId! }));
    expect(await probe(n1, '198.51.100.10', '100.64.0.5')).toMatchObject({ error: 'ETIMEDOUT' });

    // Secondary addresses come and go with EC2's assignment.
    await ec2.send(new AssignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.6'] }));
    expect(await routeOf('100.64.0.6')).toBe(routerLinkName(eni));
    expect(await inNs(names.router, 'nft', 'list', 'set', 'ip', 'egw-fabric', 'eni_src')).toContain('100.64.0.6');
    await ec2.send(new UnassignPrivateIpAddressesCommand({ NetworkInterfaceId: eni, PrivateIpAddresses: ['100.64.0.6'] }));
    expect(await routeOf('100.64.0.6')).toBe('unreachable');
    expect(await inNs(names.router, 'nft', 'list', 'set', 'ip', 'egw-fabric', 'eni_src')).not.toContain('100.64.0.6');

    // A restart of the emulator converges a tampered fabric back to the EC2 state.
    await sim!.close();
    await inNs(names.router, 'ip', 'route', 'del', '100.64.0.5/32');
    await inNs(names.router, 'ip', 'route', 'add', '100.64.0.77/32', 'dev', routerLinkName(eni), 'proto', String(FABRIC_ROUTE_PROTOCOL));
    await inNs(names.router, 'nft', 'flush', 'set', 'ip', 'egw-fabric', 'eni_src');
    await inNs(names.router, 'ip', 'link', 'add', 'e-0123456789ab', 'type', 'veth', 'peer', 'name', 'stray0');
    sim = await startSim();
    ec2 = new EC2Client({ endpoint: sim.url, region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
    expect(await routeOf('100.64.0.5')).toBe(routerLinkName(eni));
    expect(await routeOf('100.64.0.77')).toBe('unreachable');
    expect(await inNs(names.router, 'ip', '-br', 'link', 'show')).not.toContain('e-0123456789ab');
    expect(await probe(n1, '100.64.32.20', '100.64.0.5')).toMatchObject({ seen: '100.64.0.5' });
    expect(await probe(n1, '100.64.32.20')).toMatchObject({ seen: '100.64.16.10' });

    // Detaching removes the link and its routes.
    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: att.AttachmentId! }));
    await waitStatus(eni, 'available');
    expect((await shell.run(['ip', 'netns', 'exec', n1, 'ip', 'link', 'show', 'dev', 'eth1'], { allowFailure: true })).exitCode).not.toBe(0);
    expect(await routeOf('100.64.0.5')).toBe('unreachable');
  });
});
