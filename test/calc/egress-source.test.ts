import { describe, expect, it } from 'vitest';
import { egressAnnotationsOf, resolveEgressSource, type EgressAnnotations } from '../../src/calc/egress-source.js';
import { MAXHOPS, NSSEL, POLICY, SEL } from './fixtures.js';

const a = (m: Record<string, string>): EgressAnnotations | undefined => egressAnnotationsOf(m);
const red = "egress-code == 'red'";
const blue = "egress-code == 'blue'";

describe('egressAnnotationsOf', () => {
  it('reads the four annotations and treats blank values as absent', () => {
    expect(egressAnnotationsOf(undefined)).toBeUndefined();
    expect(a({ other: 'x' })).toBeUndefined();
    expect(a({ [SEL]: '  ' })).toBeUndefined();
    expect(a({ [SEL]: ` ${red} `, [MAXHOPS]: '2' })).toEqual({ selector: red, namespaceSelector: undefined, policy: undefined, maxNextHops: '2' });
  });
});

describe('resolveEgressSource', () => {
  const nsSel = a({ [SEL]: red, [NSSEL]: "projectcalico.org/name == 'egw'", [MAXHOPS]: '2' });
  const nsPolicy = a({ [POLICY]: 'p1' });
  const podSel = a({ [SEL]: blue });
  const podPolicy = a({ [POLICY]: 'p2' });
  const podOnlyNsSel = a({ [NSSEL]: 'all()', [MAXHOPS]: '1' });
  const both = a({ [SEL]: blue, [NSSEL]: 'all()', [MAXHOPS]: '3', [POLICY]: 'p3' });

  const cases: { name: string; mode: 'Disabled' | 'EnabledPerNamespace' | 'EnabledPerNamespaceOrPerPod'; pod?: EgressAnnotations | undefined; ns?: EgressAnnotations | undefined; want: unknown; note?: RegExp }[] = [
    { name: 'Disabled ignores everything', mode: 'Disabled', pod: podSel, ns: nsSel, want: undefined, note: /Disabled/ },
    { name: 'PerNamespace: the namespace selector', mode: 'EnabledPerNamespace', ns: nsSel, want: { from: 'namespace', method: 'selector', selector: red, namespaceSelector: "projectcalico.org/name == 'egw'", maxNextHops: 2 } },
    { name: 'PerNamespace: pod annotations ignored', mode: 'EnabledPerNamespace', pod: podSel, ns: nsPolicy, want: { from: 'namespace', method: 'policy', policy: 'p1' }, note: /EnabledPerNamespace/ },
    { name: 'PerNamespace: annotated pod in a plain namespace gets nothing', mode: 'EnabledPerNamespace', pod: podSel, want: undefined, note: /EnabledPerNamespace/ },
    { name: 'PerPod: pod selector replaces the namespace policy', mode: 'EnabledPerNamespaceOrPerPod', pod: podSel, ns: nsPolicy, want: { from: 'pod', method: 'selector', selector: blue, namespaceSelector: undefined, maxNextHops: 0 } },
    { name: 'PerPod: pod policy replaces the namespace selector as a set', mode: 'EnabledPerNamespaceOrPerPod', pod: podPolicy, ns: nsSel, want: { from: 'pod', method: 'policy', policy: 'p2' } },
    { name: 'PerPod: no field-by-field inheritance (pod selector, namespace namespaceSelector not taken)', mode: 'EnabledPerNamespaceOrPerPod', pod: podSel, ns: nsSel, want: { from: 'pod', method: 'selector', selector: blue, namespaceSelector: undefined, maxNextHops: 0 } },
    { name: 'PerPod: pod namespaceSelector/maxNextHops alone do not override', mode: 'EnabledPerNamespaceOrPerPod', pod: podOnlyNsSel, ns: nsSel, want: { from: 'namespace', method: 'selector', selector: red, namespaceSelector: "projectcalico.org/name == 'egw'", maxNextHops: 2 }, note: /apply only together/ },
    { name: 'policy wins over selector on the same object', mode: 'EnabledPerNamespaceOrPerPod', pod: both, want: { from: 'pod', method: 'policy', policy: 'p3' }, note: /selector, .*namespaceSelector, .*maxNextHops ignored: egressGatewayPolicy is set on the same Pod/ },
    { name: 'policy wins on a namespace too', mode: 'EnabledPerNamespace', ns: both, want: { from: 'namespace', method: 'policy', policy: 'p3' }, note: /same Namespace/ },
    { name: 'namespace with only namespaceSelector: nothing', mode: 'EnabledPerNamespace', ns: podOnlyNsSel, want: undefined, note: /no effect without a selector/ },
    { name: 'invalid maxNextHops means all', mode: 'EnabledPerNamespace', ns: a({ [SEL]: red, [MAXHOPS]: 'two' }), want: { from: 'namespace', method: 'selector', selector: red, namespaceSelector: undefined, maxNextHops: 0 }, note: /not a non-negative integer/ },
    { name: 'no annotations: nothing', mode: 'EnabledPerNamespaceOrPerPod', want: undefined },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const notes: string[] = [];
      expect(resolveEgressSource(c.mode, c.pod, c.ns, notes)).toEqual(c.want);
      if (c.note !== undefined) expect(notes.join('\n')).toMatch(c.note);
      // Notes are optional and never change the answer.
      expect(resolveEgressSource(c.mode, c.pod, c.ns)).toEqual(c.want);
    });
  }
});
