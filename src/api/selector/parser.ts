/**
 * The selector parser: tokens in, {@link SelectorNode} out. A recursive descent over Calico's grammar
 * (docs/selectors.md) that reports Calico's own error wording, plus where and what was expected.
 */
import { toSortedSet } from './ast.js';
import type { LabelValueNode, SelectorNode } from './ast.js';
import { SelectorSyntaxError } from './syntax-error.js';
import { EXPECTED_OPERATOR, tokenize } from './tokenizer.js';
import type { Token, TokenKind } from './tokenizer.js';

const EXPECTED_OPERAND = 'a label, has(label), all(), global(), ! or (';

/**
 * The longest selector text accepted, in UTF-16 units. Selectors arrive in annotations that anyone who
 * may edit a pod or namespace can write; real ones are a few dozen characters. The bound keeps the cost
 * of one hostile value (parse, compile, evaluate on every label change) small.
 */
export const MAX_SELECTOR_LENGTH = 4096;
/**
 * The deepest parenthesis nesting accepted. The parser, the compiler and the canonical printer recurse
 * once per level: without a bound, a selector nested a few thousand levels overflows the stack.
 */
export const MAX_SELECTOR_DEPTH = 32;
const EXPECTED_STRING = "a quoted string ('…' or \"…\")";

const VALUE_OPS: Partial<Record<TokenKind, LabelValueNode['kind']>> = {
  eq: 'eq',
  ne: 'ne',
  contains: 'contains',
  startsWith: 'startsWith',
  endsWith: 'endsWith',
};

/** A printable description of a token, for messages: its source text, quoted; nothing for the end. */
function describe(text: string, tok: Token): string | undefined {
  return tok.kind === 'eof' ? undefined : JSON.stringify(text.slice(tok.start, tok.end));
}

/** The token text in messages where Calico prints the token itself (`unexpected token: …`). */
function shown(text: string, tok: Token): string {
  return describe(text, tok) ?? 'end of selector';
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: readonly Token[],
  ) {}

  private peek(): Token {
    // The token list always ends with `eof`, and the parser never moves past it.
    return this.tokens[this.pos]!;
  }

  private fail(message: string, tok: Token, expected: string, found?: string): never {
    throw new SelectorSyntaxError(message, tok.start, expected, found);
  }

  parseRoot(): SelectorNode {
    if (this.peek().kind === 'eof') return { kind: 'all' };
    const node = this.parseOr();
    const rest = this.peek();
    if (rest.kind !== 'eof') {
      this.fail(`unexpected content at end of selector ${shown(this.text, rest)}`, rest, '&&, || or the end of the selector');
    }
    return node;
  }

  private parseOr(): SelectorNode {
    const first = this.parseAnd();
    if (this.peek().kind !== 'or') return first;
    const operands = [first];
    while (this.peek().kind === 'or') {
      this.pos++;
      operands.push(this.parseAnd());
    }
    return { kind: 'or', operands };
  }

  private parseAnd(): SelectorNode {
    const first = this.parseOperation();
    if (this.peek().kind !== 'and') return first;
    const operands = [first];
    while (this.peek().kind === 'and') {
      this.pos++;
      operands.push(this.parseOperation());
    }
    return { kind: 'and', operands };
  }

  /** One operation, possibly negated: any number of `!` collapse by parity (Calico). */
  private parseOperation(): SelectorNode {
    let negated = false;
    while (this.peek().kind === 'not') {
      negated = !negated;
      this.pos++;
    }
    const node = this.parseOperand();
    return negated ? { kind: 'not', operand: node } : node;
  }

  private parseOperand(): SelectorNode {
    const tok = this.peek();
    switch (tok.kind) {
      case 'has':
        this.pos++;
        return { kind: 'has', label: tok.value };
      case 'all':
        this.pos++;
        return { kind: 'all' };
      case 'global':
        this.pos++;
        return { kind: 'global' };
      case 'lparen': {
        if (this.depth >= MAX_SELECTOR_DEPTH) this.fail(`parentheses nested deeper than ${MAX_SELECTOR_DEPTH} levels`, tok, `at most ${MAX_SELECTOR_DEPTH} levels of parentheses`);
        this.pos++;
        this.depth++;
        const inner = this.parseOr();
        this.depth--;
        const close = this.peek();
        if (close.kind !== 'rparen') this.fail('expected )', close, ')', describe(this.text, close));
        this.pos++;
        return inner;
      }
      case 'label':
        return this.parseLabelOperation(tok);
      default:
        return this.fail(`unexpected token: ${shown(this.text, tok)}`, tok, EXPECTED_OPERAND);
    }
  }

  private parseLabelOperation(labelTok: Token): SelectorNode {
    const label = labelTok.value;
    const op = this.tokens[this.pos + 1]!;
    if (op.kind === 'eof') this.fail('unexpected end of string looking for op', op, EXPECTED_OPERATOR);
    const valueKind = VALUE_OPS[op.kind];
    if (valueKind !== undefined) {
      const value = this.tokens[this.pos + 2]!;
      if (value.kind !== 'string') this.fail('expected string', value, EXPECTED_STRING, describe(this.text, value));
      this.pos += 3;
      return { kind: valueKind, label, value: value.value };
    }
    if (op.kind === 'in' || op.kind === 'notIn') {
      const brace = this.tokens[this.pos + 2]!;
      if (brace.kind !== 'lbrace') this.fail('expected set literal', brace, '{', describe(this.text, brace));
      this.pos += 3;
      const values: string[] = [];
      // `{}` and a trailing comma (`{'a',}`) are accepted, as in Calico.
      while (this.peek().kind === 'string') {
        values.push(this.peek().value);
        this.pos++;
        if (this.peek().kind !== 'comma') break;
        this.pos++;
      }
      const close = this.peek();
      if (close.kind !== 'rbrace') {
        const prev = this.tokens[this.pos - 1]!;
        const expected = prev.kind === 'string' ? ', or }' : `${EXPECTED_STRING} or }`;
        this.fail('expected }', close, expected, describe(this.text, close));
      }
      this.pos++;
      return { kind: op.kind, label, values: toSortedSet(values) };
    }
    return this.fail(`expected == or != not: ${shown(this.text, op)}`, op, EXPECTED_OPERATOR);
  }
}

/**
 * Parses selector text into its tree. The empty selector (or only spaces/tabs) is `all()`. Texts longer
 * than {@link MAX_SELECTOR_LENGTH} or nested deeper than {@link MAX_SELECTOR_DEPTH} are syntax errors.
 * Throws {@link SelectorSyntaxError} (internal); the public API converts it to an `InvalidSelector` EgwError.
 */
export function parseTree(text: string): SelectorNode {
  if (text.length > MAX_SELECTOR_LENGTH) {
    throw new SelectorSyntaxError(`selector longer than ${MAX_SELECTOR_LENGTH} characters (${text.length})`, MAX_SELECTOR_LENGTH, `at most ${MAX_SELECTOR_LENGTH} characters`);
  }
  return new Parser(text, tokenize(text)).parseRoot();
}
