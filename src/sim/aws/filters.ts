import { awsErrors } from './api-error.js';
import type { Filter } from './query.js';

/**
 * How to read one filterable field of a resource: the values it has (a resource matches a filter
 * when any of its values matches any of the filter's values).
 */
export type FieldReader<T> = (resource: T) => readonly (string | undefined)[];

/** The filters an action accepts, by name; `tag:KEY` and `tag-key` are added for taggable resources. */
export type FilterTable<T> = Record<string, FieldReader<T>>;

/**
 * Compiles EC2 filters against a table of known names into one predicate. Values are ANDed across
 * filters and ORed within a filter; `*` and `?` are wildcards (`\` escapes them). An unknown name is
 * an `InvalidParameterValue` error, as on EC2.
 */
export function compileFilters<T>(
  filters: readonly Filter[],
  table: FilterTable<T>,
  tags?: (resource: T) => Record<string, string>,
): (resource: T) => boolean {
  const predicates = filters.map((f): ((r: T) => boolean) => {
    const patterns = f.values.map(wildcard);
    const matchAny = (values: readonly (string | undefined)[]): boolean =>
      values.some((v) => v !== undefined && patterns.some((p) => p.test(v)));
    if (tags !== undefined && f.name.startsWith('tag:')) {
      const key = f.name.slice(4);
      return (r) => {
        const value = tags(r)[key];
        return value !== undefined && matchAny([value]);
      };
    }
    if (tags !== undefined && f.name === 'tag-key') return (r) => matchAny(Object.keys(tags(r)));
    const reader = table[f.name];
    if (reader === undefined) throw awsErrors.invalidFilter(f.name);
    return (r) => matchAny(reader(r));
  });
  return (r) => predicates.every((p) => p(r));
}

function wildcard(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRe(pattern[++i] ?? '');
    } else if (c === '*') {
      re += '.*';
    } else if (c === '?') {
      re += '.';
    } else {
      re += escapeRe(c);
    }
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
