/**
 * How far a lab has come (pure): gateway pods created, scheduled, running, placed in the fabric and
 * ready; client pods running and routed by their node's agent exactly as the policy says (the agents'
 * status records against calc's result). `up` prints it as it changes and waits for `done`.
 */
import type { EgressGateway, Pod } from '../api/index.js';
import { effectiveFelixSettings, elasticIpStandby } from '../api/index.js';
import type { ClientRuleStatus } from '../calc/index.js';
import { calcByNode, clientCalc, clientPods } from './expect.js';
import type { LabSnapshot } from './snapshot.js';
import { findCondition } from '../platform/conditions.js';
import { elasticIpOf, gatewayOwner, podGone, podKey } from './snapshot.js';

/** The counts `up` shows, and what still blocks. */
export interface LabProgress {
  nodes: { total: number; ready: number; withCapacity: number };
  gateways: { wanted: number; created: number; scheduled: number; running: number; placed: number; ready: number };
  clients: { total: number; running: number; routed: number };
  /** True when every gateway is ready (and placed in the fabric) and every client routed as calc says. */
  done: boolean;
  /** One line per thing still waited for (at most a few per kind), for a timeout message. */
  blockers: string[];
}

const ELASTIC_IPS_ANNOTATION = 'cni.projectcalico.org/awsElasticIPs';
const AWS_CONDITION = 'EgwAwsReady';

function rulesKey(rules: readonly ClientRuleStatus[]): string {
  return JSON.stringify(
    rules
      .filter((r) => r.action !== 'skipped')
      .map((r) => [r.destination, r.action, r.action === 'gateways' ? r.gateways.map((g) => g.ip).sort() : []])
      .sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
  );
}

function gatewayPlaced(s: LabSnapshot, p: Pod, awsEnabled: boolean): { ok: boolean; why?: string } {
  if (!awsEnabled) return { ok: true };
  const c = findCondition(p.status, AWS_CONDITION);
  // An Elastic IP standby waiting for a holder to fail is where it should be.
  if (c?.status === 'False' && c.reason === 'NoFreeElasticIP' && elasticIpStandby(p.metadata.annotations)) return { ok: true };
  if (c?.status !== 'True') return { ok: false, why: c === undefined ? 'not placed in the fabric yet' : `fabric: ${[c.reason, c.message].filter((x) => x !== undefined && x !== '').join(': ') || c.status}` };
  const wantsEip = (p.metadata.annotations?.[ELASTIC_IPS_ANNOTATION] ?? '') !== '';
  const ip = p.status?.podIP;
  if (wantsEip && ip !== undefined && elasticIpOf(s.sim, ip) === undefined) return { ok: false, why: 'no Elastic IP associated yet' };
  return { ok: true };
}

/** The progress of a lab from a snapshot. */
export function labProgress(s: LabSnapshot): LabProgress {
  const blockers: string[] = [];
  const block = (kind: string, line: string): void => {
    if (blockers.filter((b) => b.startsWith(kind)).length < 4) blockers.push(`${kind} ${line}`);
  };
  const felix = effectiveFelixSettings(s.felix.find((f) => f.metadata.name === 'default'), undefined);
  const awsEnabled = felix.awsSecondaryIPSupport !== 'Disabled';

  const nodeReady = s.nodes.filter((n) => findCondition(n.status, 'Ready')?.status === 'True').length;
  const withCapacity = s.nodes.filter((n) => Number(n.status?.capacity?.['projectcalico.org/aws-secondary-ipv4'] ?? 0) > 0).length;

  const wanted = s.gateways.reduce((sum, g: EgressGateway) => sum + (g.spec.replicas ?? 1), 0);
  const gws = s.pods.filter((p) => gatewayOwner(p) !== undefined && !podGone(p));
  const g = { wanted, created: gws.length, scheduled: 0, running: 0, placed: 0, ready: 0 };
  for (const p of gws) {
    const name = podKey(p);
    if (p.spec.nodeName === undefined) {
      const c = findCondition(p.status, 'PodScheduled');
      block('gateway', `${name}: pending${c?.message === undefined ? '' : ` (${c.message})`}`);
      continue;
    }
    g.scheduled++;
    if (p.status?.phase !== 'Running' || p.status.podIP === undefined) {
      block('gateway', `${name}: not running yet on ${p.spec.nodeName}`);
      continue;
    }
    g.running++;
    const placed = gatewayPlaced(s, p, awsEnabled);
    if (placed.ok) g.placed++;
    const ready = findCondition(p.status, 'Ready')?.status === 'True';
    if (ready && placed.ok) g.ready++;
    else block('gateway', `${name} (${p.status.podIP}): ${placed.ok ? 'not ready' : placed.why ?? ''}`);
  }
  for (const eg of s.gateways) {
    const mine = gws.filter((p) => gatewayOwner(p) === `${eg.metadata.namespace ?? 'default'}/${eg.metadata.name}`).length;
    if (mine < (eg.spec.replicas ?? 1)) block('gateway', `${eg.metadata.namespace ?? 'default'}/${eg.metadata.name}: ${mine} of ${eg.spec.replicas ?? 1} pods`);
  }

  const byNode = calcByNode(s);
  const all = s.pods.filter((p) => gatewayOwner(p) === undefined && !podGone(p));
  const running = clientPods(s);
  let routed = 0;
  for (const p of all) if (!running.includes(p)) block('client', `${podKey(p)}: not running yet${p.spec.nodeName === undefined ? ' (unscheduled)' : ` on ${p.spec.nodeName}`}`);
  for (const p of running) {
    const want = clientCalc(byNode, p);
    if (want === undefined) {
      routed++;
      continue;
    }
    const have = s.nodeStatus.find((n) => n.node === p.spec.nodeName)?.clients.find((c) => c.pod === podKey(p));
    if (have !== undefined && have.ip === want.ip && rulesKey(have.rules) === rulesKey(want.rules)) routed++;
    else block('client', `${podKey(p)}: ${have === undefined ? `not in ${p.spec.nodeName ?? ''}'s agent status yet` : `agent has ${have.state}, policy says ${want.state}`}`);
  }
  const done = g.created === wanted && g.ready === wanted && running.length === all.length && routed === running.length;
  return {
    nodes: { total: s.nodes.length, ready: nodeReady, withCapacity },
    gateways: g,
    clients: { total: all.length, running: running.length, routed },
    done,
    blockers,
  };
}

/** One progress line: `gateways 3/4 ready (4 placed) · clients 2/3 routed · nodes 4/4`. */
export function progressLine(p: LabProgress): string {
  const g = p.gateways;
  return [
    `nodes ${p.nodes.ready}/${p.nodes.total} ready`,
    `gateways ${g.ready}/${g.wanted} ready (${g.created} created, ${g.scheduled} scheduled, ${g.running} running, ${g.placed} in the fabric)`,
    `clients ${p.clients.routed}/${p.clients.total} routed`,
  ].join(' · ');
}
