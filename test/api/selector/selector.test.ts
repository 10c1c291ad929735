import { describe, expect, it } from 'vitest';
import { EgwError } from '../../../src/platform/errors.js';
import {
  clearSelectorCache,
  getNamespaceSelector,
  getSelector,
  namespaceLabels,
  normaliseSelector,
  parseNamespaceSelector,
  parseSelector,
  parseSelectorTree,
  prepareLabels,
  selectorCacheSize,
  selectorUsesGlobal,
} from '../../../src/api/selector/index.js';
import type { Labels, SelectorNode } from '../../../src/api/selector/index.js';

type Case = readonly [selector: string, labels: Labels, matches: boolean];

const LONG_LABEL = 'x'.repeat(512);
const TOO_LONG_LABEL = 'x'.repeat(513);

/** Calico's semantics, case by case (libcalico-go/lib/selector and docs/selectors.md). */
const cases: readonly Case[] = [
  // empty selector and all()
  ['', {}, true],
  ['', { a: 'b' }, true],
  [' ', {}, true],
  ['\t', { a: 'b' }, true],
  ['all()', {}, true],
  [' all( ) ', { a: 'b' }, true],
  ['!all()', {}, false],
  ['!all()', { a: 'b' }, false],
  ['global()', {}, true],
  [' global()', { a: 'b' }, true],
  ['!global()', {}, false],

  // ==
  ['a == "b"', { a: 'b' }, true],
  ['a == "b"', { a: 'b', c: 'd' }, true],
  ['a == "b"', {}, false],
  ['a == "b"', { a: 'c' }, false],
  ['a == "b"', { c: 'd' }, false],
  ["a == 'a'", { a: 'a' }, true],
  ["a=='a'", { a: 'a' }, true],
  ["a == ''", { a: '' }, true],
  ["a == ''", {}, false],
  ["a == 'B'", { a: 'b' }, false],

  // != matches when absent
  ['a != "b"', { a: 'a' }, true],
  ['a != "a"', {}, true],
  ['a != "a"', { a: 'a' }, false],
  ["a!='x'", { b: 'x' }, true],
  ["a != ''", { a: '' }, false],
  ["a != ''", {}, true],

  // in / not in
  ['a in {"a"}', { a: 'a' }, true],
  ['a in {"a"}', { a: 'b' }, false],
  ['a in {"a"}', {}, false],
  ['a in {"a", "b"}', { a: 'b' }, true],
  ['a in {"a", "b"}', { a: 'c' }, false],
  [`a in {"'", '"', "c"}`, { a: '"' }, true],
  [`a in {"'", '"', "c"}`, { a: "'" }, true],
  [`a in {"'", '"', "c"}`, { a: 'e' }, false],
  ["a in {'1','2','3','4','5','6'}", { a: '6' }, true],
  ["a in {'1','2','3','4','5','6'}", { a: '7' }, false],
  ["a in {'1','2','3','4','5','6'}", {}, false],
  ["a in {'x', 'y', 'z'}", { a: 'z' }, true],
  ["a in {'x',}", { a: 'x' }, true],
  ['a in {}', {}, false],
  ['a in {}', { a: '' }, false],
  ["a in {''}", { a: '' }, true],
  ['a not in {"d", "e"}', { a: 'a' }, true],
  ['a not in {"a"}', { a: 'a' }, false],
  ['a not in {"a"}', {}, true],
  [`a not in {"'", '"', "c"}`, { a: 'c' }, false],
  ["a not in {'1','2','3','4','5'}", { a: '5' }, false],
  ["a not in {'1','2','3','4','5'}", { a: '9' }, true],
  ['a not in {}', {}, true],
  ['a not in {}', { a: 'x' }, true],
  // multi-word operators with any spaces between the words, including none
  ["a notin {'x'}", { a: 'y' }, true],
  ["a not   in {'x'}", { a: 'x' }, false],
  ["a not\tin{'x'}", { a: 'x' }, false],
  ["a in{'x'}", { a: 'x' }, true],

  // has / !has
  ['has(a)', { a: 'b' }, true],
  ['has(a)', { a: '' }, true],
  ['has(b)', { a: 'b' }, false],
  ['has( a )', { a: 'b' }, true],
  ['!has(a)', { b: 'b' }, true],
  ['!has(a)', { a: 'b' }, false],
  ['! has(a)', { a: 'b' }, false],
  ['!!has(b)', { a: 'b' }, false],
  ['!!!has(a)', { a: 'b' }, false],
  ['!! ! has(a)', { a: 'b' }, false],
  ['! !!has(a)', { a: 'b' }, false],
  ['!!!!has(a)', { a: 'b' }, true],

  // contains / starts with / ends with: present labels only
  ['a contains "a"', { a: 'bab' }, true],
  ['a contains "a"', { a: 'b' }, false],
  ['a contains "a"', { b: 'aaa' }, false],
  ["a contains ''", { a: '' }, true],
  ["a contains ''", {}, false],
  ['a starts with "a"', { a: 'abb' }, true],
  ['a starts with "a"', { a: 'baa' }, false],
  ['a starts with "a"', {}, false],
  ["a startswith 'a'", { a: 'ab' }, true],
  ["a starts   with'a'", { a: 'ab' }, true],
  ["!a starts with 'a'", {}, true],
  ['a ends with "a"', { a: 'bba' }, true],
  ['a ends with "a"', { a: 'aab' }, false],
  ['a ends with "a"', {}, false],
  ["a endswith 'a'", { a: 'ba' }, true],
  ["a ends with ''", { a: 'x' }, true],

  // negation binds tighter than && and ||, looser than the match operators
  ["!a == 'x'", { a: 'x' }, false],
  ["!a == 'x'", {}, true],
  ["!a == 'x' || b == 'y' && c == 'z'", { a: 'x' }, false],
  ["!a == 'x' || b == 'y' && c == 'z'", { a: 'x', b: 'y', c: 'z' }, true],
  ["!a == 'x' || b == 'y' && c == 'z'", { a: 'x', b: 'y' }, false],
  ["!a == 'x' || b == 'y' && c == 'z'", {}, true],
  ["a == 'x' || b == 'y' && c == 'z'", { a: 'x' }, true],
  ["(a == 'x' || b == 'y') && c == 'z'", { a: 'x' }, false],
  ["(a == 'x' || b == 'y') && c == 'z'", { b: 'y', c: 'z' }, true],
  ["!(a == 'x' || b == 'y')", {}, true],
  ["!(a == 'x' || b == 'y')", { b: 'y' }, false],
  ['!(!has(a) || has(b))', { a: 'a' }, true],
  ['!(has(b) || !has(a))', { a: 'a' }, true],
  ["a == 'a1' && b != 'b1'", { a: 'a1', b: 'b1' }, false],
  ["a != 'a1' && !b == 'b1'", { a: 'a1', b: 'b1' }, false],
  ["a != 'a1' || b != 'b1'", { a: 'a1', b: 'b1' }, false],
  ["! a == 'a1' || ! b == 'b1'", { a: 'a1', b: 'b1' }, false],
  ["has(a) && has(b) && has(c) && has(d)", { a: '', b: '', c: '', d: '' }, true],
  ["has(a) && has(b) && has(c) && has(d)", { a: '', b: '', c: '' }, false],
  ["has(a) || has(b) || has(c) || has(d)", { d: '' }, true],
  ["has(a) || has(b) || has(c) || has(d)", {}, false],
  ["((((a == 'x'))))", { a: 'x' }, true],
  ["all() && a == 'x'", { a: 'y' }, false],
  ["!all() || a == 'x'", { a: 'x' }, true],
  ['all() || has(a)', {}, true],
  ['!all() && has(a)', { a: '' }, false],

  // quoting: no escapes, the other quote kind is plain text
  [`a == '"'`, { a: '"' }, true],
  [`a == "'"`, { a: "'" }, true],
  [`a == 'say "hi"'`, { a: 'say "hi"' }, true],
  [`a == "it's"`, { a: "it's" }, true],
  ["a == 'x\\y'", { a: 'x\\y' }, true],
  ["a == 'x&&y || (z)'", { a: 'x&&y || (z)' }, true],
  ["a == 'héllo ✓'", { a: 'héllo ✓' }, true],

  // label keys with DNS prefixes and the full label alphabet
  ["projectcalico.org/name == 'prod'", { 'projectcalico.org/name': 'prod' }, true],
  ["kubernetes.io/metadata.name == 'kube-system'", { 'kubernetes.io/metadata.name': 'kube-system' }, true],
  ["egress-code in {'red', 'blue'}", { 'egress-code': 'blue' }, true],
  ["A_b.C-9/x == 'v'", { 'A_b.C-9/x': 'v' }, true],
  ["123 == 'v'", { '123': 'v' }, true],
  // words that are operators or functions elsewhere are plain labels at the start of an operation
  ["has == 'x'", { has: 'x' }, true],
  ["all == 'x'", { all: 'x' }, true],
  ["in == 'x' && not not in {'y'}", { in: 'x', not: 'z' }, true],
  ["not in {'y'}", { not: 'y' }, true],
  ["contains contains 'x'", { contains: 'axb' }, true],
  [`${LONG_LABEL} == 'v'`, { [LONG_LABEL]: 'v' }, true],
  [`has(${LONG_LABEL})`, { [LONG_LABEL]: '' }, true],

  // only own string values count as present
  ["constructor == 'x'", {}, false],
  ["constructor != 'x'", {}, true],
  ['has(constructor)', {}, false],
  ['has(__proto__)', {}, false],
  ["toString in {'a'}", {}, false],
  ["toString not in {'a'}", {}, true],
  ["constructor contains 'f'", {}, false],
];

