/**
 * The admission decision: egw's own validation (src/api/validate.ts) and its cross-resource checks
 * (src/api/cross-check.ts) run on an AdmissionReview's object, answered in AdmissionReview v1 form.
 * {@link decideAdmission} is pure; {@link AdmissionReviewer} reads the other resources the checks need
 * through the {@link Datastore} port and never throws.
 */
import { crossCheck } from '../../api/cross-check.js';
import type { Issue } from '../../api/issues.js';
import { kindInfo, type AnyResource, type KindName } from '../../api/kinds.js';
import { validateDocument } from '../../api/validate.js';
import type { Datastore } from '../../datastore/contract.js';
import { errorMessage } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';

/** The kinds the webhook validates (CREATE and UPDATE), with the kinds their cross-resource checks read. */
export const WEBHOOK_KINDS: ReadonlyMap<KindName, readonly KindName[]> = new Map<KindName, readonly KindName[]>([
  ['IPPool', ['IPPool', 'AWSSubnet', 'EgressGateway']],
  ['IPReservation', []],
  ['FelixConfiguration', []],
  ['EgressGatewayPolicy', []],
  ['EgressGateway', ['IPPool', 'Namespace', 'FelixConfiguration']],
]);

/** The `request` of an AdmissionReview v1, as far as the webhook reads it. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: string; readonly version?: string; readonly kind?: string };
  readonly operation?: string;
  readonly namespace?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
}

/** The `response` of an AdmissionReview v1. */
export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly reason?: string; readonly message: string };
  readonly warnings?: readonly string[];
}

