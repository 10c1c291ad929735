/**
 * The internal parse failure of the selector tokenizer and parser. It carries Calico's own wording and a
 * source offset; {@link toEgwError} turns it into the public `InvalidSelector` error with a 1-based column.
 */
import { EgwError } from '../../platform/errors.js';

/** A selector syntax error before it is given its public form. Never escapes the selector module. */
export class SelectorSyntaxError extends Error {
  /**
   * @param calicoMessage the error text Calico's tokenizer/parser uses for this case (docs/selectors.md)
   * @param offset UTF-16 offset in the selector text where the problem is
   * @param expected what would have been accepted at that place, in words
   * @param found a printable description of what is there instead, when that helps
   */
  constructor(
    readonly calicoMessage: string,
    readonly offset: number,
    readonly expected: string,
    readonly found?: string,
  ) {
    super(calicoMessage);
    this.name = 'SelectorSyntaxError';
  }
}

/** 1-based column of a UTF-16 offset, counted in Unicode code points (what an editor shows). */
export function columnOf(text: string, offset: number): number {
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text.charCodeAt(i);
    // The high half of a surrogate pair starts a character; the low half does not.
    if (c < 0xdc00 || c > 0xdfff) column++;
  }
  // Offsets past the end (the end of input) are one column after the last character.
  return column + Math.max(0, offset - text.length);
}

/**
 * The public form of a syntax error: `InvalidSelector`, message
 * `invalid selector "<text>": <Calico's wording> at column <n>[ (found …)][; expected …]`,
 * details `{ selector, column, expected }`.
 */
export function toEgwError(text: string, err: SelectorSyntaxError): EgwError {
  const column = columnOf(text, err.offset);
  // A hostile selector may be long: the message quotes its start only (details keep the whole text).
  const quoted = text.length > 600 ? `${JSON.stringify(text.slice(0, 600))}…` : JSON.stringify(text);
  let message = `invalid selector ${quoted}: ${err.calicoMessage} at column ${column}`;
  if (err.found !== undefined) message += ` (found ${err.found})`;
  // Calico's own wording often already is "expected …"; only add ours when it says more ("expected == or
  // != not: …" names two operators of seven).
  if (!err.calicoMessage.startsWith('expected ') || err.calicoMessage.startsWith('expected == or != not')) {
    message += `; expected ${err.expected}`;
  }
  return new EgwError('InvalidSelector', message, {
    hint: "write label == 'value', label in {'a', 'b'}, has(label), contains/starts with/ends with 'text', combined with !, &&, || and parentheses (see docs/selectors.md)",
    details: { selector: text, column, expected: err.expected },
  });
}