describe('selector evaluation (Calico semantics)', () => {
  it.each(cases)('%j on %j is %s', (selector, labels, matches) => {
    const sel = parseSelector(selector);
    expect(sel.evaluate(labels)).toBe(matches);
    // The canonical form means the same thing.
    expect(parseSelector(sel.toString()).evaluate(labels)).toBe(matches);
    // And the cached path agrees.
    expect(getSelector(selector).evaluate(labels)).toBe(matches);
  });

  it('treats a label with a non-string value as absent', () => {
    const labels = { a: 1 } as unknown as Labels;
    expect(parseSelector('has(a)').evaluate(labels)).toBe(false);
    expect(parseSelector("a != '1'").evaluate(labels)).toBe(true);
    expect(parseSelector("a contains '1'").evaluate(labels)).toBe(false);
  });

  it.each(cases)('%j on prepared %j is %s', (selector, labels, matches) => {
    expect(parseSelector(selector).evaluate(prepareLabels(labels))).toBe(matches);
  });

  it('prepares labels as a null-prototype copy of the own string labels', () => {
    const input = { a: 'x', n: 1 } as unknown as Labels;
    const prepared = prepareLabels(input);
    expect(Object.getPrototypeOf(prepared)).toBeNull();
    expect({ ...prepared }).toEqual({ a: 'x' });
    expect(input).toEqual({ a: 'x', n: 1 });
  });

  it('sees an own __proto__ label (from JSON) as present', () => {
    const labels = JSON.parse('{"__proto__": "x"}') as Labels;
    expect(parseSelector("__proto__ == 'x'").evaluate(labels)).toBe(true);
    expect(parseSelector('has(__proto__)').evaluate(labels)).toBe(true);
  });
});

