/**
 * Calico's selector language (docs/selectors.md): parse once, compile to closures, cache by text.
 * Pure: no I/O, no clock; the only state is the bounded parse cache.
 */
import { canonicalString } from './ast.js';
import type { SelectorNode } from './ast.js';
import { compile } from './compile.js';
import type { Matcher } from './compile.js';
import type { Labels } from './labels.js';
import { parseTree } from './parser.js';
import { EgwError, isEgwError } from '../../platform/errors.js';
import { SelectorSyntaxError, toEgwError } from './syntax-error.js';

export type { Labels } from './labels.js';
export { namespaceLabels, prepareLabels, NAMESPACE_NAME_LABEL } from './labels.js';
export type { SelectorNode, LabelSetNode, LabelValueNode } from './ast.js';

/** A parsed selector. Immutable; safe to share and cache. */
export interface Selector {
  /** True when the labels match. Pure and fast. */
  evaluate(labels: Labels): boolean;
  /** Calico's canonical string form. */
  toString(): string;
}

class CompiledSelector implements Selector {
  // An own property holding the compiled closure: calling it costs no extra dispatch.
  readonly evaluate: Matcher;
  private canonical: string | undefined;

  constructor(readonly tree: SelectorNode, global: boolean) {
    this.evaluate = compile(tree, { global });
  }

  toString(): string {
    return (this.canonical ??= canonicalString(this.tree));
  }
}

/**
 * Parses selector text into its tree (for tools that inspect selectors, such as benchmarks and indexes).
 * The empty selector is `all()`. Throws like {@link parseSelector}.
 */
export function parseSelectorTree(text: string): SelectorNode {
  // Selectors arrive from YAML and JSON, where a careless value may be a number or null.
  const value: unknown = text;
  if (typeof value !== 'string') {
    throw new EgwError('InvalidSelector', `invalid selector ${String(value)}: a selector must be a string`, {
      hint: "quote the selector, e.g. selector: \"app == 'web'\"",
      details: { selector: value, column: 1, expected: 'a string' },
    });
  }
  try {
    return parseTree(text);
  } catch (err) {
    if (err instanceof SelectorSyntaxError) throw toEgwError(text, err);
    throw err;
  }
}

/**
 * Parses a selector. Throws an EgwError with code `InvalidSelector` whose message names the column
 * (1-based) and what was expected, and whose details hold `{ selector, column, expected }`.
 * The text is taken as is: only spaces and tabs separate tokens, so a newline outside a quoted string is
 * an error (use {@link normaliseSelector} to trim first). `global()` evaluates as true here.
 */
export function parseSelector(text: string): Selector {
  return new CompiledSelector(parseSelectorTree(text), true);
}

/**
 * Like {@link parseSelector}, but for a `namespaceSelector`, to be evaluated against
 * {@link namespaceLabels}: there `global()` means "objects outside any namespace", which no namespace is,
 * so it evaluates as false (and `!global()` as true), as Calico's rewrite to `!has(projectcalico.org/namespace)` does.
 */
export function parseNamespaceSelector(text: string): Selector {
  return new CompiledSelector(parseSelectorTree(text), false);
}

/**
 * A bounded cache that keeps recently used entries: two generations, the young one filled by misses and
 * by promotion from the old one; when the young one is full it becomes the old one. Hits cost one Map
 * lookup, with no reordering.
 */
class GenerationCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();

  constructor(private readonly generationSize: number) {}

  get(key: string, make: (key: string) => V): V {
    let value = this.young.get(key);
    if (value !== undefined) return value;
    value = this.old.get(key) ?? make(key);
    if (this.young.size >= this.generationSize) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
    return value;
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}

/** Entries per cache generation; a cache holds up to twice this many selectors. */
const CACHE_GENERATION = 16_384;

const selectorCache = new GenerationCache<Selector>(CACHE_GENERATION);
const namespaceSelectorCache = new GenerationCache<Selector>(CACHE_GENERATION);

/**
 * Like {@link parseSelector}, but parsed selectors are cached by their text (bounded: about the 16k–32k
 * most recently used). Parse errors are not cached; they are thrown again on every call.
 */
export function getSelector(text: string): Selector {
  return selectorCache.get(text, parseSelector);
}

/** Like {@link parseNamespaceSelector}, cached by text like {@link getSelector}. */
export function getNamespaceSelector(text: string): Selector {
  return namespaceSelectorCache.get(text, parseNamespaceSelector);
}

/** Empties both selector caches. For tests and benchmarks; never needed for correctness. */
export function clearSelectorCache(): void {
  selectorCache.clear();
  namespaceSelectorCache.clear();
}

/** Number of selectors held in the caches (both kinds). For tests and benchmarks. */
export function selectorCacheSize(): number {
  return selectorCache.size + namespaceSelectorCache.size;
}

/**
 * Calico's `Normalise`: trims surrounding whitespace (newlines included), parses and returns the
 * canonical string; `""` becomes `all()`. When the text does not parse it is returned trimmed but
 * otherwise unaltered (as Calico does), so call {@link parseSelector} where an error must be reported.
 */
export function normaliseSelector(text: string): string {
  const trimmed = text.trim();
  try {
    return getSelector(trimmed).toString();
  } catch (err) {
    if (isEgwError(err, 'InvalidSelector')) return trimmed;
    throw err;
  }
}

/**
 * True when the selector uses `global()` anywhere (IPPool selectors must not, in Calico). Throws like
 * {@link parseSelector} when the text does not parse.
 */
export function selectorUsesGlobal(text: string): boolean {
  const visit = (node: SelectorNode): boolean => {
    switch (node.kind) {
      case 'global':
        return true;
      case 'not':
        return visit(node.operand);
      case 'and':
      case 'or':
        return node.operands.some(visit);
      default:
        return false;
    }
  };
  const sel = getSelector(text);
  return sel instanceof CompiledSelector ? visit(sel.tree) : visit(parseSelectorTree(text));
}
