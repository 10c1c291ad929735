/**
 * What `egw lab up` prints at the end (pure): the timings, the gateways with their IPs and Elastic IPs,
 * the clients, the servers, what is still missing when the wait timed out, and what to try next.
 */
import { formatTable } from '../cli/output.js';
import { findCondition } from '../platform/conditions.js';
import { gatewayOwner, elasticIpOf, podGone, podKey } from './snapshot.js';
import type { LabUpResult } from './supervisor.js';
import { SERVER_PORT } from './layout.js';

/** The summary text of an `up`. */
export function upSummary(r: LabUpResult, stateDir: string): string {
  const s = r.snapshot;
  const t = r.timings;
  const phases = ['world', 'emulator', 'kubernetes', 'apply', 'converge'].filter((k) => t[k] !== undefined).map((k) => `${k} ${t[k]!.toFixed(1)} s`).join(', ');
  const lines: string[] = [];
  lines.push('');
  lines.push(r.ready ? `lab ${r.scenario.name} is up in ${(t['total'] ?? 0).toFixed(1)} s (${phases})` : `lab ${r.scenario.name} is NOT ready after ${(t['total'] ?? 0).toFixed(1)} s (${phases}); still waiting for:`);
  if (!r.ready) for (const b of r.progress.blockers) lines.push(`  - ${b}`);
  const gws = s.pods.filter((p) => gatewayOwner(p) !== undefined && !podGone(p)).sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
  if (gws.length > 0) {
    lines.push('');
    lines.push(
      formatTable(
        ['GATEWAY', 'NODE', 'IP', 'ELASTIC IP', 'READY'],
        gws.map((p) => [podKey(p), p.spec.nodeName ?? '(pending)', p.status?.podIP ?? '', p.status?.podIP === undefined ? '' : (elasticIpOf(s.sim, p.status.podIP) ?? '-'), findCondition(p.status, 'Ready')?.status === 'True' ? 'yes' : 'no']),
      ).trimEnd(),
    );
  }
  const clients = s.pods.filter((p) => gatewayOwner(p) === undefined && !podGone(p)).sort((a, b) => (podKey(a) < podKey(b) ? -1 : 1));
  if (clients.length > 0) {
    lines.push('');
    lines.push(formatTable(['CLIENT', 'NODE', 'IP'], clients.map((p) => [podKey(p), p.spec.nodeName ?? '(pending)', p.status?.podIP ?? ''])).trimEnd());
  }
  lines.push('');
  lines.push(`servers (port ${SERVER_PORT}): ${r.scenario.servers.map((x) => `${x.name} ${x.ip}`).join(', ')}`);
  lines.push(`datastore: ${r.record.datastore.outside} (egw get/apply/delete use it while the lab is up); state and logs: ${stateDir}`);
  const example = clients.find((p) => p.metadata.name === 'my-netcat-pod') ?? clients[0];
  const server = r.scenario.servers.find((x) => x.network === 'internet') ?? r.scenario.servers[0];
  lines.push(`next: egw lab verify · egw lab status${example !== undefined && server !== undefined ? ` · egw lab exec ${example.metadata.name} -n ${example.metadata.namespace ?? 'default'} -- nc ${server.ip} ${SERVER_PORT} </dev/null` : ''} · egw lab down`);
  return `${lines.join('\n')}\n`;
}
