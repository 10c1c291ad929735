import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsSecondaryAllocatable, awsSecondaryCapacity } from '../../src/aws/capacity.js';
import type { SdkEc2 } from '../../src/aws/sdk-ec2.js';
import { INSTANCE_TYPE_LIMITS_TSV } from '../../src/sim/aws/instance-types-data.js';
import type { AwsSimHandle } from '../../src/sim/aws/server.js';
import { REPO } from '../support/dist.js';
import { sdkFor, startFabricSim } from './helpers.js';

/** The shared limits table (the workspace's copy when present, else the emulator's verbatim copy). */
function limitsTable(): Map<string, { maxEnis: number; ipv4PerEni: number }> {
  const path = resolve(REPO, '../shared/data/aws-instance-eni-limits.tsv');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : INSTANCE_TYPE_LIMITS_TSV;
  const rows = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const header = rows[0]!.split('\t');
  const col = (name: string): number => header.indexOf(name);
  const out = new Map<string, { maxEnis: number; ipv4PerEni: number }>();
  for (const r of rows.slice(1)) {
    const f = r.split('\t');
    out.set(f[col('instance_type')]!, { maxEnis: Number(f[col('max_enis')]), ipv4PerEni: Number(f[col('ipv4_per_eni')]) });
  }
  return out;
}

// Small, common, the reference's t3.large, a multi-card type (capacity uses the default card), bare metal.
const TYPES = ['t3.micro', 't3.large', 'm5.xlarge', 'a1.2xlarge', 'c5n.18xlarge', 'p4d.24xlarge', 'm5.metal'];

describe('node capacity projectcalico.org/aws-secondary-ipv4 against the instance-type table', () => {
  let sim: AwsSimHandle;
  let ec2: SdkEc2;
  const table = limitsTable();

  beforeAll(async () => {
    sim = await startFabricSim();
    ec2 = sdkFor(sim);
  });
  afterAll(async () => {
    ec2.destroy();
    await sim.close();
  });

  it('is ENIs − 1 (ENI-per-workload) and (ENIs − 1) × (IPs per ENI − 1) (Secondary-IP), from DescribeInstanceTypes; 0 when disabled', async () => {
    const described = await ec2.describeInstanceTypes(TYPES);
    expect(described.map((d) => d.instanceType).sort()).toEqual([...TYPES].sort());
    for (const d of described) {
      const row = table.get(d.instanceType)!;
      expect(row, d.instanceType).toBeDefined();
      expect({ type: d.instanceType, eni: awsSecondaryCapacity('EnabledENIPerWorkload', d), ip: awsSecondaryCapacity('Enabled', d), off: awsSecondaryCapacity('Disabled', d) }).toEqual({
        type: d.instanceType,
        eni: row.maxEnis - 1,
        ip: (row.maxEnis - 1) * (row.ipv4PerEni - 1),
        off: 0,
      });
    }
    // The reference document's example: t3.large → 2 and 22.
    const t3 = described.find((d) => d.instanceType === 't3.large')!;
    expect([awsSecondaryCapacity('EnabledENIPerWorkload', t3), awsSecondaryCapacity('Enabled', t3)]).toEqual([2, 22]);
  });

  it('allocatable takes away what ENIs of other tools occupy', () => {
    const t3 = { maxEnis: 3, ipv4PerEni: 12 };
    expect(awsSecondaryAllocatable('EnabledENIPerWorkload', t3, 1)).toBe(1);
    expect(awsSecondaryAllocatable('Enabled', t3, 1)).toBe(11);
    expect(awsSecondaryAllocatable('Enabled', t3, 5)).toBe(0);
    expect(awsSecondaryAllocatable('Disabled', t3, 0)).toBe(0);
    expect(awsSecondaryCapacity('Enabled', undefined)).toBe(0);
  });
});
