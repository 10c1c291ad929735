/**
 * The selector tokenizer: text in, tokens with their source offsets out. Follows the token rules of
 * Calico's tokenizer (libcalico-go/lib/selector/tokenizer) so that exactly the same texts are accepted
 * and rejected; see docs/selectors.md for the grammar.
 */
import { SelectorSyntaxError } from './syntax-error.js';

/** Token kinds. Operator words are only recognised right after a label (Calico's rule). */
export type TokenKind =
  | 'label'
  | 'string'
  | 'lbrace'
  | 'rbrace'
  | 'comma'
  | 'eq'
  | 'ne'
  | 'in'
  | 'not'
  | 'notIn'
  | 'contains'
  | 'startsWith'
  | 'endsWith'
  | 'all'
  | 'has'
  | 'global'
  | 'lparen'
  | 'rparen'
  | 'and'
  | 'or'
  | 'eof';

/** One token. `start`/`end` are UTF-16 offsets into the selector text (end exclusive). */
export interface Token {
  readonly kind: TokenKind;
  /** The label name (label, has) or the unquoted string value (string); '' otherwise. */
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

/** Calico's limit on the length of a label key inside a selector. */
export const MAX_LABEL_LENGTH = 512;

/** What an operator error says was expected, shared by tokenizer and parser. */
export const EXPECTED_OPERATOR = 'an operator (==, !=, in, not in, contains, starts with, ends with)';

const SPACE = 0x20;
const TAB = 0x09;

/** Label characters: [A-Za-z0-9_./-]. */
function isLabelChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x2f || // /
    c === 0x2d // -
  );
}

/** Only space and tab separate tokens; a newline (or any other control character) is an error, as in Calico. */
function skipSpace(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== SPACE && c !== TAB) break;
    i++;
  }
  return i;
}

function scanLabel(text: string, i: number): number {
  while (i < text.length && isLabelChar(text.charCodeAt(i))) i++;
  return i;
}

/** End of input or a non-label character: Calico requires this after an operator word. */
function atWordBoundary(text: string, i: number): boolean {
  return i >= text.length || !isLabelChar(text.charCodeAt(i));
}

/**
 * Matches the operator words `words` at `i`, allowing any spaces (including none) between the words, and
 * requiring a word boundary after the last one. Returns the end offset, or -1.
 */
function matchWords(text: string, i: number, words: readonly string[]): number {
  let j = i;
  for (let w = 0; w < words.length; w++) {
    const word = words[w]!;
    if (!text.startsWith(word, j)) return -1;
    j += word.length;
    // Calico trims the spaces after every word of a multi-word operator (the last one included) before
    // it checks the word boundary, but not after a one-word operator: `a not in x` is an operator error
    // while `a in x` tokenizes (and then fails in the parser with "expected set literal").
    if (words.length > 1) j = skipSpace(text, j);
  }
  if (!atWordBoundary(text, j)) return -1;
  // Return the end of the last word itself so the token's span does not swallow the spaces.
  let end = j;
  while (end > i && (text.charCodeAt(end - 1) === SPACE || text.charCodeAt(end - 1) === TAB)) end--;
  return end;
}

const OPERATOR_WORDS: readonly (readonly [TokenKind, readonly string[]])[] = [
  ['contains', ['contains']],
  ['startsWith', ['starts', 'with']],
  ['endsWith', ['ends', 'with']],
  ['notIn', ['not', 'in']],
  ['in', ['in']],
];

function describeChar(text: string, i: number): string {
  const cp = text.codePointAt(i);
  if (cp === undefined) return 'the end of the selector';
  const ch = String.fromCodePoint(cp);
  return JSON.stringify(ch);
}

/**
 * Reads a label at `i` (after optional spaces already skipped), enforcing Calico's non-empty and
 * length rules. Returns the end offset.
 */
function cutLabel(text: string, i: number): number {
  const end = scanLabel(text, i);
  if (end === i) {
    throw new SelectorSyntaxError('expected identifier', i, 'a label (letters, digits, _ . / -)', describeChar(text, i));
  }
  if (end - i > MAX_LABEL_LENGTH) {
    const label = text.slice(i, end);
    throw new SelectorSyntaxError(
      `label too long: "${label.slice(0, 40)}…" (${label.length} characters)`,
      i,
      `a label of at most ${MAX_LABEL_LENGTH} characters`,
    );
  }
  return end;
}

/** Matches `name(` followed by optional spaces and `)`; used for all() and global(). */
function cutEmptyCall(text: string, i: number, name: string, kind: TokenKind, out: Token[]): number {
  const afterParen = i + name.length + 1;
  const close = skipSpace(text, afterParen);
  if (text.charCodeAt(close) !== 0x29) {
    throw new SelectorSyntaxError(`no closing ')' after ${name}(`, close, ')', describeChar(text, close));
  }
  out.push({ kind, value: '', start: i, end: close + 1 });
  return close + 1;
}