type ErrorCase = readonly [selector: string, message: string, column: number, expected: string];

const OPERATOR = 'an operator (==, !=, in, not in, contains, starts with, ends with)';
const OPERAND = 'a label, has(label), all(), global(), ! or (';
const STRING = "a quoted string ('…' or \"…\")";
const LABEL = 'a label (letters, digits, _ . / -)';
const AT_END = '&&, || or the end of the selector';

/** Every error Calico reports, with our column and what was expected. Messages are compared in full. */
const errors: readonly ErrorCase[] = [
  // tokenizer
  ['"FOO', 'unterminated string at column 1; expected a closing "', 1, 'a closing "'],
  [`"FOO'`, 'unterminated string at column 1; expected a closing "', 1, 'a closing "'],
  ["a == 'x", "unterminated string at column 6; expected a closing '", 6, "a closing '"],
  ["a = 'x'", 'expected == at column 3', 3, '=='],
  ["a === 'x'", 'expected == at column 5', 5, '=='],
  ["a == 'x' & b == 'y'", 'expected && at column 10', 10, '&&'],
  ['foo == "bar" &', 'expected && at column 14', 14, '&&'],
  ["a == 'x' | b == 'y'", 'expected || at column 10', 10, '||'],
  ['a b', 'expected operator after label "a" at column 3 (found "b")', 3, OPERATOR],
  ["a ~ 'x'", 'expected operator after label "a" at column 3 (found "~")', 3, OPERATOR],
  ["a not 'x'", 'expected operator after label "a" at column 3 (found "n")', 3, OPERATOR],
  ["a startswithx 'y'", 'expected operator after label "a" at column 3 (found "s")', 3, OPERATOR],
  ["a containsx 'y'", 'expected operator after label "a" at column 3 (found "c")', 3, OPERATOR],
  ['a not in x', 'expected operator after label "a" at column 3 (found "n")', 3, OPERATOR],
  ["a starts 'x'", 'expected operator after label "a" at column 3 (found "s")', 3, OPERATOR],
  ['has(a', "no closing ')' after has( at column 6 (found the end of the selector); expected )", 6, ')'],
  ['has(a b)', `no closing ')' after has( at column 7 (found "b"); expected )`, 7, ')'],
  ["has(a == 'x')", `no closing ')' after has( at column 7 (found "="); expected )`, 7, ')'],
  ['all(x)', `no closing ')' after all( at column 5 (found "x"); expected )`, 5, ')'],
  ['all(', "no closing ')' after all( at column 5 (found the end of the selector); expected )", 5, ')'],
  ['global(', "no closing ')' after global( at column 8 (found the end of the selector); expected )", 8, ')'],
  ['has()', 'expected identifier at column 5 (found ")")', 5, LABEL],
  ['has( )', 'expected identifier at column 6 (found ")")', 6, LABEL],
  ['%', 'expected identifier at column 1 (found "%")', 1, LABEL],
  ['a == "b" && %', 'expected identifier at column 13 (found "%")', 13, LABEL],
  ['a == "b" || %', 'expected identifier at column 13 (found "%")', 13, LABEL],
  ["ä == 'x'", 'expected identifier at column 1 (found "ä")', 1, LABEL],
  // newlines (and carriage returns) are not whitespace
  ["a == 'x'\n", 'expected identifier at column 9 (found "\\n")', 9, LABEL],
  ["a == 'x'\n&& b == 'y'", 'expected identifier at column 9 (found "\\n")', 9, LABEL],
  ["\na == 'x'", 'expected identifier at column 1 (found "\\n")', 1, LABEL],
  ["a ==\n'x'", 'expected identifier at column 5 (found "\\n")', 5, LABEL],
  ["a == 'x'\r", 'expected identifier at column 9 (found "\\r")', 9, LABEL],
  ["a\n== 'x'", 'expected operator after label "a" at column 2 (found "\\n")', 2, OPERATOR],
  [`${TOO_LONG_LABEL} == 'v'`, `label too long: "${'x'.repeat(40)}…" (513 characters) at column 1; expected a label of at most 512 characters`, 1, 'a label of at most 512 characters'],
  [`has(${TOO_LONG_LABEL})`, `label too long: "${'x'.repeat(40)}…" (513 characters) at column 5; expected a label of at most 512 characters`, 5, 'a label of at most 512 characters'],
  // parser
  ["a == 'x' )", 'unexpected content at end of selector ")" at column 10; expected ' + AT_END, 10, AT_END],
  [')', 'unexpected token: ")" at column 1; expected ' + OPERAND, 1, OPERAND],
  ["a == 'it''s'", `unexpected content at end of selector "'s'" at column 10; expected ` + AT_END, 10, AT_END],
  ["a == 'x' b == 'y'", 'unexpected content at end of selector "b" at column 10; expected ' + AT_END, 10, AT_END],
  ["a == 'x' == 'y'", 'unexpected content at end of selector "==" at column 10; expected ' + AT_END, 10, AT_END],
  ["(a == 'x') (b == 'y')", 'unexpected content at end of selector "(" at column 12; expected ' + AT_END, 12, AT_END],
  ['a ==', 'expected string at column 5', 5, STRING],
  ['a == b', 'expected string at column 6 (found "b")', 6, STRING],
  ['b == b', 'expected string at column 6 (found "b")', 6, STRING],
  ['b contains b', 'expected string at column 12 (found "b")', 12, STRING],
  // A multi-word operator needs a word boundary after its last word even across spaces (Calico's
  // tokenizer trims after every word), so an unquoted value after it is an operator error.
  ['b starts with b', 'expected operator after label "b" at column 3 (found "s")', 3, OPERATOR],
  ['b ends with b', 'expected operator after label "b" at column 3 (found "e")', 3, OPERATOR],
  ['b not in b', 'expected operator after label "b" at column 3 (found "n")', 3, OPERATOR],
  ['a != 123', 'expected string at column 6 (found "123")', 6, STRING],
  ['foo != ||', 'expected string at column 8 (found "||")', 8, STRING],
  ['a contains', 'expected string at column 11', 11, STRING],
  ['a in', 'expected set literal at column 5', 5, '{'],
  ['foo in ""', 'expected set literal at column 8 (found "\\"\\"")', 8, '{'],
  ['a in x', 'expected set literal at column 6 (found "x")', 6, '{'],
  ["a in ('x')", 'expected set literal at column 6 (found "(")', 6, '{'],
  ["a in {'x'", 'expected } at column 10', 10, ', or }'],
  ["a in {'x' 'y'}", `expected } at column 11 (found "'y'")`, 11, ', or }'],
  ['a in {,}', 'expected } at column 7 (found ",")', 7, `${STRING} or }`],
  ['foo in {"", ||', 'expected } at column 13 (found "||")', 13, `${STRING} or }`],
  ['a in {x}', 'expected } at column 7 (found "x")', 7, `${STRING} or }`],
  ['(', 'unexpected token: end of selector at column 2; expected ' + OPERAND, 2, OPERAND],
  ['()', 'unexpected token: ")" at column 2; expected ' + OPERAND, 2, OPERAND],
  ['(a == "foo"', 'expected ) at column 12', 12, ')'],
  ["a == 'x' && (b == 'y'", 'expected ) at column 22', 22, ')'],
  ["(a == 'x' b == 'y')", 'expected ) at column 11 (found "b")', 11, ')'],
  ['b', 'unexpected end of string looking for op at column 2; expected ' + OPERATOR, 2, OPERATOR],
  ['a ', 'unexpected end of string looking for op at column 3; expected ' + OPERATOR, 3, OPERATOR],
  ['all', 'unexpected end of string looking for op at column 4; expected ' + OPERATOR, 4, OPERATOR],
  ['!', 'unexpected token: end of selector at column 2; expected ' + OPERAND, 2, OPERAND],
  ["&& a == 'x'", 'unexpected token: "&&" at column 1; expected ' + OPERAND, 1, OPERAND],
  ["a == 'x' && || b == 'y'", 'unexpected token: "||" at column 13; expected ' + OPERAND, 13, OPERAND],
  ['has(foo) &&', 'unexpected token: end of selector at column 12; expected ' + OPERAND, 12, OPERAND],
  ["'b1' == b", `unexpected token: "'b1'" at column 1; expected ` + OPERAND, 1, OPERAND],
  ["!= 'a'", 'unexpected token: "!=" at column 1; expected ' + OPERAND, 1, OPERAND],
  ['{}', 'unexpected token: "{" at column 1; expected ' + OPERAND, 1, OPERAND],
  ['a (', 'expected == or != not: "(" at column 3; expected ' + OPERATOR, 3, OPERATOR],
  ['has (a)', 'expected == or != not: "(" at column 5; expected ' + OPERATOR, 5, OPERATOR],
  ['a && b', 'expected == or != not: "&&" at column 3; expected ' + OPERATOR, 3, OPERATOR],
  ['a !', 'expected == or != not: "!" at column 3; expected ' + OPERATOR, 3, OPERATOR],
  ["a 'x'", `expected == or != not: "'x'" at column 3; expected ` + OPERATOR, 3, OPERATOR],
  ['a )', 'expected == or != not: ")" at column 3; expected ' + OPERATOR, 3, OPERATOR],
  // columns count characters, not UTF-16 units
  ["a == '😀' )", 'unexpected content at end of selector ")" at column 10; expected ' + AT_END, 10, AT_END],
];

