import { awsErrors } from './api-error.js';

/**
 * The parameters of one EC2 Query API request, as the flat `Name.1.Sub=value` pairs the SDK sends,
 * with typed accessors that answer with AWS's errors for missing or malformed values.
 */
export class QueryParams {
  private readonly map: ReadonlyMap<string, string>;
  private readonly touched = new Set<string>();

  constructor(entries: Iterable<[string, string]>) {
    this.map = new Map(entries);
  }

  /** Parses an `application/x-www-form-urlencoded` body (and/or a URL query string). */
  static parse(...sources: string[]): QueryParams {
    const entries: [string, string][] = [];
    for (const source of sources) {
      for (const [k, v] of new URLSearchParams(source)) entries.push([k, v]);
    }
    return new QueryParams(entries);
  }

  /** Every parameter name that was sent. */
  keys(): string[] {
    return [...this.map.keys()];
  }

  /** The names that no accessor has read: a handler calls this last to reject parameters it does not support. */
  untouched(): string[] {
    return this.keys().filter((k) => !this.touched.has(k));
  }

  /** A stable serialisation of every parameter except the listed ones (for client-token comparison). */
  canonical(except: readonly string[]): string {
    return this.keys()
      .filter((k) => !except.includes(k))
      .sort()
      .map((k) => `${k}=${this.map.get(k) ?? ''}`)
      .join('&');
  }

  /** The raw value, or undefined. */
  string(name: string): string | undefined {
    this.touched.add(name);
    return this.map.get(name);
  }

  /** A required string; `MissingParameter` when absent or empty. */
  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') throw awsErrors.missingParameter(name);
    return value;
  }

  /** An integer, or undefined; `InvalidParameterValue` when not one. */
  integer(name: string): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value)) {
      throw awsErrors.invalidParameterValue(`Invalid value '${value}' for ${name}. It must be an integer.`);
    }
    return Number(value);
  }

  /** A boolean (`true`/`false`), or undefined. */
  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false') {
      throw awsErrors.invalidParameterValue(`Invalid value '${value}' for ${name}. It must be true or false.`);
    }
    return value === 'true';
  }

  /** A list sent as `Name.1`, `Name.2`, … (in index order). */
  list(name: string): string[] {
    return this.indexes(name).map((i) => this.string(`${name}.${i}`) ?? '');
  }

  /** The indexes `n` present under `Name.n…` (sorted numerically). */
  indexes(prefix: string): number[] {
    const found = new Set<number>();
    const head = `${prefix}.`;
    for (const key of this.map.keys()) {
      if (!key.startsWith(head)) continue;
      const rest = key.slice(head.length);
      const dot = rest.indexOf('.');
      const index = dot < 0 ? rest : rest.slice(0, dot);
      if (/^\d+$/.test(index)) found.add(Number(index));
    }
    return [...found].sort((a, b) => a - b);
  }

  /** EC2 filters: `Filter.N.Name` and `Filter.N.Value.M`. */
  filters(): Filter[] {
    return this.indexes('Filter').map((i) => ({
      name: this.required(`Filter.${i}.Name`),
      values: this.list(`Filter.${i}.Value`),
    }));
  }

  /** Tags sent as `Prefix.N.Key` / `Prefix.N.Value` (a missing value is the empty string). */
  tags(prefix: string): { key: string; value: string }[] {
    return this.indexes(prefix).map((i) => ({
      key: this.string(`${prefix}.${i}.Key`) ?? '',
      value: this.string(`${prefix}.${i}.Value`) ?? '',
    }));
  }
}

/** One EC2 filter: the resource matches when any value matches (values may use `*` and `?`). */
export interface Filter {
  name: string;
  values: string[];
}
