/**
 * Validation of one manifest document: envelope, kind and apiVersion, structural schema, scope, name,
 * then the kind's own rules; a valid document comes back defaulted. Pure.
 */
import { checkName, isDnsLabel } from './checks.js';
import { applyDefaults } from './defaults.js';
import { IssueSink, type DocumentLocation, type Issue } from './issues.js';
import { KINDS, kindInfo, type AnyResource, type KindInfo } from './kinds.js';
import { validateAWSSubnet } from './kinds/aws-subnet.js';
import { validateEgressGatewayPolicy } from './kinds/egress-gateway-policy.js';
import { validateEgressGateway } from './kinds/egress-gateway.js';
import { validateFelixConfiguration } from './kinds/felix-configuration.js';
import { validateIPPool } from './kinds/ip-pool.js';
import { validateIPReservation } from './kinds/ip-reservation.js';
import { validateNamespace, validateNode, validatePod } from './kinds/kubernetes.js';
import { checkStructure, suggest } from './structural.js';

/** Options of {@link validateDocument}. */
export interface ValidateOptions {
  /**
   * Namespace given to a namespaced resource (EgressGateway, Pod) that has none, as kubectl does.
   * Default `default`.
   */
  readonly defaultNamespace?: string;
}

/** The outcome for one document: the stored form when there is no error, and every issue found. */
export interface ValidationResult {
  /** The validated resource with defaults applied; absent when any issue is an error. */
  readonly resource?: AnyResource;
  readonly issues: Issue[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Kind-specific rules, run on the structurally valid resource as written. */
function validateKind(resource: AnyResource, sink: IssueSink): void {
  switch (resource.kind) {
    case 'IPPool':
      return validateIPPool(resource, sink);
    case 'IPReservation':
      return validateIPReservation(resource, sink);
    case 'FelixConfiguration':
      return validateFelixConfiguration(resource, sink);
    case 'EgressGatewayPolicy':
      return validateEgressGatewayPolicy(resource, sink);
    case 'EgressGateway':
      return validateEgressGateway(resource, sink);
    case 'AWSSubnet':
      return validateAWSSubnet(resource, sink);
    case 'Namespace':
      return validateNamespace(resource, sink);
    case 'Pod':
      return validatePod(resource, sink);
    case 'Node':
      return validateNode(resource, sink);
  }
}

const CALICO_STORAGE_GROUP = 'crd.projectcalico.org';

/**
 * Validates one parsed document (any JSON value) against egw's resource model and returns the resource
 * with defaults applied when it has no errors. Issues carry `location` (file, document, lines).
 * Checks that need other resources are {@link crossCheck}'s job. Pure; never throws for bad input.
 */
export function validateDocument(value: unknown, location: DocumentLocation, options: ValidateOptions = {}): ValidationResult {
  try {
    return validateChecked(value, location, options);
  } catch (err) {
    // The promise above is a safety property: callers (the agent, the webhook) treat a resource that
    // cannot be validated as invalid, and a throw would stop them instead. The rules are written not to
    // throw (the selector parser bounds its depth and size); this net catches what they missed, such as a
    // stack overflow on a hostile document, and reports it as one error.
    const name = err instanceof Error ? err.name : 'error';
    const sink = new IssueSink(location, { kind: '', name: '' });
    sink.error([], 'document.unvalidatable', `the document could not be validated (${name}): it is too large, too deep or malformed`, 'a resource of ordinary size and nesting');
    return { issues: sink.issues };
  }
}

function validateChecked(value: unknown, location: DocumentLocation, options: ValidateOptions): ValidationResult {
  const meta = isPlainObject(value) && isPlainObject(value.metadata) ? value.metadata : {};
  const writtenKind = isPlainObject(value) ? (str(value.kind) ?? '') : '';
  const sink = new IssueSink(location, { kind: writtenKind, namespace: str(meta.namespace), name: str(meta.name) ?? '' });
  const fail = (): ValidationResult => ({ issues: sink.issues });

  if (!isPlainObject(value)) {
    sink.error([], 'document.not-a-mapping', 'a manifest document must be a mapping', 'a resource with apiVersion, kind, metadata and spec');
    return fail();
  }
  const info = resolveDocumentKind(value, sink);
  if (info === undefined) return fail();

  const { value: checked, problems } = checkStructure(info.schema, value);
  for (const p of problems) sink.error(p.path, p.rule, p.message, p.expected);
  if (problems.some((p) => p.fatal)) return fail();
  let resource = checked as AnyResource;

  const namespace = resource.metadata.namespace;
  if (info.namespaced) {
    if (namespace === undefined || namespace === '') {
      resource = { ...resource, metadata: { ...resource.metadata, namespace: options.defaultNamespace ?? 'default' } };
      sink.subject = { ...sink.subject, namespace: resource.metadata.namespace };
    } else if (!isDnsLabel(namespace)) {
      sink.error(['metadata', 'namespace'], 'metadata.invalid-namespace', `"${namespace}" is not a valid namespace name`, 'at most 63 lowercase letters, digits and "-"');
    }
  } else if (namespace !== undefined && namespace !== '') {
    sink.error(['metadata', 'namespace'], 'metadata.namespace-on-cluster-scoped', `${info.kind} is cluster-scoped and cannot have a namespace ("${namespace}")`, 'no metadata.namespace');
  }
  checkName(sink, resource.metadata.name, info.nameStyle);
  validateKind(resource, sink);
  if (sink.failed) return fail();
  return { resource: applyDefaults(resource), issues: sink.issues };
}

/** Checks `apiVersion` and `kind`; returns the registry entry or undefined after reporting why not. */
function resolveDocumentKind(value: Record<string, unknown>, sink: IssueSink): KindInfo | undefined {
  const kind = value.kind;
  const apiVersion = value.apiVersion;
  const knownKinds = KINDS.map((k) => k.kind);
  if (typeof kind !== 'string' || kind === '') {
    sink.error(['kind'], 'document.missing-kind', kind === undefined ? 'the document has no kind' : 'kind must be a non-empty string', `kind: one of ${knownKinds.join(', ')}`);
    return undefined;
  }
  const info = kindInfo(kind);
  if (info === undefined) {
    const guess = suggest(kind, knownKinds);
    sink.error(
      ['kind'],
      'document.unknown-kind',
      `unknown kind "${kind}"`,
      guess !== undefined ? `kind: ${guess} (kinds are case-sensitive)` : `one of ${knownKinds.join(', ')}`,
    );
    return undefined;
  }
  if (apiVersion !== info.apiVersion) {
    const isStorageForm = typeof apiVersion === 'string' && apiVersion.startsWith(`${CALICO_STORAGE_GROUP}/`) && info.group === 'projectcalico.org';
    sink.error(
      ['apiVersion'],
      'document.wrong-api-version',
      apiVersion === undefined
        ? 'the document has no apiVersion'
        : isStorageForm
          ? `apiVersion "${String(apiVersion)}" is Calico's internal storage form, not its API`
          : `apiVersion ${JSON.stringify(apiVersion)} does not serve kind ${kind}`,
      `apiVersion: ${info.apiVersion}`,
    );
    return undefined;
  }
  return info;
}