describe('selector parse errors', () => {
  it.each(errors)('%j: %s', (selector, message, column, expected) => {
    let caught: unknown;
    try {
      parseSelector(selector);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EgwError);
    const err = caught as EgwError;
    expect(err.code).toBe('InvalidSelector');
    expect(err.message).toBe(`invalid selector ${JSON.stringify(selector)}: ${message}`);
    expect(err.details).toEqual({ selector, column, expected });
    expect(err.hint).toBeTruthy();
    expect(err.retry).toBe('terminal');
    // Every entry point reports the same error, every time (errors are not cached).
    expect(() => getSelector(selector)).toThrow(err.message);
    expect(() => getSelector(selector)).toThrow(err.message);
    expect(() => parseNamespaceSelector(selector)).toThrow(err.message);
    expect(() => parseSelectorTree(selector)).toThrow(err.message);
  });

  it('rejects a value that is not a string (from YAML or JSON)', () => {
    for (const value of [5, null, undefined, true]) {
      expect(() => parseSelector(value as unknown as string)).toThrow(/a selector must be a string/);
      expect(() => getSelector(value as unknown as string)).toThrow(EgwError);
    }
  });

  it('matches the example of the issue exactly', () => {
    expect(() => parseSelector('a ==')).toThrow('invalid selector "a ==": expected string at column 5');
  });

  it('accepts a label of exactly 512 characters and rejects 513', () => {
    expect(() => parseSelector(`has(${LONG_LABEL})`)).not.toThrow();
    expect(() => parseSelector(`has(${TOO_LONG_LABEL})`)).toThrow(/label too long/);
  });
});