/** A whole AdmissionReview v1 answer. */
export interface AdmissionReviewResponse {
  readonly apiVersion: 'admission.k8s.io/v1';
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

/** At most this many warnings go back (the API server truncates long lists and long warnings itself). */
const MAX_WARNINGS = 20;

/**
 * One issue as one line, as `egw validate` prints it without the file position (the object has none):
 * `IPPool/pool-a spec.cidr: … ; expected …`, `EgressGateway/ns/name …`.
 */
export function formatAdmissionIssue(issue: Issue): string {
  const ns = issue.namespace === undefined || issue.namespace === '' ? '' : `${issue.namespace}/`;
  const path = issue.path === '' ? '' : ` ${issue.path}`;
  return `${issue.kind}/${ns}${issue.name}${path}: ${issue.message}; expected ${issue.expected}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const LOCATION = { file: 'admission', documentIndex: 1 } as const;

/**
 * The resources of a datastore list that pass egw's validation, defaulted. An invalid stored resource is
 * treated as absent (docs/architecture.md, habit 7): it cannot vouch for or against a new one.
 */
export function validStored(values: readonly unknown[]): AnyResource[] {
  const out: AnyResource[] = [];
  for (const v of values) {
    const r = validateDocument(v, LOCATION);
    if (r.resource !== undefined) out.push(r.resource);
  }
  return out;
}

/**
 * The decision on one object (pure): denied (422) with every error, one line each, joined by newlines;
 * warnings go back as `warnings` either way. `existing` is the stored state the cross-resource checks
 * read (the object's old version included, for the immutable fields).
 */
export function decideAdmission(uid: string, object: unknown, existing: readonly AnyResource[]): AdmissionResponse {
  const result = validateDocument(object, LOCATION);
  const issues = [...result.issues];
  if (result.resource !== undefined) issues.push(...crossCheck([{ resource: result.resource, location: LOCATION }], existing));
  const errors = issues.filter((i) => i.severity === 'error').map(formatAdmissionIssue);
  const warnings = issues.filter((i) => i.severity === 'warning').map(formatAdmissionIssue).slice(0, MAX_WARNINGS);
  const withWarnings = warnings.length === 0 ? {} : { warnings };
  if (errors.length === 0) return { uid, allowed: true, ...withWarnings };
  // One line per error, as `egw validate` prints them (each line already holds "; expected").
  return { uid, allowed: false, status: { code: 422, reason: 'Invalid', message: errors.join('\n') }, ...withWarnings };
}

/** Dependencies of {@link AdmissionReviewer}. */
export interface AdmissionReviewerDeps {
  /** Where the other resources are read (on a cluster: the Kubernetes datastore). */
  readonly store: Datastore;
  readonly logger: Logger;
}

/** Options of {@link AdmissionReviewer}. */
export interface AdmissionReviewerOptions {
  /**
   * Deadline for reading the other resources, ms (default 4000: below the webhook's timeoutSeconds, so
   * that the answer is egw's clear denial rather than the API server's timeout).
   */
  readonly readTimeoutMs?: number;
}

/** Answers AdmissionReviews. One instance serves every request; it keeps no state between them. */
export class AdmissionReviewer {
  private readonly readTimeoutMs: number;

  constructor(
    private readonly deps: AdmissionReviewerDeps,
    options: AdmissionReviewerOptions = {},
  ) {
    this.readTimeoutMs = options.readTimeoutMs ?? 4000;
  }

  /**
   * The AdmissionReview answer to a request body (any JSON). Never throws: a malformed review, an
   * unexpected kind or a failed datastore read is a denial saying what failed (code 400 or 500).
   * Allowed without checks: operations other than CREATE and UPDATE, and an UPDATE of an object being
   * deleted (finalizers must be removable even from an object stored before the webhook existed).
   */
  async review(body: unknown): Promise<AdmissionReviewResponse> {
    return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: await this.respond(body) };
  }

  private async respond(body: unknown): Promise<AdmissionResponse> {
    const request = isObject(body) && body.apiVersion === 'admission.k8s.io/v1' && body.kind === 'AdmissionReview' && isObject(body.request) ? (body.request as unknown as AdmissionRequest) : undefined;
    if (request === undefined || typeof request.uid !== 'string') {
      return deny('', 400, 'egw webhook: the request is not an admission.k8s.io/v1 AdmissionReview with a request.uid');
    }
    const { uid, operation } = request;
    if (operation !== 'CREATE' && operation !== 'UPDATE') return { uid, allowed: true };
    const object = isObject(request.object) ? request.object : undefined;
    if (object === undefined) return deny(uid, 400, `egw webhook: the ${operation} request carries no object`);
    const meta = isObject(object.metadata) ? object.metadata : {};
    if (operation === 'UPDATE' && typeof meta.deletionTimestamp === 'string') return { uid, allowed: true };
    const kind = typeof object.kind === 'string' ? object.kind : '';
    const reads = kindInfo(kind) === undefined ? undefined : WEBHOOK_KINDS.get(kindInfo(kind)!.kind);
    if (reads === undefined) {
      return deny(uid, 400, `egw webhook: kind "${kind}" is not validated here; expected one of ${[...WEBHOOK_KINDS.keys()].join(', ')} (check the rules of the ValidatingWebhookConfiguration)`);
    }
    // The API server sets the namespace of a namespaced object before admission; keep to the request's.
    const withNamespace =
      typeof meta.namespace !== 'string' && typeof request.namespace === 'string' && request.namespace !== '' ? { ...object, metadata: { ...meta, namespace: request.namespace } } : object;
    let existing: AnyResource[];
    try {
      existing = await this.readAll(reads);
    } catch (err) {
      this.deps.logger.warn({ uid, kind, err: errorMessage(err) }, 'admission: reading the other resources failed');
      return deny(uid, 500, `egw webhook: cannot read ${reads.join(', ')} from the datastore (${this.deps.store.location}) for the cross-resource checks: ${errorMessage(err)}; retry, or check the controller's datastore`);
    }
    const response = decideAdmission(uid, withNamespace, existing);
    this.deps.logger.debug({ uid, kind, name: meta.name, operation, allowed: response.allowed }, 'admission reviewed');
    return response;
  }

  private async readAll(kinds: readonly KindName[]): Promise<AnyResource[]> {
    if (kinds.length === 0) return [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.readTimeoutMs} ms`)), this.readTimeoutMs);
    });
    try {
      const lists = await Promise.race([Promise.all(kinds.map((k) => this.deps.store.list(k))), deadline]);
      return validStored(lists.flatMap((l) => l.items.map((i) => i.value)));
    } finally {
      clearTimeout(timer);
    }
  }
}

function deny(uid: string, code: number, message: string): AdmissionResponse {
  return { uid, allowed: false, status: { code, reason: code === 500 ? 'InternalError' : 'BadRequest', message } };
}