/**
 * Splits a selector into tokens, ending with one `eof` token. Throws {@link SelectorSyntaxError} with
 * Calico's wording for the errors its tokenizer reports.
 */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  for (;;) {
    i = skipSpace(text, i);
    if (i >= text.length) {
      out.push({ kind: 'eof', value: '', start: text.length, end: text.length });
      return out;
    }
    const c = text.charCodeAt(i);
    switch (c) {
      case 0x28: // (
        out.push({ kind: 'lparen', value: '', start: i, end: i + 1 });
        i++;
        continue;
      case 0x29: // )
        out.push({ kind: 'rparen', value: '', start: i, end: i + 1 });
        i++;
        continue;
      case 0x7b: // {
        out.push({ kind: 'lbrace', value: '', start: i, end: i + 1 });
        i++;
        continue;
      case 0x7d: // }
        out.push({ kind: 'rbrace', value: '', start: i, end: i + 1 });
        i++;
        continue;
      case 0x2c: // ,
        out.push({ kind: 'comma', value: '', start: i, end: i + 1 });
        i++;
        continue;
      case 0x22: // "
      case 0x27: {
        // No escapes: the string runs to the next quote of the same kind (it may hold the other kind,
        // and, as in Calico, even a newline).
        const quote = c === 0x22 ? '"' : "'";
        const close = text.indexOf(quote, i + 1);
        if (close === -1) {
          throw new SelectorSyntaxError('unterminated string', i, `a closing ${quote}`);
        }
        out.push({ kind: 'string', value: text.slice(i + 1, close), start: i, end: close + 1 });
        i = close + 1;
        continue;
      }
      case 0x3d: // =
        if (text.charCodeAt(i + 1) !== 0x3d) throw new SelectorSyntaxError('expected ==', i, '==');
        out.push({ kind: 'eq', value: '', start: i, end: i + 2 });
        i += 2;
        continue;
      case 0x21: // !
        if (text.charCodeAt(i + 1) === 0x3d) {
          out.push({ kind: 'ne', value: '', start: i, end: i + 2 });
          i += 2;
        } else {
          out.push({ kind: 'not', value: '', start: i, end: i + 1 });
          i++;
        }
        continue;
      case 0x26: // &
        if (text.charCodeAt(i + 1) !== 0x26) throw new SelectorSyntaxError('expected &&', i, '&&');
        out.push({ kind: 'and', value: '', start: i, end: i + 2 });
        i += 2;
        continue;
      case 0x7c: // |
        if (text.charCodeAt(i + 1) !== 0x7c) throw new SelectorSyntaxError('expected ||', i, '||');
        out.push({ kind: 'or', value: '', start: i, end: i + 2 });
        i += 2;
        continue;
      default:
        break;
    }

    const last = out[out.length - 1];
    if (last !== undefined && last.kind === 'label') {
      // Right after a label only an operator word may follow (the symbolic ones were handled above).
      let matched = false;
      for (const [kind, words] of OPERATOR_WORDS) {
        const end = matchWords(text, i, words);
        if (end !== -1) {
          out.push({ kind, value: '', start: i, end });
          i = end;
          matched = true;
          break;
        }
      }
      if (!matched) {
        throw new SelectorSyntaxError(`expected operator after label "${last.value}"`, i, EXPECTED_OPERATOR, describeChar(text, i));
      }
      continue;
    }

    // `has(`, `all(` and `global(` must be written without a space before `(`, as in Calico;
    // otherwise the word is read as a label.
    if (text.startsWith('has(', i)) {
      const labelStart = skipSpace(text, i + 4);
      const labelEnd = cutLabel(text, labelStart);
      const close = skipSpace(text, labelEnd);
      if (text.charCodeAt(close) !== 0x29) {
        throw new SelectorSyntaxError("no closing ')' after has(", close, ')', describeChar(text, close));
      }
      out.push({ kind: 'has', value: text.slice(labelStart, labelEnd), start: i, end: close + 1 });
      i = close + 1;
      continue;
    }
    if (text.startsWith('all(', i)) {
      i = cutEmptyCall(text, i, 'all', 'all', out);
      continue;
    }
    if (text.startsWith('global(', i)) {
      i = cutEmptyCall(text, i, 'global', 'global', out);
      continue;
    }
    const end = cutLabel(text, i);
    out.push({ kind: 'label', value: text.slice(i, end), start: i, end });
    i = end;
  }
}
