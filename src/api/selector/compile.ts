/**
 * Compiles a parsed selector to a tree of closures, once, so that evaluation never re-walks the tree or
 * switches on node kinds: each label operation is one property read and one comparison.
 */
import type { SelectorNode } from './ast.js';
import type { Labels } from './labels.js';

/** A compiled selector: true when the labels match. */
export type Matcher = (labels: Labels) => boolean;

/** How context-dependent parts of the language evaluate. */
export interface CompileOptions {
  /**
   * The value of `global()`. Calico's parser evaluates it as true; in a namespaceSelector it means
   * "not namespaced", which no namespace is, so namespace selectors compile it as false.
   */
  readonly global: boolean;
}

/** A compiled node; `constant` is set when its value does not depend on the labels (folded away). */
interface Compiled {
  readonly fn: Matcher;
  readonly constant?: boolean;
}

const ALWAYS: Compiled = { fn: () => true, constant: true };
const NEVER: Compiled = { fn: () => false, constant: false };

function constant(value: boolean): Compiled {
  return value ? ALWAYS : NEVER;
}

// Why `labels[k] === v` is enough for presence: an absent key reads as undefined and an inherited one
// (`constructor`) as a non-string, neither of which equals a string. Only the substring operators and
// has() need an explicit typeof check.

function compileIn(label: string, values: readonly string[]): Compiled {
  switch (values.length) {
    case 0:
      return NEVER; // `k in {}` never matches (Calico)
    case 1: {
      const a = values[0]!;
      return { fn: (l) => l[label] === a };
    }
    case 2: {
      const a = values[0]!;
      const b = values[1]!;
      return {
        fn: (l) => {
          const v = l[label];
          return v === a || v === b;
        },
      };
    }
    case 3: {
      const a = values[0]!;
      const b = values[1]!;
      const c = values[2]!;
      return {
        fn: (l) => {
          const v = l[label];
          return v === a || v === b || v === c;
        },
      };
    }
    default: {
      const set: ReadonlySet<string | undefined> = new Set<string | undefined>(values);
      return { fn: (l) => set.has(l[label]) };
    }
  }
}

function negate(c: Compiled): Compiled {
  if (c.constant !== undefined) return constant(!c.constant);
  const f = c.fn;
  return { fn: (l) => !f(l) };
}

function compileAnd(parts: readonly Compiled[]): Compiled {
  if (parts.some((p) => p.constant === false)) return NEVER;
  const fns = parts.filter((p) => p.constant === undefined).map((p) => p.fn);
  switch (fns.length) {
    case 0:
      return ALWAYS;
    case 1:
      return { fn: fns[0]! };
    case 2: {
      const [a, b] = fns as [Matcher, Matcher];
      return { fn: (l) => a(l) && b(l) };
    }
    case 3: {
      const [a, b, c] = fns as [Matcher, Matcher, Matcher];
      return { fn: (l) => a(l) && b(l) && c(l) };
    }
    default:
      return {
        fn: (l) => {
          for (let i = 0; i < fns.length; i++) if (!fns[i]!(l)) return false;
          return true;
        },
      };
  }
}

function compileOr(parts: readonly Compiled[]): Compiled {
  if (parts.some((p) => p.constant === true)) return ALWAYS;
  const fns = parts.filter((p) => p.constant === undefined).map((p) => p.fn);
  switch (fns.length) {
    case 0:
      return NEVER;
    case 1:
      return { fn: fns[0]! };
    case 2: {
      const [a, b] = fns as [Matcher, Matcher];
      return { fn: (l) => a(l) || b(l) };
    }
    case 3: {
      const [a, b, c] = fns as [Matcher, Matcher, Matcher];
      return { fn: (l) => a(l) || b(l) || c(l) };
    }
    default:
      return {
        fn: (l) => {
          for (let i = 0; i < fns.length; i++) if (fns[i]!(l)) return true;
          return false;
        },
      };
  }
}

function compileNode(node: SelectorNode, options: CompileOptions): Compiled {
  switch (node.kind) {
    case 'all':
      return ALWAYS;
    case 'global':
      return constant(options.global);
    case 'has': {
      const k = node.label;
      return { fn: (l) => typeof l[k] === 'string' };
    }
    case 'eq': {
      const k = node.label;
      const v = node.value;
      return { fn: (l) => l[k] === v };
    }
    case 'ne': {
      // Matches when the label is absent (Calico).
      const k = node.label;
      const v = node.value;
      return { fn: (l) => l[k] !== v };
    }
    case 'contains': {
      const k = node.label;
      const v = node.value;
      return {
        fn: (l) => {
          const x = l[k];
          return typeof x === 'string' && x.includes(v);
        },
      };
    }
    case 'startsWith': {
      const k = node.label;
      const v = node.value;
      return {
        fn: (l) => {
          const x = l[k];
          return typeof x === 'string' && x.startsWith(v);
        },
      };
    }
    case 'endsWith': {
      const k = node.label;
      const v = node.value;
      return {
        fn: (l) => {
          const x = l[k];
          return typeof x === 'string' && x.endsWith(v);
        },
      };
    }
    case 'in':
      return compileIn(node.label, node.values);
    case 'notIn':
      // Matches when the label is absent; `k not in {}` matches everything (Calico).
      return negate(compileIn(node.label, node.values));
    case 'not':
      return negate(compileNode(node.operand, options));
    case 'and':
      return compileAnd(node.operands.map((n) => compileNode(n, options)));
    case 'or':
      return compileOr(node.operands.map((n) => compileNode(n, options)));
  }
}

/** Compiles a selector tree to a {@link Matcher}. Pure; the result holds no reference to the tree. */
export function compile(node: SelectorNode, options: CompileOptions): Matcher {
  return compileNode(node, options).fn;
}
