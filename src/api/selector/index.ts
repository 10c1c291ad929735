/**
 * Calico's selector language (see docs/selectors.md). STUB: the implementation lands with the selector work;
 * the signatures below are the contract other modules code against.
 */
import { EgwError } from '../../platform/errors.js';

/** Labels of the object a selector is evaluated against. */
export type Labels = Readonly<Record<string, string>>;

/** A parsed selector. Immutable; safe to share and cache. */
export interface Selector {
  /** True when the labels match. Pure and fast. */
  evaluate(labels: Labels): boolean;
  /** Calico's canonical string form. */
  toString(): string;
}

/**
 * Parses a selector. Throws an EgwError with code `InvalidSelector` whose message names the column
 * (1-based) and what was expected, and whose details hold `{ selector, column, expected }`.
 */
export function parseSelector(text: string): Selector {
  throw new EgwError('Internal', `selector parser not implemented yet: ${text}`);
}

/** Like {@link parseSelector}, but parsed selectors are cached by their text. */
export function getSelector(text: string): Selector {
  return parseSelector(text);
}