/** Canonical strings (Calico's `Selector.String()`), including Calico's own test expectations. */
const canonical: readonly (readonly [string, string])[] = [
  ['', 'all()'],
  [' all() ', 'all()'],
  [' (all() )', 'all()'],
  ['global()', 'global()'],
  ['!global()', '!global()'],
  ['! (has( b)||! has(a ))', '!(has(b) || !has(a))'],
  ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
  [`a == "'"`, `a == "'"`],
  [`a == '"'`, `a == '"'`],
  [`a contains '"'`, `a contains '"'`],
  [`a contains "'"`, `a contains "'"`],
  [`a startswith '"'`, `a starts with '"'`],
  [`a endswith "'"`, `a ends with "'"`],
  [`a!='"'`, `a != '"'`],
  ["a == 'x'", 'a == "x"'],
  ["a == ''", 'a == ""'],
  ['a in {"d"}', 'a in {"d"}'],
  ['a in {"a", "b"}', 'a in {"a", "b"}'],
  ['a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'],
  ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'],
  [`a notin {'b', '"', "'"}`, `a not in {'"', "'", "b"}`],
  ['a in {}', 'a in {}'],
  ["a not in {'x',}", 'a not in {"x"}'],
  ['a in {"B", "a", "_", "0"}', 'a in {"0", "B", "_", "a"}'],
  // code point order (Go sorts UTF-8 bytes): U+FF5E sorts before U+1F600
  ['a in {"😀", "～"}', 'a in {"～", "😀"}'],
  ["k == 'v' && x == 'y'", '(k == "v" && x == "y")'],
  ["k == 'v' || has(x)", '(k == "v" || has(x))'],
  ["!(k == 'v')", '!k == "v"'],
  ['!!has(a)', 'has(a)'],
  ['!!!has(a)', '!has(a)'],
  ["!a == 'x' || b == 'y' && c == 'z'", '(!a == "x" || (b == "y" && c == "z"))'],
  ["a == 'x' && b == 'y' && c == 'z'", '(a == "x" && b == "y" && c == "z")'],
  ["(a == 'x' && b == 'y') && c == 'z'", '((a == "x" && b == "y") && c == "z")'],
  [
    "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
    '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})',
  ],
  ["projectcalico.org/name=='a'&&kubernetes.io/metadata.name in{'b'}", '(projectcalico.org/name == "a" && kubernetes.io/metadata.name in {"b"})'],
  ["\ta\t==\t'x'\t", 'a == "x"'],
];

