/** Issue records and their one-line form. */
import { describe, expect, test } from 'vitest';
import { formatIssue, formatPath, hasErrors, IssueSink, type Issue } from '../../src/api/index.js';

const base: Issue = {
  severity: 'error',
  rule: 'EgressGatewayPolicy.empty-selector',
  file: 'examples/bad.yaml',
  documentIndex: 2,
  kind: 'EgressGatewayPolicy',
  name: 'egw-policy1',
  path: 'spec.rules[1].gateway.selector',
  message: 'selector is empty',
  expected: `a selector such as "egress-code == 'red'"`,
};

describe('formatIssue', () => {
  test('one line: file#document Kind/name path: message; expected …', () => {
    expect(formatIssue(base)).toBe(`examples/bad.yaml#2 EgressGatewayPolicy/egw-policy1 spec.rules[1].gateway.selector: selector is empty; expected a selector such as "egress-code == 'red'"`);
  });

  test('namespaced resources show their namespace; warnings are marked; document-level issues have no path', () => {
    expect(formatIssue({ ...base, kind: 'EgressGateway', namespace: 'calico-egress', name: 'red', severity: 'warning', path: 'spec.ipPools[0]' })).toBe(
      `warning: examples/bad.yaml#2 EgressGateway/calico-egress/red spec.ipPools[0]: selector is empty; expected a selector such as "egress-code == 'red'"`,
    );
    expect(formatIssue({ ...base, kind: '', name: '', path: '', message: 'YAML syntax error at line 3, column 1: oops', expected: 'well-formed YAML' })).toBe(
      'examples/bad.yaml#2: YAML syntax error at line 3, column 1: oops; expected well-formed YAML',
    );
    expect(formatIssue({ ...base, name: '' })).toContain('EgressGatewayPolicy/<no name> ');
  });
});

describe('formatPath', () => {
  test('identifiers with dots, indexes in brackets, other keys quoted', () => {
    expect(formatPath(['spec', 'rules', 1, 'gateway', 'selector'])).toBe('spec.rules[1].gateway.selector');
    expect(formatPath(['metadata', 'annotations', 'egress.projectcalico.org/selector'])).toBe('metadata.annotations["egress.projectcalico.org/selector"]');
    expect(formatPath(['items', 0, 'spec'])).toBe('items[0].spec');
    expect(formatPath([])).toBe('');
  });
});

describe('IssueSink', () => {
  test('prefixes the document path, looks up the deepest known line, and tracks failure', () => {
    const lines: Record<string, number> = { 'items.0': 4, 'items.0.spec': 8 };
    const sink = new IssueSink(
      { file: 'l.yaml', documentIndex: 3, line: 1, pathPrefix: ['items', 0], lineOf: (p) => lines[p.join('.')] },
      { kind: 'IPPool', name: 'p' },
    );
    sink.warn(['spec', 'cidr'], 'r1', 'm1', 'e1');
    expect(sink.failed).toBe(false);
    sink.error(['metadata', 'name'], 'r2', 'm2', 'e2');
    expect(sink.failed).toBe(true);
    expect(sink.issues.map((i) => [i.severity, i.path, i.line, i.documentIndex])).toEqual([
      ['warning', 'items[0].spec.cidr', 8, 3],
      ['error', 'items[0].metadata.name', 4, 3],
    ]);
    expect(hasErrors(sink.issues)).toBe(true);
    expect(hasErrors(sink.issues.filter((i) => i.severity === 'warning'))).toBe(false);
  });
});
