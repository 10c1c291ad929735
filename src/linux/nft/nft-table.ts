import { createHash } from 'node:crypto';
import { EgwError } from '../../platform/errors.js';
import type { Shell } from '../../platform/shell.js';
import { canonicalIpv4Net, formatIpv4Net, outermostIpv4Nets, parseIpv4Net, requireIpv4Net, sortIpv4Texts, type Ipv4NetOptions } from '../../platform/ipv4.js';

/** An element as written or listed: a prefix, a bare address (a /32), host bits cleared. */
const ELEMENT: Ipv4NetOptions = { hostBits: 'clear', bareAddress: true, defaultWord: true };

/**
 * egw's one nftables table per network namespace: render (pure), parse `nft -j` (pure), plan the
 * minimal change (pure) and apply it as one `nft -f` transaction.
 *
 * nft's JSON does not carry table or chain comments in nftables 1.0.6, and comparing rule expression
 * trees is brittle, so every rendered rule carries `comment "egw:<hash of its text>"`: the observed rule
 * list of a chain equals the desired one exactly when the comment sequences are equal. A chain header
 * (type, hook, priority, policy) and the sets are compared field by field. A difference in any
 * chain replaces the whole table atomically (create-if-missing, delete, re-create in one transaction, so
 * no packet ever sees a half-built table); a difference only in set elements adds and deletes those
 * elements, which keeps rules, counters and conntrack untouched.
 */

/** A named set of IPv4 addresses (or prefixes, with `interval`). */
export interface NftSet {
  name: string;
  /** Prefix elements (`flags interval`); otherwise plain addresses. */
  interval: boolean;
  elements: readonly string[];
}

/** A base chain. Rules are nft rule statements without a comment (the comment is added on render). */
export interface NftChain {
  name: string;
  type: 'filter' | 'nat';
  hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  priority: number;
  policy: 'accept' | 'drop';
  rules: readonly string[];
}

/** The address family of a table: `ip` (IPv4, the default) or `ip6` (the gateway pod's IPv6 drop). */
export type NftFamily = 'ip' | 'ip6';

/** The desired content of the table. */
export interface NftTableSpec {
  name: string;
  /** Default `ip`. Sets are IPv4 sets: an `ip6` table has none. */
  family?: NftFamily;
  sets: readonly NftSet[];
  chains: readonly NftChain[];
}

/** What `nft -j list table ip NAME` showed. */
export interface ObservedNftTable {
  sets: { name: string; type: string; interval: boolean; elements: string[]; clean: boolean }[];
  chains: { name: string; type: string | undefined; hook: string | undefined; priority: number | undefined; policy: string | undefined; ruleComments: (string | undefined)[] }[];
}

const NAME = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** The comment that marks a rendered rule: `egw:` and 12 hex digits of the SHA-256 of its text. */
export function ruleMark(rule: string): string {
  return `egw:${createHash('sha256').update(rule).digest('hex').slice(0, 12)}`;
}

function canonicalElements(set: NftSet): string[] {
  return set.interval ? outermostIpv4Nets(set.elements.map((e) => requireIpv4Net(e, ELEMENT))).map(formatIpv4Net) : sortIpv4Texts(set.elements);
}