describe('canonical string form', () => {
  it.each(canonical)('%j prints as %j and round-trips', (input, expected) => {
    const sel = parseSelector(input);
    expect(sel.toString()).toBe(expected);
    expect(String(sel)).toBe(expected);
    expect(parseSelector(expected).toString()).toBe(expected);
    expect(normaliseSelector(input)).toBe(expected);
  });

  it('keeps a double negation from parentheses, which re-parses to the plain form (as Calico)', () => {
    expect(parseSelector('!(!has(a))').toString()).toBe('!!has(a)');
    expect(parseSelector('!!has(a)').toString()).toBe('has(a)');
  });

  it('normalises like Calico: trims newlines too, returns unparseable text trimmed but unaltered', () => {
    expect(normaliseSelector("\n  a == 'x'\n")).toBe('a == "x"');
    expect(normaliseSelector('')).toBe('all()');
    expect(normaliseSelector('  a ==  ')).toBe('a ==');
    expect(normaliseSelector('  )( ')).toBe(')(');
  });
});

describe('namespace selectors', () => {
  it('matches namespace labels plus projectcalico.org/name', () => {
    const labels = namespaceLabels({ name: 'prod', labels: { team: 'red', 'kubernetes.io/metadata.name': 'prod' } });
    expect(labels).toEqual({ team: 'red', 'kubernetes.io/metadata.name': 'prod', 'projectcalico.org/name': 'prod' });
    expect(getNamespaceSelector("projectcalico.org/name == 'prod'").evaluate(labels)).toBe(true);
    expect(getNamespaceSelector("projectcalico.org/name in {'dev', 'prod'}").evaluate(labels)).toBe(true);
    expect(getNamespaceSelector("team == 'red' && projectcalico.org/name != 'dev'").evaluate(labels)).toBe(true);
    expect(getNamespaceSelector("projectcalico.org/name == 'dev'").evaluate(labels)).toBe(false);
  });

  it('works without labels and lets the name win over a namespace label of the same key', () => {
    expect(namespaceLabels({ name: 'a' })).toEqual({ 'projectcalico.org/name': 'a' });
    expect(namespaceLabels({ name: 'a', labels: { 'projectcalico.org/name': 'fake' } })).toEqual({
      'projectcalico.org/name': 'a',
    });
  });

  it('does not modify the namespace labels it is given', () => {
    const own = { team: 'red' };
    namespaceLabels({ name: 'x', labels: own });
    expect(own).toEqual({ team: 'red' });
  });

  it('treats global() as matching no namespace and all() as every namespace', () => {
    const labels = namespaceLabels({ name: 'prod' });
    expect(getNamespaceSelector('global()').evaluate(labels)).toBe(false);
    expect(getNamespaceSelector('!global()').evaluate(labels)).toBe(true);
    expect(getNamespaceSelector('all()').evaluate(labels)).toBe(true);
    expect(getNamespaceSelector('').evaluate(labels)).toBe(true);
    expect(getNamespaceSelector("global() || projectcalico.org/name == 'prod'").evaluate(labels)).toBe(true);
    expect(getNamespaceSelector('global()').toString()).toBe('global()');
    // The plain parser keeps Calico's parser behaviour: global() is true.
    expect(getSelector('global()').evaluate(labels)).toBe(true);
  });

  it('reports global() use', () => {
    expect(selectorUsesGlobal('global()')).toBe(true);
    expect(selectorUsesGlobal("a == 'x' && !(has(b) || global())")).toBe(true);
    expect(selectorUsesGlobal("a == 'x' && !(has(b) || all())")).toBe(false);
    expect(selectorUsesGlobal('')).toBe(false);
    expect(() => selectorUsesGlobal('global(')).toThrow(EgwError);
  });
});

