import { readFileSync } from 'node:fs';
import { EgwError } from '../../platform/errors.js';
import { INSTANCE_TYPE_LIMITS_TSV } from './instance-types-data.js';

/** The network limits of one EC2 instance type, as the limits table gives them. */
export interface InstanceTypeLimits {
  instanceType: string;
  /** ENIs on the default network card (index 0), the primary ENI included. */
  maxEnis: number;
  /** IPv4 addresses per ENI, the ENI's primary address included. */
  ipv4PerEni: number;
  networkCards: number;
  /** ENIs over all network cards. */
  maxEnisAllCards: number;
  hypervisor: string;
  bareMetal: boolean;
}

/** Lookup of instance-type limits. */
export interface InstanceTypeTable {
  get(instanceType: string): InstanceTypeLimits | undefined;
  /** Every instance type, sorted by name. */
  all(): readonly InstanceTypeLimits[];
  /** The largest `ipv4PerEni` of any type: the bound for an ENI that is not attached yet. */
  maxIpv4PerEni(): number;
}

const COLUMNS = ['instance_type', 'max_enis', 'ipv4_per_eni', 'network_cards', 'max_enis_all_cards', 'hypervisor', 'bare_metal'];

/**
 * Parses the limits TSV (`#` comment lines, then a header row, then one row per type).
 * Throws `InvalidInput` naming the source and line on a malformed row.
 */
export function parseInstanceTypeTable(tsv: string, source = 'instance-type table'): InstanceTypeTable {
  const lines = tsv.split('\n');
  let header: string[] | undefined;
  const rows = new Map<string, InstanceTypeLimits>();
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const cells = line.split('\t');
    if (header === undefined) {
      header = cells;
      const missing = COLUMNS.filter((c) => !cells.includes(c));
      if (missing.length > 0) {
        throw new EgwError('InvalidInput', `${source}: header lacks column(s) ${missing.join(', ')}`, {
          hint: 'use the format of shared/data/aws-instance-eni-limits.tsv',
        });
      }
      return;
    }
    const cols = header;
    const cell = (name: string): string => cells[cols.indexOf(name)] ?? '';
    const int = (name: string): number => {
      const v = cell(name);
      if (!/^\d+$/.test(v)) {
        throw new EgwError('InvalidInput', `${source}:${i + 1}: column ${name} is "${v}", not a whole number`);
      }
      return Number(v);
    };
    const limits: InstanceTypeLimits = {
      instanceType: cell('instance_type'),
      maxEnis: int('max_enis'),
      ipv4PerEni: int('ipv4_per_eni'),
      networkCards: int('network_cards'),
      maxEnisAllCards: int('max_enis_all_cards'),
      hypervisor: cell('hypervisor'),
      bareMetal: cell('bare_metal') === 'true',
    };
    rows.set(limits.instanceType, limits);
  });
  const sorted = [...rows.values()].sort((a, b) => (a.instanceType < b.instanceType ? -1 : 1));
  const maxIpv4 = sorted.reduce((m, r) => Math.max(m, r.ipv4PerEni), 0);
  return {
    get: (t) => rows.get(t),
    all: () => sorted,
    maxIpv4PerEni: () => maxIpv4,
  };
}

let builtIn: InstanceTypeTable | undefined;

/** The built-in table (a copy of shared/data/aws-instance-eni-limits.tsv), parsed once. */
export function builtInInstanceTypes(): InstanceTypeTable {
  builtIn ??= parseInstanceTypeTable(INSTANCE_TYPE_LIMITS_TSV, 'built-in instance-type table');
  return builtIn;
}

/** Loads a limits table from a TSV file of the same format (for a newer table than the built-in one). */
export function loadInstanceTypeTable(path: string): InstanceTypeTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new EgwError('InvalidInput', `cannot read instance-type table ${path}: ${(e as Error).message}`, {
      hint: 'check the path given as sim.instanceTypesFile',
      cause: e,
    });
  }
  return parseInstanceTypeTable(text, path);
}
