import { stringify } from 'yaml';
import { EgwError } from '../platform/errors.js';

/** Output formats of `get`. */
export type OutputFormat = 'table' | 'yaml' | 'json';

export function parseOutputFormat(text: string): OutputFormat {
  const f = text.toLowerCase();
  if (f === 'table' || f === 'wide') return 'table';
  if (f === 'yaml' || f === 'json') return f;
  throw new EgwError('InvalidInput', `unknown output format "${text}"`, { hint: 'use -o table, -o yaml or -o json', details: { exitCode: 2 } });
}

/** An aligned text table: header row in capitals, two spaces between columns. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Objects as a YAML stream (one document each) or JSON (one object, or a List for several). */
export function formatObjects(objects: readonly object[], format: 'yaml' | 'json', asList: boolean): string {
  if (format === 'json') {
    const value = asList ? { apiVersion: 'v1', kind: 'List', items: objects } : objects[0];
    return JSON.stringify(value, null, 2) + '\n';
  }
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

/** Age as kubectl shows it (`5s`, `3m`, `2h`, `4d`). */
export function formatAge(created: string | undefined, now: number): string {
  if (created === undefined) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