describe('caching', () => {
  it('returns the same compiled selector for the same text', () => {
    clearSelectorCache();
    const a = getSelector("app == 'web'");
    expect(getSelector("app == 'web'")).toBe(a);
    expect(getSelector("app == 'web' ")).not.toBe(a);
    expect(getNamespaceSelector("app == 'web'")).not.toBe(a);
    expect(parseSelector("app == 'web'")).not.toBe(a);
  });

  it('stays bounded and keeps recently used entries', () => {
    clearSelectorCache();
    const hot = getSelector('has(hot)');
    for (let i = 0; i < 70_000; i++) {
      getSelector(`has(l${i})`);
      if (i % 1000 === 0) expect(getSelector('has(hot)')).toBe(hot);
    }
    expect(selectorCacheSize()).toBeLessThanOrEqual(2 * 16_384);
    expect(getSelector('has(hot)')).toBe(hot);
    clearSelectorCache();
    expect(selectorCacheSize()).toBe(0);
  });
});

describe('parse tree', () => {
  it('exposes the tree with sorted unique sets and collapsed negations', () => {
    const tree: SelectorNode = parseSelectorTree("!!!a in {'b', 'a', 'b'} && has(c) || all()");
    expect(tree).toEqual({
      kind: 'or',
      operands: [
        {
          kind: 'and',
          operands: [
            { kind: 'not', operand: { kind: 'in', label: 'a', values: ['a', 'b'] } },
            { kind: 'has', label: 'c' },
          ],
        },
        { kind: 'all' },
      ],
    });
  });
});

