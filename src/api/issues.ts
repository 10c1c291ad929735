/**
 * Validation issues: one structured record per problem found in a manifest, and the one-line form users see.
 */

/** One step of a field path: an object key or an array index. */
export type PathSegment = string | number;

/** Where a document came from. Every issue about it carries this. */
export interface DocumentLocation {
  /** The file as the user named it (`-` for stdin). */
  readonly file: string;
  /** 1-based position of the YAML document in its file, as printed after `#`. */
  readonly documentIndex: number;
  /** 1-based line where the document starts, when known. */
  readonly line?: number | undefined;
  /**
   * Path of this resource inside its document: empty for a plain document, `['items', 3]` for the
   * fourth item of a `kind: List`. Issue paths are prefixed with it.
   */
  readonly pathPrefix?: readonly PathSegment[] | undefined;
  /** The 1-based line of a field path (relative to the document root), when known. */
  readonly lineOf?: ((path: readonly PathSegment[]) => number | undefined) | undefined;
}

export type Severity = 'error' | 'warning';

/**
 * One problem. An `error` rejects the document (and, in `egw apply`, the whole file); a `warning` is
 * reported but the resource is accepted.
 */
export interface Issue {
  readonly severity: Severity;
  /** Stable identifier of the rule that fired, e.g. `EgressGatewayPolicy.duplicate-destination`. */
  readonly rule: string;
  readonly file: string;
  /** 1-based document position in the file. */
  readonly documentIndex: number;
  /** 1-based line of the offending field (or of the document), when known. */
  readonly line?: number | undefined;
  /** The resource's kind as written (empty when the document has none). */
  readonly kind: string;
  readonly namespace?: string | undefined;
  /** The resource's name (empty when the document has none). */
  readonly name: string;
  /** Field path such as `spec.rules[1].gateway.selector`; empty for the document as a whole. */
  readonly path: string;
  /** What is wrong. */
  readonly message: string;
  /** What would be right. */
  readonly expected: string;
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Renders a path as `spec.rules[1].gateway.selector` (keys that are not identifiers in `["…"]`). */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (identifier.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * One line per issue:
 * `examples/bad.yaml#2 EgressGatewayPolicy/egw-policy1 spec.rules[1].gateway.selector: selector is empty; expected …`.
 * Namespaced resources show as `Kind/namespace/name`; warnings start with `warning: `.
 */
export function formatIssue(issue: Issue): string {
  const where = `${issue.file}#${issue.documentIndex}`;
  let subject = '';
  if (issue.kind !== '' || issue.name !== '') {
    const ns = issue.namespace === undefined || issue.namespace === '' ? '' : `${issue.namespace}/`;
    subject = ` ${issue.kind === '' ? '<no kind>' : issue.kind}/${ns}${issue.name === '' ? '<no name>' : issue.name}`;
  }
  const path = issue.path === '' ? '' : ` ${issue.path}`;
  const prefix = issue.severity === 'warning' ? 'warning: ' : '';
  return `${prefix}${where}${subject}${path}: ${issue.message}; expected ${issue.expected}`;
}

/** True when any issue is an error. */
export function hasErrors(issues: readonly Issue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}

/** The identity an issue is reported against. */
export interface IssueSubject {
  readonly kind: string;
  readonly namespace?: string | undefined;
  readonly name: string;
}

/**
 * Collects issues about one resource of one document. Paths given to it are relative to the resource;
 * it adds the document's path prefix and looks up lines.
 */
export class IssueSink {
  readonly issues: Issue[] = [];

  constructor(
    readonly location: DocumentLocation,
    /** Who the issues are about; updated when validation learns more (e.g. a defaulted namespace). */
    public subject: IssueSubject,
  ) {}

  /** Records an error. */
  error(path: readonly PathSegment[], rule: string, message: string, expected: string): void {
    this.add('error', path, rule, message, expected);
  }

  /** Records a warning. */
  warn(path: readonly PathSegment[], rule: string, message: string, expected: string): void {
    this.add('warning', path, rule, message, expected);
  }

  /** True when an error has been recorded. */
  get failed(): boolean {
    return hasErrors(this.issues);
  }

  private add(severity: Severity, path: readonly PathSegment[], rule: string, message: string, expected: string): void {
    const full = [...(this.location.pathPrefix ?? []), ...path];
    this.issues.push({
      severity,
      rule,
      file: this.location.file,
      documentIndex: this.location.documentIndex,
      line: lineFor(this.location, full),
      kind: this.subject.kind,
      namespace: this.subject.namespace,
      name: this.subject.name,
      path: bounded(formatPath(full)),
      message: bounded(message),
      expected: bounded(expected),
    });
  }
}

/** The longest issue text kept, in UTF-16 units. */
const MAX_ISSUE_TEXT = 1000;

/**
 * Issue texts quote the values they are about, and stored values can be written by anyone who may edit
 * a pod: bound what one issue carries into logs, status records and webhook answers.
 */
function bounded(text: string): string {
  return text.length <= MAX_ISSUE_TEXT ? text : `${text.slice(0, MAX_ISSUE_TEXT)}… (${text.length - MAX_ISSUE_TEXT} more characters)`;
}

/** The line of the deepest existing ancestor of `path`, else the document's line. */
function lineFor(location: DocumentLocation, path: readonly PathSegment[]): number | undefined {
  if (location.lineOf !== undefined) {
    for (let n = path.length; n >= 0; n--) {
      const line = location.lineOf(path.slice(0, n));
      if (line !== undefined) return line;
    }
  }
  return location.line;
}
