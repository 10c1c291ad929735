/**
 * The parsed form of a selector and its canonical string (Calico's `Selector.String()`).
 */

/** A label compared with one string value. */
export interface LabelValueNode {
  readonly kind: 'eq' | 'ne' | 'contains' | 'startsWith' | 'endsWith';
  readonly label: string;
  readonly value: string;
}

/** A label compared with a set; `values` are sorted (by code point, like Go's byte order) and unique. */
export interface LabelSetNode {
  readonly kind: 'in' | 'notIn';
  readonly label: string;
  readonly values: readonly string[];
}

/**
 * A node of a parsed selector. Immutable. `and`/`or` have at least two operands (a single operand is
 * not wrapped, as in Calico), and `not` wraps exactly one node.
 */
export type SelectorNode =
  | { readonly kind: 'all' }
  | { readonly kind: 'global' }
  | { readonly kind: 'has'; readonly label: string }
  | LabelValueNode
  | LabelSetNode
  | { readonly kind: 'not'; readonly operand: SelectorNode }
  | { readonly kind: 'and' | 'or'; readonly operands: readonly SelectorNode[] };

/** Compares by Unicode code point, which is the byte order of UTF-8 that Calico (Go) sorts sets in. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point order only when one side is a surrogate (>= 0xD800)
    // and the other is in 0xE000..0xFFFF: surrogates encode code points above 0xFFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && Math.max(x, y) >= 0xe000) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Sorts and de-duplicates set values as Calico does when it parses a set literal. */
export function toSortedSet(values: readonly string[]): string[] {
  const sorted = [...values].sort(compareCodePoints);
  return sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
}

/** Double quotes unless the value holds a double quote; then single quotes (it cannot hold both). */
function quote(value: string): string {
  return value.includes('"') ? `'${value}'` : `"${value}"`;
}

const OP_TEXT: Readonly<Record<LabelValueNode['kind'], string>> = {
  eq: ' == ',
  ne: ' != ',
  contains: ' contains ',
  startsWith: ' starts with ',
  endsWith: ' ends with ',
};

/**
 * Calico's canonical string of a node: `label == "v"`, `label in {"a", "b"}`, `has(l)`, `all()`,
 * `global()`, `!x` with no space, and every `&&`/`||` group wrapped in parentheses (also at the top).
 */
export function canonicalString(node: SelectorNode): string {
  switch (node.kind) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${node.label})`;
    case 'eq':
    case 'ne':
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      return node.label + OP_TEXT[node.kind] + quote(node.value);
    case 'in':
    case 'notIn':
      return `${node.label} ${node.kind === 'in' ? 'in' : 'not in'} {${node.values.map(quote).join(', ')}}`;
    case 'not':
      return `!${canonicalString(node.operand)}`;
    case 'and':
    case 'or':
      return `(${node.operands.map(canonicalString).join(node.kind === 'and' ? ' && ' : ' || ')})`;
  }
}