// A generated cross-check: the compiled closures (with their constant folding and specialised arities)
// must agree with a direct reading of the tree on many random selectors and label sets, and so must the
// canonical string of each selector.
function interpret(node: SelectorNode, labels: Labels): boolean {
  const has = (k: string): boolean => Object.hasOwn(labels, k) && typeof labels[k] === 'string';
  switch (node.kind) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return has(node.label);
    case 'eq':
      return has(node.label) && labels[node.label] === node.value;
    case 'ne':
      return !has(node.label) || labels[node.label] !== node.value;
    case 'contains':
      return has(node.label) && labels[node.label]!.includes(node.value);
    case 'startsWith':
      return has(node.label) && labels[node.label]!.startsWith(node.value);
    case 'endsWith':
      return has(node.label) && labels[node.label]!.endsWith(node.value);
    case 'in':
      return has(node.label) && node.values.includes(labels[node.label]!);
    case 'notIn':
      return !has(node.label) || !node.values.includes(labels[node.label]!);
    case 'not':
      return !interpret(node.operand, labels);
    case 'and':
      return node.operands.every((n) => interpret(n, labels));
    case 'or':
      return node.operands.some((n) => interpret(n, labels));
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('generated cross-check', () => {
  const random = rng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const keys = ['a', 'b', 'c', 'toString'];
  const values = ['', 'x', 'y', 'xy'];
  const quoteOf = (v: string): string => (random() < 0.5 ? `'${v}'` : `"${v}"`);
  const gen = (depth: number): string => {
    const r = random();
    if (depth > 2 || r < 0.5) {
      const k = pick(keys);
      const op = pick(['==', '!=', 'contains', 'starts with', 'ends with', 'in', 'not in', 'has', '!has', 'all', 'global']);
      switch (op) {
        case 'has':
          return `has(${k})`;
        case '!has':
          return `!has(${k})`;
        case 'all':
          return 'all()';
        case 'global':
          return '!global()';
        case 'in':
        case 'not in': {
          const n = Math.floor(random() * 6);
          return `${k} ${op} {${Array.from({ length: n }, () => quoteOf(pick(values))).join(', ')}}`;
        }
        default:
          return `${k} ${op} ${quoteOf(pick(values))}`;
      }
    }
    const n = 2 + Math.floor(random() * 4);
    const parts = Array.from({ length: n }, () => gen(depth + 1));
    const joined = parts.join(random() < 0.5 ? ' && ' : ' || ');
    return `${'!'.repeat(Math.floor(random() * 3))}(${joined})`;
  };
  const labelSets: Labels[] = Array.from({ length: 40 }, () => {
    const out: Record<string, string> = {};
    for (const k of keys) if (random() < 0.6) out[k] = pick(values);
    return out;
  });

  it('agrees with a tree interpreter and with its own canonical form', () => {
    for (let i = 0; i < 600; i++) {
      const text = gen(0);
      const sel = parseSelector(text);
      const again = parseSelector(sel.toString());
      expect(again.toString()).toBe(sel.toString());
      const tree = parseSelectorTree(text);
      for (const labels of labelSets) {
        const want = interpret(tree, labels);
        expect(sel.evaluate(labels), `${text} on ${JSON.stringify(labels)}`).toBe(want);
        expect(again.evaluate(labels)).toBe(want);
      }
    }
  });
});
