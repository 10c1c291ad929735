/**
 * Multi-document YAML manifests to documents, each with its position (file, document number, lines).
 * Pure: text in, values out; reading files is the caller's job.
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { formatPath, type DocumentLocation, type Issue, type PathSegment } from './issues.js';
import { kindInfo } from './kinds.js';

/** One document of a manifest file: its parsed value and where it came from. */
export interface ManifestDocument extends DocumentLocation {
  /** The document as plain JSON-like data. */
  readonly value: unknown;
}

/** What {@link parseManifests} returns. */
export interface ParsedManifests {
  /** Non-empty documents in file order (`kind: List` items expanded in place). */
  readonly documents: ManifestDocument[];
  /** YAML syntax errors (one per broken document); the broken documents are not in `documents`. */
  readonly issues: Issue[];
}

/** Guards against alias bombs (a few aliases expanding to gigabytes). */
const MAX_ALIAS_COUNT = 100;

function lineOfNode(doc: Document.Parsed, lines: LineCounter, path: readonly PathSegment[]): number | undefined {
  const at = (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);
  if (path.length === 0) return at(doc.contents?.range[0]);
  const parent: unknown = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1];
  if (isMap(parent)) {
    // The key's line reads best ("line 12: cidr: …"), not the value's (which may start a line later).
    for (const pair of parent.items) {
      const key: unknown = pair.key;
      if (isScalar(key) && String(key.value) === String(last)) return at(key.range?.[0]);
    }
    return undefined;
  }
  if (isSeq(parent) && typeof last === 'number') {
    const item: unknown = parent.items[last];
    return isNode(item) ? at(item.range?.[0]) : undefined;
  }
  return undefined;
}

function yamlIssue(file: string, documentIndex: number, line: number | undefined, col: number | undefined, message: string): Issue {
  return {
    severity: 'error',
    rule: 'yaml.syntax',
    file,
    documentIndex,
    line,
    kind: '',
    name: '',
    path: '',
    message: `YAML syntax error${line === undefined ? '' : ` at line ${line}${col === undefined ? '' : `, column ${col}`}`}: ${message}`,
    expected: 'well-formed YAML (check indentation, quotes and brackets)',
  };
}

/**
 * Parses multi-document YAML. Documents are numbered from 1 in file order, counting empty ones (so `#3`
 * is the third `---` section); empty documents are skipped; a document with a YAML error is reported
 * (with its line) and skipped; the items of a `kind: List` (or `kind: <Kind>List`) document become
 * documents of their own, with paths such as `items[2].spec.cidr`. Duplicate keys are errors.
 */
export function parseManifests(text: string, file: string): ParsedManifests {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const documents: ManifestDocument[] = [];
  const issues: Issue[] = [];
  if (!Array.isArray(parsed) || (parsed as { empty?: boolean }).empty === true) {
    for (const err of (parsed as { errors?: { pos: [number, number]; message: string }[] }).errors ?? []) {
      const pos = lines.linePos(err.pos[0]);
      issues.push(yamlIssue(file, 1, pos.line, pos.col, err.message));
    }
    return { documents, issues };
  }
  parsed.forEach((doc, i) => {
    const documentIndex = i + 1;
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const pos = lines.linePos(err.pos[0]);
        issues.push(yamlIssue(file, documentIndex, pos.line, pos.col, err.message));
      }
      return;
    }
    if (doc.contents === null) return;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      issues.push(yamlIssue(file, documentIndex, lines.linePos(doc.contents.range[0]).line, undefined, err instanceof Error ? err.message : String(err)));
      return;
    }
    if (value === null || value === undefined) return;
    const lineOf = (path: readonly PathSegment[]) => lineOfNode(doc, lines, path);
    const line = lineOf([]);
    const items = listItems(value);
    if (items === undefined) {
      documents.push({ file, documentIndex, line, lineOf, value });
      return;
    }
    items.forEach((item, j) => {
      const pathPrefix = ['items', j];
      documents.push({ file, documentIndex, line: lineOf(pathPrefix) ?? line, pathPrefix, lineOf, value: item });
    });
  });
  return { documents, issues };
}

/** The items of a `List` document, or undefined when the document is not one. */
function listItems(value: unknown): unknown[] | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.kind !== 'string' || !Array.isArray(v.items)) return undefined;
  if (v.kind === 'List') return v.items as unknown[];
  // calicoctl/kubectl print `<Kind>List` for a list of one kind.
  if (v.kind.endsWith('List') && kindInfo(v.kind.slice(0, -'List'.length)) !== undefined) return v.items as unknown[];
  return undefined;
}

/** `file#n` plus the item path for List items: how a document is named in messages. */
export function describeDocument(doc: DocumentLocation): string {
  const prefix = doc.pathPrefix === undefined || doc.pathPrefix.length === 0 ? '' : ` ${formatPath(doc.pathPrefix)}`;
  return `${doc.file}#${doc.documentIndex}${prefix}`;
}
