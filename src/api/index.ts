/**
 * egw's resource model: the Calico-compatible kinds (schemas, types, defaults, validation), manifest
 * parsing, cross-resource checks and the kind registry. Everything here is pure.
 *
 * Typical use (what `egw apply` / `egw validate` do):
 * ```ts
 * const { documents, issues } = parseManifests(text, file);
 * for (const doc of documents) {
 *   const { resource, issues: more } = validateDocument(doc.value, doc);
 *   ...
 * }
 * issues.push(...crossCheck(incoming, existing));
 * issues.map(formatIssue);
 * ```
 */
export * from './annotations.js';
export * from './gateway-trust.js';
export * from './allow-list.js';
export { checkStructure, describeSchema, type SchemaNode, type StructuralProblem, type StructuralResult } from './structural.js';
export { crossCheck, resourceKey, type IncomingResource } from './cross-check.js';
export { applyDefaults } from './defaults.js';
export * from './ip.js';
export { formatIssue, formatPath, hasErrors, IssueSink, type DocumentLocation, type Issue, type IssueSubject, type PathSegment, type Severity } from './issues.js';
export { jsonSchemaFor, keyOf, kindInfo, KINDS, resolveKind, type AnyResource, type KindInfo, type KindName, type ResourceIdentity, type ResourceOf } from './kinds.js';
export * from './kinds/aws-subnet.js';
export * from './kinds/egress-gateway-policy.js';
export * from './kinds/egress-gateway.js';
export * from './kinds/felix-configuration.js';
export * from './kinds/ip-pool.js';
export * from './kinds/ip-reservation.js';
export * from './kinds/kubernetes.js';
export { describeDocument, parseManifests, type ManifestDocument, type ParsedManifests } from './manifests.js';
export { ObjectMetaSchema, type ObjectMeta } from './schema-kit.js';
export { validateDocument, type ValidateOptions, type ValidationResult } from './validate.js';
export { isAwsSubnetId, isDnsLabel, isDnsSubdomain, parseDuration } from './checks.js';