function validate(spec: NftTableSpec): void {
  for (const n of [spec.name, ...spec.sets.map((s) => s.name), ...spec.chains.map((c) => c.name)]) {
    if (!NAME.test(n)) throw new EgwError('InvalidInput', `"${n}" is not a valid nftables name`, { hint: 'use letters, digits and _' });
  }
  if (spec.family === 'ip6' && spec.sets.length > 0) throw new EgwError('Internal', `nft table ip6 ${spec.name}: IPv4 sets in an ip6 table`);
  for (const c of spec.chains) {
    for (const r of c.rules) {
      if (/[\n;#]|comment/.test(r)) throw new EgwError('Internal', `nft rule must be a single statement without comment: ${r}`);
    }
  }
}

function renderElements(elements: readonly string[]): string {
  return elements.join(', ');
}

/** Renders the whole table as an nft script body (`table ip NAME { … }`). Pure. */
export function renderNftTable(spec: NftTableSpec): string {
  validate(spec);
  const lines = [`table ${spec.family ?? 'ip'} ${spec.name} {`];
  for (const s of spec.sets) {
    const elements = canonicalElements(s);
    lines.push(`  set ${s.name} {`, '    type ipv4_addr', ...(s.interval ? ['    flags interval'] : []));
    if (elements.length > 0) lines.push(`    elements = { ${renderElements(elements)} }`);
    lines.push('  }');
  }
  for (const c of spec.chains) {
    lines.push(`  chain ${c.name} {`, `    type ${c.type} hook ${c.hook} priority ${c.priority}; policy ${c.policy};`);
    for (const r of c.rules) lines.push(`    ${r} comment "${ruleMark(r)}"`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n');
}

/** The script that replaces the table atomically, whether or not it exists. */
export function renderNftReplace(spec: NftTableSpec): string {
  const f = spec.family ?? 'ip';
  return `table ${f} ${spec.name} {}\ndelete table ${f} ${spec.name}\n${renderNftTable(spec)}\n`;
}

function elementText(e: unknown, interval: boolean): string | undefined {
  if (typeof e === 'string') {
    const p = parseIpv4Net(e, ELEMENT);
    if (p === undefined) return undefined;
    return interval ? formatIpv4Net(p) : e;
  }
  if (typeof e === 'object' && e !== null && 'prefix' in e) {
    const prefix = (e as { prefix: { addr?: unknown; len?: unknown } }).prefix;
    if (typeof prefix.addr === 'string' && typeof prefix.len === 'number') return canonicalIpv4Net(`${prefix.addr}/${prefix.len}`);
  }
  // Ranges and anything else we never write.
  return undefined;
}

/**
 * Parses `nft -j list table ip NAME`. Pure. Sets whose elements we would not have written (ranges,
 * concatenations) are marked unclean so that the table gets replaced rather than patched.
 */
export function parseNftTable(text: string): ObservedNftTable {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new EgwError('Internal', 'cannot parse the JSON of nft list table', { cause: e });
  }
  const items = (doc as { nftables?: unknown[] }).nftables ?? [];
  const out: ObservedNftTable = { sets: [], chains: [] };
  const chainByName = new Map<string, ObservedNftTable['chains'][number]>();
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue;
    const obj = item as Record<string, Record<string, unknown> | undefined>;
    const set = obj['set'];
    if (set !== undefined) {
      const flags = Array.isArray(set['flags']) ? (set['flags'] as unknown[]) : [];
      const interval = flags.includes('interval');
      const raw = Array.isArray(set['elem']) ? (set['elem'] as unknown[]) : [];
      const elements = raw.map((e) => elementText(e, interval));
      out.sets.push({
        name: String(set['name']),
        type: String(set['type']),
        interval,
        elements: elements.filter((e): e is string => e !== undefined),
        clean: elements.every((e) => e !== undefined) && flags.every((f) => f === 'interval'),
      });
    }
    const chain = obj['chain'];
    if (chain !== undefined) {
      const c = {
        name: String(chain['name']),
        type: chain['type'] as string | undefined,
        hook: chain['hook'] as string | undefined,
        priority: chain['prio'] as number | undefined,
        policy: chain['policy'] as string | undefined,
        ruleComments: [] as (string | undefined)[],
      };
      out.chains.push(c);
      chainByName.set(c.name, c);
    }
    const rule = obj['rule'];
    if (rule !== undefined) {
      chainByName.get(String(rule['chain']))?.ruleComments.push(rule['comment'] as string | undefined);
    }
  }
  return out;
}

/** The change that brings the table from what was observed to what is desired. */
export type NftPlan =
  | { kind: 'none' }
  | { kind: 'delete'; script: string }
  | { kind: 'replace'; script: string }
  | { kind: 'elements'; script: string };

function sameStructure(spec: NftTableSpec, seen: ObservedNftTable): boolean {
  if (spec.sets.length !== seen.sets.length || spec.chains.length !== seen.chains.length) return false;
  for (const s of spec.sets) {
    const o = seen.sets.find((x) => x.name === s.name);
    if (o === undefined || o.type !== 'ipv4_addr' || o.interval !== s.interval || !o.clean) return false;
  }
  for (const c of spec.chains) {
    const o = seen.chains.find((x) => x.name === c.name);
    if (o === undefined || o.type !== c.type || o.hook !== c.hook || o.priority !== c.priority || o.policy !== c.policy) return false;
    const want = c.rules.map(ruleMark);
    if (want.length !== o.ruleComments.length || want.some((m, i) => o.ruleComments[i] !== m)) return false;
  }
  return true;
}

/**
 * Plans the minimal change. Pure. `desired` undefined means the table must not exist.
 * The element script adds before it deletes, inside one transaction.
 */
export function planNftTable(desired: NftTableSpec | undefined, observed: ObservedNftTable | undefined, name: string, family: NftFamily = 'ip'): NftPlan {
  if (desired === undefined) return observed === undefined ? { kind: 'none' } : { kind: 'delete', script: `delete table ${family} ${name}\n` };
  if (observed === undefined || !sameStructure(desired, observed)) return { kind: 'replace', script: renderNftReplace(desired) };
  const lines: string[] = [];
  for (const s of desired.sets) {
    const want = canonicalElements(s);
    const have = observed.sets.find((x) => x.name === s.name)!.elements;
    const add = want.filter((e) => !have.includes(e));
    const del = have.filter((e) => !want.includes(e));
    if (add.length > 0) lines.push(`add element ip ${desired.name} ${s.name} { ${renderElements(add)} }`);
    if (del.length > 0) lines.push(`delete element ip ${desired.name} ${s.name} { ${renderElements(del)} }`);
  }
  return lines.length === 0 ? { kind: 'none' } : { kind: 'elements', script: `${lines.join('\n')}\n` };
}

/** Reads the table; undefined when it does not exist. */
export async function readNftTable(shell: Shell, name: string, family: NftFamily = 'ip'): Promise<ObservedNftTable | undefined> {
  const r = await shell.run(['nft', '-j', 'list', 'table', family, name], { allowFailure: true });
  if (r.exitCode !== 0) {
    if (/No such file or directory/.test(r.stderr)) return undefined;
    throw new EgwError('CommandFailed', `nft list table ${family} ${name} failed: ${r.stderr.trim()}`, { hint: 'is nftables installed and the nf_tables module available?' });
  }
  return parseNftTable(r.stdout);
}

/** Executes a plan as one `nft -f -` transaction. Returns true when something was changed. */
export async function applyNftPlan(shell: Shell, plan: NftPlan): Promise<boolean> {
  if (plan.kind === 'none') return false;
  await shell.run(['nft', '-f', '-'], { input: plan.script });
  return true;
}
