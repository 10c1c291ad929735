/**
 * The `egw` CLI end to end, as a user runs it: the compiled program in a child process against a
 * throwaway SQLite store.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { EGW_CLI, REPO } from '../support/dist.js';

const work = mkdtempSync(join(tmpdir(), 'egw-cli-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let storeCounter = 0;
function freshStore(): string {
  storeCounter += 1;
  return join(work, `store-${storeCounter}`, 'egw.db');
}

function egw(args: string[], options: { store?: string; input?: string } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [EGW_CLI, ...(options.store === undefined ? [] : ['--datastore', options.store]), ...args], {
    cwd: work,
    input: options.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, EGW_DATASTORE: '' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const reference = join(REPO, 'examples/reference');
const invalidDir = join(REPO, 'examples/invalid');

describe('egw validate', () => {
  it('accepts every manifest of the reference document as written', () => {
    const r = egw(['validate', '-f', reference]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/documents valid/);
  });

  it('rejects every invalid example, each with a located error, exit 1 and no stack trace', () => {
    const files = readdirSync(invalidDir).filter((f) => f.endsWith('.yaml'));
    // One process for the whole directory; each file must still be reported on its own lines.
    const r = egw(['validate', '-f', invalidDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    for (const file of files) expect(errors.some((l) => l.includes(`${file}#`)), file).toBe(true);
    for (const line of errors) expect(line).toMatch(/^error: \S+\.yaml#\d+/);
    // and one file alone fails on its own
    expect(egw(['validate', '-f', join(invalidDir, files[0]!)]).code).toBe(1);
  });

  it('reads stdin with -f -', () => {
    const r = egw(['validate', '-f', '-'], { input: 'apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.0.0.0/30, 10.0.0.9]}\n' });
    expect(r.code).toBe(0);
  });

  it('names a missing file', () => {
    const r = egw(['validate', '-f', join(work, 'nope.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.yaml');
    expect(r.stderr).toContain('no such file');
  });
});

describe('egw apply / get / delete', () => {
  it('stores the reference manifests with Calico defaults and shows them', () => {
    const store = freshStore();
    const first = egw(['apply', '-f', reference], { store });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('ippool.projectcalico.org/egress-red-west-1 created');
    const again = egw(['apply', '-f', reference], { store });
    expect(again.stdout).toContain('ippool.projectcalico.org/egress-red-west-1 unchanged');
    expect(again.stdout).not.toContain('created');

    const pool = parse(egw(['get', 'ippool', 'egress-red-west-1', '-o', 'yaml'], { store }).stdout) as { spec: Record<string, unknown> };
    expect(pool.spec).toMatchObject({ cidr: '100.64.0.4/30', blockSize: 32, natOutgoing: false, disabled: false, ipipMode: 'Never', vxlanMode: 'Never' });

    const felix = JSON.parse(egw(['get', 'felixconfig', 'default', '-o', 'json'], { store }).stdout) as { spec: Record<string, unknown> };
    expect(felix.spec).toMatchObject({ egressIPVXLANPort: 4790, egressIPVXLANVNI: 4097, egressIPRoutingRulePriority: 100, egressGatewayPollInterval: '10s' });

    const policy = parse(egw(['get', 'EgressGatewayPolicies', 'egw-policy1', '-o', 'yaml'], { store }).stdout) as { spec: { rules: { destination?: { cidr: string } }[] } };
    expect(policy.spec.rules.map((r) => r.destination?.cidr)).toEqual(['10.0.0.0/8', '11.0.0.0/8', '0.0.0.0/0']);

    const table = egw(['get', 'egw', '-A'], { store });
    expect(table.stdout).toMatch(/NAMESPACE\s+NAME\s+REPLICAS/);
    expect(table.stdout).toMatch(/calico-egress\s+egress-gateway-red\s+2/);
    expect(egw(['get', 'egressgateway', 'egress-gateway-red', '-n', 'calico-egress', '-o', 'yaml'], { store }).code).toBe(0);
  });

  it('applies a file with one invalid document all-or-nothing: nothing changes', () => {
    const store = freshStore();
    expect(egw(['apply', '-f', join(reference, 'ip-pools.yaml')], { store }).code).toBe(0);
    const before = egw(['get', 'ippools', '-o', 'json'], { store }).stdout;
    const mixed = join(work, 'mixed.yaml');
    writeFileSync(
      mixed,
      [
        'apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: fine}\nspec: {reservedCIDRs: [100.64.0.0/30]}',
        'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: egress-red-west-1}\nspec: {cidr: 100.64.0.4/30, blockSize: 32, awsSubnetID: subnet-000000000000000001, disabled: true}',
        'apiVersion: projectcalico.org/v3\nkind: EgressGatewayPolicy\nmetadata: {name: broken}\nspec: {rules: [{gateway: {selector: "", namespaceSelector: "all()"}}]}',
      ].join('\n---\n'),
    );
    const r = egw(['apply', '-f', mixed], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mixed.yaml#3 EgressGatewayPolicy/broken spec.rules[0].gateway.selector');
    expect(r.stderr).toContain('nothing was applied');
    expect(egw(['get', 'ippools', '-o', 'json'], { store }).stdout).toBe(before);
    expect(egw(['get', 'ipreservation', 'fine'], { store }).code).toBe(1);
  });

  it('rejects a cross-resource conflict with what is stored and keeps the store as it was', () => {
    const store = freshStore();
    expect(egw(['apply', '-f', join(reference, 'ip-pools.yaml')], { store }).code).toBe(0);
    const r = egw(['apply', '-f', '-'], { store, input: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: overlapping}\nspec: {cidr: 100.64.0.0/24}\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/IPPool\/overlapping spec.cidr: .*overlaps/);
    expect(egw(['get', 'ippool', 'overlapping'], { store }).code).toBe(1);
  });

  it('warns, but applies, when a reference points at something that does not exist yet', () => {
    const store = freshStore();
    const r = egw(['apply', '-f', join(reference, 'egress-gateway-red.yaml')], { store });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: .*egress-red-west-1/);
  });

  it('deletes by name and by manifest; a missing name fails and deletes nothing', () => {
    const store = freshStore();
    expect(egw(['apply', '-f', reference], { store }).code).toBe(0);
    const missing = egw(['delete', 'ippool', 'egress-red-west-1', 'nope'], { store });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('IPPool "nope"');
    expect(egw(['get', 'ippool', 'egress-red-west-1'], { store }).code).toBe(0);

    const del = egw(['delete', 'ippools', 'egress-red-west-1'], { store });
    expect(del.stdout).toContain('ippool.projectcalico.org/egress-red-west-1 deleted');
    expect(egw(['get', 'ippool', 'egress-red-west-1'], { store }).code).toBe(1);

    expect(egw(['delete', '-f', join(reference, 'egress-gateway-policy.yaml')], { store }).code).toBe(0);
    expect(egw(['get', 'egressgatewaypolicies'], { store }).stderr).toContain('No resources found');
  });

  it('accepts kind names case-insensitively, singular, plural or short', () => {
    const store = freshStore();
    egw(['apply', '-f', join(reference, 'ip-pools.yaml')], { store });
    for (const name of ['ippools', 'IPPool', 'ippool', 'IPPOOLS']) expect(egw(['get', name], { store }).stdout).toContain('egress-blue-west-2');
    const unknown = egw(['get', 'widgets'], { store });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown resource kind "widgets"');
  });

  it('emits get -o yaml as a multi-document stream that validates again', () => {
    const store = freshStore();
    egw(['apply', '-f', join(reference, 'ip-pools.yaml')], { store });
    const out = egw(['get', 'ippools', '-o', 'yaml'], { store }).stdout;
    expect(parseAllDocuments(out)).toHaveLength(4);
    expect(egw(['validate', '-f', '-'], { input: out }).code).toBe(0);
  });
});

describe('egw selector eval', () => {
  it('prints true or false', () => {
    expect(egw(['selector', 'eval', "egress-code == 'red'", '--labels', '{"egress-code":"red"}']).stdout).toBe('true\n');
    expect(egw(['selector', 'eval', "egress-code != 'red'", '--labels', '{}']).stdout).toBe('true\n');
    expect(egw(['selector', 'eval', 'has(x)', '--labels', '{}']).stdout).toBe('false\n');
  });

  it('exits 2 with the message on a parse error', () => {
    const r = egw(['selector', 'eval', "a == 'x' &&"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: invalid selector/);
  });
});
