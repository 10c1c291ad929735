/** parseManifests: documents, numbering, lines, YAML errors, List expansion. */
import { describe, expect, test } from 'vitest';
import { formatIssue, parseManifests, validateDocument } from '../../src/api/index.js';

describe('parseManifests', () => {
  test('documents are numbered from 1 in file order, counting empty ones, which are skipped', () => {
    const text = '---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# only a comment\n---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n---\n';
    const { documents, issues } = parseManifests(text, 'ns.yaml');
    expect(issues).toEqual([]);
    expect(documents.map((d) => [d.documentIndex, d.line, (d.value as { metadata: { name: string } }).metadata.name])).toEqual([
      [1, 2, 'a'],
      [4, 10, 'b'],
    ]);
    expect(documents[0]!.file).toBe('ns.yaml');
  });

  test('empty text and comment-only text have no documents', () => {
    expect(parseManifests('', 'e.yaml')).toEqual({ documents: [], issues: [] });
    expect(parseManifests('# nothing\n', 'e.yaml')).toEqual({ documents: [], issues: [] });
  });

  test('a YAML syntax error names the file, document and line; the other documents still parse', () => {
    const text = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: [b\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n';
    const { documents, issues } = parseManifests(text, 'bad.yaml');
    expect(documents.map((d) => d.documentIndex)).toEqual([1, 3]);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ severity: 'error', rule: 'yaml.syntax', file: 'bad.yaml', documentIndex: 2, kind: '', name: '', path: '' });
    expect(issues[0]!.line).toBeGreaterThanOrEqual(8);
    expect(formatIssue(issues[0]!)).toMatch(/^bad\.yaml#2: YAML syntax error at line \d+, column \d+: /);
  });

  test('duplicate keys are YAML errors', () => {
    const { documents, issues } = parseManifests('apiVersion: v1\nkind: Namespace\nkind: Pod\nmetadata: {name: a}\n', 'dup.yaml');
    expect(documents).toEqual([]);
    expect(issues[0]!.message).toContain('line 3');
  });

  test('issue lines point at the offending key', () => {
    const text = 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/16\n  blockSize: 16\n';
    const doc = parseManifests(text, 'p.yaml').documents[0]!;
    const issue = validateDocument(doc.value, doc).issues[0]!;
    expect(issue.path).toBe('spec.blockSize');
    expect(issue.line).toBe(7);
    // A defaulted field that is not in the file falls back to its nearest written ancestor.
    const aws = 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 100.64.0.0/26\n  awsSubnetID: subnet-0a1b2c3d\n  allowedUses: [Workload]\n  disableBGPExport: true\n';
    const d2 = parseManifests(aws, 'a.yaml').documents[0]!;
    expect(validateDocument(d2.value, d2).issues.map((i) => [i.path, i.line])).toEqual([['spec.blockSize', 5]]);
  });

  test('kind: List items become documents of their own, with item paths and lines', () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: a}
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: p}
  spec:
    cidr: 10.0.0.0/16
    blockSize: 40
`;
    const { documents } = parseManifests(text, 'list.yaml');
    expect(documents.map((d) => [d.documentIndex, d.line, d.pathPrefix])).toEqual([
      [1, 4, ['items', 0]],
      [1, 7, ['items', 1]],
    ]);
    expect(validateDocument(documents[0]!.value, documents[0]!).resource?.metadata.name).toBe('a');
    const issue = validateDocument(documents[1]!.value, documents[1]!).issues[0]!;
    expect([issue.path, issue.line, issue.message]).toEqual(['items[1].spec.blockSize', 12, 'IPv4 block size must be between 20 and 32 (got 40)']);
  });

  test('calicoctl-style <Kind>List documents are expanded too; unknown lists are left alone', () => {
    const text = 'apiVersion: projectcalico.org/v3\nkind: IPPoolList\nitems:\n- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: p}\n  spec: {cidr: 10.0.0.0/16}\n';
    expect(parseManifests(text, 'l.yaml').documents).toHaveLength(1);
    const other = parseManifests('apiVersion: v1\nkind: SecretList\nitems: []\n', 'o.yaml').documents;
    expect(other).toHaveLength(1);
    expect(formatIssue(validateDocument(other[0]!.value, other[0]!).issues[0]!)).toBe('o.yaml#1 SecretList/<no name> kind: unknown kind "SecretList"; expected one of FelixConfiguration, AWSSubnet, IPPool, IPReservation, EgressGatewayPolicy, Namespace, EgressGateway, Node, Pod');
  });

  test('a scalar document is reported by validation', () => {
    const { documents } = parseManifests('just text\n', 's.yaml');
    expect(validateDocument(documents[0]!.value, documents[0]!).issues.map((i) => i.rule)).toEqual(['document.not-a-mapping']);
  });

  test('alias bombs are refused instead of expanded', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 12; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`);
    const { documents, issues } = parseManifests(lines.join('\n'), 'bomb.yaml');
    expect(documents).toEqual([]);
    expect(issues.map((i) => i.rule)).toEqual(['yaml.syntax']);
  });
});
