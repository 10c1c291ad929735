import type { SimState } from './model.js';
import type { AwsSimStateDump } from './server.js';

/**
 * Renders a state dump as readable tables (for `egw aws-sim dump`): instances with their ENIs,
 * unattached ENIs, Elastic IPs, then the fabric status and call counters when the dump has them.
 */
export function renderAwsSimState(dump: AwsSimStateDump | { format: 'egw-aws-sim-state/v1'; state: SimState }): string {
  const state = dump.state;
  const out: string[] = [];
  const enis = Object.values(state.enis);
  const byInstance = new Map<string, typeof enis>();
  for (const e of enis) {
    const id = e.attachment?.instanceId;
    if (id === undefined) continue;
    byInstance.set(id, [...(byInstance.get(id) ?? []), e]);
  }
  const publicOf = (ip: string): string => Object.values(state.addresses).find((a) => a.association?.privateIp === ip)?.publicIp ?? '';

  const rows: string[][] = [['INSTANCE', 'TYPE', 'ZONE', 'DEV', 'ENI', 'STATUS', 'SUBNET', 'ADDRESSES']];
  const instances = 'world' in dump ? dump.world.instances : [...byInstance.keys()].map((id) => ({ id, type: '', subnetId: '' }));
  const zoneOf = (subnetId: string): string => ('world' in dump ? (dump.world.subnets.find((s) => s.id === subnetId)?.availabilityZone ?? '') : '');
  for (const inst of instances) {
    const list = (byInstance.get(inst.id) ?? []).sort((a, b) => (a.attachment?.deviceIndex ?? 0) - (b.attachment?.deviceIndex ?? 0));
    for (const e of list) {
      const addrs = e.privateIps.map((ip) => (publicOf(ip) === '' ? ip : `${ip}→${publicOf(ip)}`)).join(' ');
      rows.push([inst.id, inst.type, zoneOf(inst.subnetId), String(e.attachment?.deviceIndex ?? ''), e.id, e.attachment?.status ?? e.status, e.subnetId, addrs]);
    }
    // A terminated instance has no ENIs left: one row says so.
    if (state.terminated?.[inst.id] !== undefined) rows.push([inst.id, inst.type, zoneOf(inst.subnetId), '', '-', `terminated ${state.terminated[inst.id] ?? ''}`, '', '']);
  }
  out.push(table(rows));

  const free = enis.filter((e) => e.attachment === undefined);
  if (free.length > 0) {
    out.push('', table([['UNATTACHED ENI', 'SUBNET', 'ADDRESSES', 'TAGS'], ...free.map((e) => [e.id, e.subnetId, e.privateIps.join(' '), tagText(state.tags[e.id])])]));
  }

  const eips = Object.values(state.addresses);
  if (eips.length > 0) {
    out.push('', table([['ELASTIC IP', 'ALLOCATION', 'ASSOCIATION', 'ENI', 'PRIVATE IP'], ...eips.map((a) => [a.publicIp, a.allocationId, a.association?.associationId ?? '-', a.association?.networkInterfaceId ?? '-', a.association?.privateIp ?? '-'])]));
  }

  if ('stats' in dump) {
    const f = dump.fabric;
    out.push('', `fabric: ${f.delivered} events delivered, ${f.failures} failures${f.degraded ? ' (degraded: ' + (f.lastError ?? '') + ')' : ''}`);
    const calls = Object.entries(dump.stats.actions).sort(([a], [b]) => (a < b ? -1 : 1));
    if (calls.length > 0) {
      out.push('', table([['ACTION', 'CALLS', 'OK', 'ERRORS'], ...calls.map(([name, c]) => [name, String(c.calls), String(c.ok), Object.entries(c.errors).map(([code, n]) => `${code}×${n}`).join(' ')])]));
    }
    out.push('', `throttled: ${dump.stats.throttled}  injected failures: ${dump.stats.injected}  state-file write failures: ${dump.stats.persistFailures}`);
  }
  return out.join('\n') + '\n';
}

function tagText(tags: Record<string, string> | undefined): string {
  return Object.entries(tags ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
