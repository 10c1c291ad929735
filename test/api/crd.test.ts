/**
 * The generated CRDs: structural (checked by a small checker of the rules kube-apiserver applies), names and
 * scope from the kind registry, defaults that validate and agree with egw's own defaulting, CEL rules with
 * messages in egw's form, and the record CRD. Pure; test/kubernetes/crds.test.ts applies them for real.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { apiCrds, crdFor, recordCrd, type CrdSchema, type CustomResourceDefinition } from '../../src/api/crd.js';
import { KINDS, kindInfo, parseManifests, validateDocument } from '../../src/api/index.js';
import { checkStructure } from '../../src/api/structural.js';
import { isEgwError } from '../../src/platform/errors.js';

/** The JSONSchemaProps keys the generator may write (kube-apiserver refuses unknown ones under strict decoding). */
const ALLOWED_KEYS = new Set([
  'type', 'description', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'default', 'minimum', 'maximum',
  'minLength', 'maxLength', 'pattern', 'minItems', 'maxItems', 'anyOf', 'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-list-type', 'x-kubernetes-validations',
]);

/** Every violation of the structural-schema rules (and of what CRDs forbid outright) under `node`. */
function structuralProblems(node: CrdSchema, path: string, out: string[] = []): string[] {
  for (const key of Object.keys(node)) if (!ALLOWED_KEYS.has(key)) out.push(`${path}: keyword ${key} is not allowed`);
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node.type === undefined && !intOrString && !preserve) out.push(`${path}: no type`);
  if (node.properties !== undefined && node.additionalProperties !== undefined) out.push(`${path}: properties and additionalProperties`);
  if ((node.properties !== undefined || node.additionalProperties !== undefined) && node.type !== 'object') out.push(`${path}: fields on a non-object`);
  if (node.items !== undefined && node.type !== 'array') out.push(`${path}: items on a non-array`);
  if (node.type === 'array' && node.items === undefined) out.push(`${path}: array without items`);
  if (node.anyOf !== undefined) {
    // The one union structural schemas allow (besides pure value validations): int-or-string.
    const ok = intOrString && node.anyOf.length === 2 && node.anyOf.every((a) => Object.keys(a).length === 1 && (a.type === 'integer' || a.type === 'string'));
    if (!ok) out.push(`${path}: anyOf other than int-or-string`);
  }
  if (node.pattern !== undefined) {
    // Go's RE2 has no look-around, back-references or atomic groups.
    if (/\(\?[=!<>]|\\[1-9]/.test(node.pattern)) out.push(`${path}: pattern ${node.pattern} is not RE2`);
    try {
      new RegExp(node.pattern.replace('(?i)', ''));
    } catch {
      out.push(`${path}: pattern ${node.pattern} does not compile`);
    }
  }
  for (const rule of node['x-kubernetes-validations'] ?? []) {
    if (!/; expected ./.test(rule.message)) out.push(`${path}: rule message "${rule.message}" does not say what would be right`);
    if (rule.fieldPath !== undefined && !rule.fieldPath.startsWith('.')) out.push(`${path}: fieldPath ${rule.fieldPath}`);
  }
  for (const [k, p] of Object.entries(node.properties ?? {})) structuralProblems(p, `${path}.${k}`, out);
  if (node.additionalProperties !== undefined) structuralProblems(node.additionalProperties, `${path}.*`, out);
  if (node.items !== undefined) structuralProblems(node.items, `${path}[]`, out);
  return out;
}

