/** The kind registry: names, scope, JSON Schemas. */
import { describe, expect, test } from 'vitest';
import { isEgwError } from '../../src/platform/errors.js';
import { checkStructure, jsonSchemaFor, keyOf, KINDS, resolveKind } from '../../src/api/index.js';
import { referenceIncoming } from './helpers.js';

describe('resolveKind', () => {
  const cases: [string, string][] = [
    ['IPPool', 'IPPool'], ['ippools', 'IPPool'], ['ippool', 'IPPool'], ['IPPOOLS', 'IPPool'], ['ipp', 'IPPool'], ['pools', 'IPPool'], ['ippools.projectcalico.org', 'IPPool'], ['ippools.crd.projectcalico.org', 'IPPool'],
    ['ipreservations', 'IPReservation'], ['ipreservation', 'IPReservation'], ['reservations', 'IPReservation'],
    ['felixconfigurations', 'FelixConfiguration'], ['felixconfig', 'FelixConfiguration'], ['FelixConfiguration', 'FelixConfiguration'],
    ['egressgatewaypolicies', 'EgressGatewayPolicy'], ['egressgatewaypolicy', 'EgressGatewayPolicy'], ['EgressGatewayPolicy', 'EgressGatewayPolicy'],
    ['egressgateways', 'EgressGateway'], ['egressgateway', 'EgressGateway'], ['egw', 'EgressGateway'], ['EGW', 'EgressGateway'], ['egressgateways.operator.tigera.io', 'EgressGateway'],
    ['namespaces', 'Namespace'], ['ns', 'Namespace'], ['pods', 'Pod'], ['po', 'Pod'], ['Pod', 'Pod'], ['nodes', 'Node'], ['no', 'Node'],
    ['awssubnets', 'AWSSubnet'], ['AWSSubnet', 'AWSSubnet'], ['awssubnets.egw.io', 'AWSSubnet'], [' ippools ', 'IPPool'],
  ];
  test.each(cases)('%s → %s', (name, kind) => {
    expect(resolveKind(name).kind).toBe(kind);
  });

  test('an unknown name is an UnknownKind error listing the known kinds', () => {
    try {
      resolveKind('ipools.example.com');
      expect.unreachable();
    } catch (err) {
      expect(isEgwError(err, 'UnknownKind')).toBe(true);
      if (!isEgwError(err)) return;
      for (const k of KINDS) expect(err.message).toContain(k.kind);
      expect(err.hint).toContain('egw');
    }
  });
});

describe('KINDS', () => {
  test('scope: EgressGateway and Pod are namespaced, the rest cluster-scoped', () => {
    expect(KINDS.filter((k) => k.namespaced).map((k) => k.kind).sort()).toEqual(['EgressGateway', 'Pod']);
  });

  test('API groups and versions', () => {
    expect(Object.fromEntries(KINDS.map((k) => [k.kind, k.apiVersion]))).toEqual({
      IPPool: 'projectcalico.org/v3',
      IPReservation: 'projectcalico.org/v3',
      FelixConfiguration: 'projectcalico.org/v3',
      EgressGatewayPolicy: 'projectcalico.org/v3',
      EgressGateway: 'operator.tigera.io/v1',
      Namespace: 'v1',
      Pod: 'v1',
      Node: 'v1',
      AWSSubnet: 'egw.io/v1',
    });
    expect(resolveKind('pods')).toMatchObject({ group: '', version: 'v1', plural: 'pods', singular: 'pod' });
  });

  test('no two kinds share a name', () => {
    const names = KINDS.flatMap((k) => [k.plural, k.singular, ...k.shortNames]);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('jsonSchemaFor', () => {
  test('returns plain JSON (no TypeBox symbols) describing the envelope and the spec', () => {
    for (const k of KINDS) {
      const schema = jsonSchemaFor(k.kind);
      expect(Object.getOwnPropertySymbols(schema)).toEqual([]);
      expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
      const props = schema.properties as Record<string, { const?: string }>;
      expect(Object.keys(props)).toEqual(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
      expect(props.kind?.const).toBe(k.kind);
      expect(props.apiVersion?.const).toBe(k.apiVersion);
      expect(typeof schema.description).toBe('string');
    }
  });

  test('kind-specific content: IPPool cidr is required, Felix lists every Felix field, EgressGateway enums', () => {
    const pool = jsonSchemaFor('ippool') as { properties: { spec: { required: string[] } } };
    expect(pool.properties.spec.required).toEqual(['cidr']);
    const felix = jsonSchemaFor('felixconfig') as { properties: { spec: { properties: Record<string, object> } } };
    expect(Object.keys(felix.properties.spec.properties).length).toBeGreaterThan(250);
    expect(felix.properties.spec.properties.egressIPSupport).toMatchObject({ enum: ['Disabled', 'EnabledPerNamespace', 'EnabledPerNamespaceOrPerPod'], 'x-egw-case-insensitive': true });
    expect(JSON.stringify(jsonSchemaFor('egw'))).toContain('"enum":["Trace","Debug","Info","Warn","Error","Fatal"]');
    expect(JSON.stringify(jsonSchemaFor('pod'))).toContain('"x-kubernetes-preserve-unknown-fields":true');
  });

  test('every stored reference resource satisfies its kind\'s plain JSON Schema', () => {
    for (const { resource } of referenceIncoming()) {
      const { problems } = checkStructure(jsonSchemaFor(resource.kind), resource);
      expect(problems).toEqual([]);
    }
  });
});

describe('keyOf', () => {
  test('namespaced kinds carry their namespace, cluster-scoped ones do not', () => {
    const all = referenceIncoming().map((i) => keyOf(i.resource));
    expect(all).toContainEqual({ kind: 'EgressGateway', namespace: 'calico-egress', name: 'egress-gateway-red' });
    expect(all).toContainEqual({ kind: 'Pod', namespace: 'my-namespace', name: 'my-netcat-pod' });
    expect(all).toContainEqual({ kind: 'IPPool', name: 'egress-red-west-1' });
  });
});