/** Every (path, node) of a schema, depth first. */
function* nodes(node: CrdSchema, path = ''): Generator<[string, CrdSchema]> {
  yield [path, node];
  for (const [k, p] of Object.entries(node.properties ?? {})) yield* nodes(p, path === '' ? k : `${path}.${k}`);
  if (node.additionalProperties !== undefined) yield* nodes(node.additionalProperties, `${path}.*`);
  if (node.items !== undefined) yield* nodes(node.items, `${path}[]`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** kube-apiserver's structural defaulting: fill absent fields with their default, then descend (into defaults too). */
function crdDefault(schema: CrdSchema, value: unknown): unknown {
  if (Array.isArray(value)) return schema.items === undefined ? value : value.map((v) => crdDefault(schema.items!, v));
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = { ...value };
  const props = schema.properties ?? {};
  for (const [k, p] of Object.entries(props)) if (out[k] === undefined && p.default !== undefined) out[k] = structuredClone(p.default);
  for (const [k, v] of Object.entries(out)) {
    const p = props[k] ?? schema.additionalProperties;
    if (p !== undefined) out[k] = crdDefault(p, v);
  }
  return out;
}

const schemaOf = (c: CustomResourceDefinition): CrdSchema => c.spec.versions[0]!.schema.openAPIV3Schema;
const crds = apiCrds();
const byKind = new Map(crds.map((c) => [c.spec.names.kind, c]));

describe('apiCrds', () => {
  it('has one CRD per kind outside the core group, in KINDS order', () => {
    expect(crds.map((c) => c.spec.names.kind)).toEqual(['FelixConfiguration', 'AWSSubnet', 'IPPool', 'IPReservation', 'EgressGatewayPolicy', 'EgressGateway']);
    expect(crds.map((c) => c.spec.names.kind)).toEqual(KINDS.filter((k) => k.group !== '').map((k) => k.kind));
  });

  it.each(crds.map((c) => [c.spec.names.kind, c] as const))('%s: names, group, scope and version come from the registry', (kind, c) => {
    const info = kindInfo(kind)!;
    expect(c.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(c.metadata.name).toBe(`${info.plural}.${info.group}`);
    expect(c.spec.group).toBe(info.group);
    expect(c.spec.names).toEqual({
      kind,
      listKind: `${kind}List`,
      plural: info.plural,
      singular: info.singular,
      ...(info.shortNames.length > 0 ? { shortNames: info.shortNames } : {}),
    });
    expect(c.spec.scope).toBe(info.namespaced ? 'Namespaced' : 'Cluster');
    expect(c.spec.versions.map((v) => v.name)).toEqual([info.version]);
    expect(c.spec.versions[0]!.subresources !== undefined).toBe(kind === 'EgressGateway');
    expect(c.spec.versions[0]!.additionalPrinterColumns.at(-1)).toEqual({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
  });

  it('names the scopes of the kinds the brief lists', () => {
    expect(byKind.get('EgressGateway')!.spec.scope).toBe('Namespaced');
    for (const k of ['IPPool', 'IPReservation', 'FelixConfiguration', 'EgressGatewayPolicy', 'AWSSubnet']) expect(byKind.get(k)!.spec.scope).toBe('Cluster');
  });

  it.each(crds.map((c) => [c.spec.names.kind, c] as const))('%s: the schema is structural', (_kind, c) => {
    const schema = schemaOf(c);
    expect(structuralProblems(schema, '')).toEqual([]);
    expect(schema.type).toBe('object');
    // metadata may only say it is an object (and may declare name without restricting it).
    expect(schema.properties!.metadata).toEqual({ type: 'object', properties: { name: { type: 'string' } } });
    expect(schema.properties!.apiVersion).toMatchObject({ type: 'string' });
    expect(JSON.stringify(schema)).not.toMatch(/"\$(id|schema|ref)"|"x-egw-|"const"|"uniqueItems"|"oneOf"|"allOf"/);
  });

  it.each(crds.map((c) => [c.spec.names.kind, c] as const))('%s: every default is valid under its own node', (_kind, c) => {
    for (const [path, node] of nodes(schemaOf(c))) {
      if (node.default === undefined) continue;
      const { problems } = checkStructure(node, node.default, []);
      expect(problems, `${path}: ${JSON.stringify(problems)}`).toEqual([]);
    }
  });

  it.each(crds.map((c) => [c.spec.names.kind, c] as const))('%s: printer columns point at fields of the schema', (_kind, c) => {
    const paths = new Set([...nodes(schemaOf(c))].map(([p]) => p));
    for (const col of c.spec.versions[0]!.additionalPrinterColumns) {
      const field = col.jsonPath.slice(1);
      const known = paths.has(field) || field.startsWith('metadata.') || field.startsWith('status.');
      expect(known, col.jsonPath).toBe(true);
    }
  });

  it('IPPool: the columns users want, Calico defaults, CEL rules with egw messages', () => {
    const c = byKind.get('IPPool')!;
    expect(c.spec.versions[0]!.additionalPrinterColumns.map((col) => [col.name, col.jsonPath])).toEqual([
      ['CIDR', '.spec.cidr'],
      ['AWS Subnet', '.spec.awsSubnetID'],
      ['Allowed Uses', '.spec.allowedUses'],
      ['Disabled', '.spec.disabled'],
      ['Age', '.metadata.creationTimestamp'],
    ]);
    const spec = schemaOf(c).properties!.spec!;
    expect(spec.required).toEqual(['cidr']);
    expect(spec.properties!.allowedUses!.default).toEqual(['Workload', 'Tunnel']);
    expect(spec.properties!.ipipMode).toMatchObject({ enum: ['Never', 'Always', 'CrossSubnet'], default: 'Never' });
    expect(spec.properties!.blockSize!.default).toBeUndefined(); // 26 or 122 depending on the CIDR: egw's defaulting
    expect(spec.properties!.cidr!['x-kubernetes-validations']!.map((r) => r.rule)).toContain('isCIDR(self)');
  });

  it('EgressGateway: operator defaults, probe defaults, replicas/ready columns, the elastic-IP rule', () => {
    const c = byKind.get('EgressGateway')!;
    expect(c.spec.versions[0]!.additionalPrinterColumns.map((col) => col.jsonPath)).toEqual(['.spec.replicas', '.status.readyReplicas', '.status.state', '.metadata.creationTimestamp']);
    const spec = schemaOf(c).properties!.spec!.properties!;
    expect(spec.replicas).toMatchObject({ type: 'integer', minimum: 0, default: 1 });
    expect(spec.logSeverity).toMatchObject({ enum: ['Trace', 'Debug', 'Info', 'Warn', 'Error', 'Fatal'], default: 'Info' });
    expect(spec.aws!.properties!.nativeIP).toMatchObject({ enum: ['Enabled', 'Disabled'], default: 'Disabled' });
    expect(spec.aws!['x-kubernetes-validations']![0]).toMatchObject({ fieldPath: '.nativeIP', message: expect.stringContaining('NativeIP must be enabled when elastic IPs are used') as unknown });
    const fd = spec.egressGatewayFailureDetection!.properties!;
    expect(fd.healthTimeoutDataStoreSeconds).toMatchObject({ minimum: 1, default: 90 });
    expect([fd.icmpProbe!.properties!.intervalSeconds!.default, fd.icmpProbe!.properties!.timeoutSeconds!.default]).toEqual([5, 15]);
    expect([fd.httpProbe!.properties!.intervalSeconds!.default, fd.httpProbe!.properties!.timeoutSeconds!.default]).toEqual([10, 30]);
    expect(schemaOf(c).properties!.status!['x-kubernetes-preserve-unknown-fields']).toBe(true);
    // Quantities: the int-or-string form, the pattern outside anyOf.
    const requests = spec.template!.properties!.spec!.properties!.containers!.items!.properties!.resources!.properties!.requests!;
    expect(requests.additionalProperties).toMatchObject({ 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] });
    expect(requests.additionalProperties!.pattern).toBeDefined();
  });

  it('FelixConfiguration: case-insensitive enums become (?i) patterns; fields egw does not type are kept as written', () => {
    const spec = schemaOf(byKind.get('FelixConfiguration')!).properties!.spec!.properties!;
    expect(spec.egressIPSupport!.pattern).toBe('^(?i)(Disabled|EnabledPerNamespace|EnabledPerNamespaceOrPerPod)$');
    expect(spec.egressIPSupport!.enum).toBeUndefined();
    expect(spec.bpfEnabled).toEqual({ 'x-kubernetes-preserve-unknown-fields': true });
    expect(byKind.get('FelixConfiguration')!.spec.versions[0]!.additionalPrinterColumns[0]!.jsonPath).toBe('.spec.egressIPSupport');
  });

  it('refuses a core-group kind', () => {
    expect(() => crdFor(kindInfo('Pod')!)).toThrow(/core group/);
    try {
      crdFor(kindInfo('Namespace')!);
    } catch (err) {
      expect(isEgwError(err, 'InvalidInput')).toBe(true);
    }
  });

  it('is deterministic', () => {
    expect(apiCrds()).toEqual(crds);
  });
});

/** Reference manifests plus the corners where CRD defaults and egw's defaulting could part ways. */
function defaultingCases(): { name: string; doc: Record<string, unknown> }[] {
  const out: { name: string; doc: Record<string, unknown> }[] = [];
  for (const f of readdirSync('examples/reference').sort()) {
    const { documents } = parseManifests(readFileSync(`examples/reference/${f}`, 'utf8'), f);
    documents.forEach((d, i) => {
      if (isObject(d.value) && byKind.has(String(d.value.kind))) out.push({ name: `${f}#${i}`, doc: d.value });
    });
  }
  const meta = (name: string, namespace?: string) => ({ name, ...(namespace === undefined ? {} : { namespace }) });
  out.push(
    { name: 'minimal IPPool', doc: { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: meta('p'), spec: { cidr: '100.64.0.0/24' } } },
    {
      name: 'EgressGateway with probes and aws, nothing defaulted',
      doc: {
        apiVersion: 'operator.tigera.io/v1',
        kind: 'EgressGateway',
        metadata: meta('g', 'default'),
        spec: {
          ipPools: [{ name: 'p' }],
          aws: {},
          egressGatewayFailureDetection: { icmpProbe: { ips: ['192.0.2.1'] }, httpProbe: { urls: ['http://192.0.2.1:8080/health'] } },
        },
      },
    },
    {
      name: 'EgressGatewayPolicy with a bare gateway',
      doc: {
        apiVersion: 'projectcalico.org/v3',
        kind: 'EgressGatewayPolicy',
        metadata: meta('e'),
        spec: { rules: [{ destination: { cidr: '10.0.0.0/8' } }, { gateway: { selector: "a == 'b'", namespaceSelector: 'all()' } }] },
      },
    },
  );
  return out;
}

describe('CRD defaults agree with egw defaulting', () => {
  it.each(defaultingCases().map((c) => [c.name, c.doc] as const))('%s: stored the same whether or not the API server defaulted it first', (_name, doc) => {
    const schema = schemaOf(byKind.get(String(doc.kind))!);
    const loc = { file: 'x.yaml', documentIndex: 0, line: 1 };
    const direct = validateDocument(doc, loc);
    expect(direct.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const viaCrd = validateDocument(crdDefault(schema, doc), loc);
    expect(viaCrd.resource).toEqual(direct.resource);
  });
});

describe('recordCrd', () => {
  it('keeps spec and status as any JSON value, with only the age column', () => {
    const c = recordCrd({ group: 'records.egw.io', version: 'v1', kind: 'IPAMBlock', plural: 'ipamblocks', namespaced: false, description: 'One IPAM block.' });
    expect(c.metadata.name).toBe('ipamblocks.records.egw.io');
    expect(c.spec.scope).toBe('Cluster');
    expect(c.spec.names).toEqual({ kind: 'IPAMBlock', listKind: 'IPAMBlockList', plural: 'ipamblocks', singular: 'ipamblock' });
    const v = c.spec.versions[0]!;
    expect(v.subresources).toBeUndefined();
    expect(v.additionalPrinterColumns).toEqual([{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }]);
    const schema = v.schema.openAPIV3Schema;
    expect(schema.description).toBe('One IPAM block.');
    expect(schema.properties!.spec!['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(schema.properties!.status!['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(structuralProblems(schema, '')).toEqual([]);
    expect(recordCrd({ group: 'records.egw.io', version: 'v1', kind: 'Handle', plural: 'handles', namespaced: true, description: '' }).spec.scope).toBe('Namespaced');
  });

  it('refuses names Kubernetes would refuse, naming each', () => {
    const bad = () => recordCrd({ group: 'egw', version: '1', kind: 'ipamBlock', plural: 'IPAMBlocks', namespaced: false, description: '' });
    expect(bad).toThrow(/group "egw".*version "1".*kind "ipamBlock".*plural "IPAMBlocks"/);
    try {
      bad();
    } catch (err) {
      expect(isEgwError(err, 'InvalidInput')).toBe(true);
    }
  });
});
