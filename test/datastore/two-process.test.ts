/**
 * Issue 2's "done when": two processes share one embedded store; one applies 1,000 changes while the
 * other watches, and the watcher sees exactly those 1,000 events in order.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDatastore } from '../../src/datastore/sqlite/sqlite-datastore.js';

const repo = resolve(import.meta.dirname, '../..');
// Inside the repository (git-ignored) so that the compiled child finds node_modules.
const out = join(repo, '.egw-tmp', `ds-two-process-${process.pid}`);
const dataDir = mkdtempSync(join(tmpdir(), 'egw-ds-two-process-'));
const children: ChildProcess[] = [];

beforeAll(() => {
  // vitest runs TypeScript, plain node does not: compile the child (and what it imports) with tsc.
  execFileSync(
    join(repo, 'node_modules', '.bin', 'tsc'),
    [
      '--outDir', out, '--rootDir', repo, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
      '--skipLibCheck', '--types', 'node', '--esModuleInterop', '--strict', join(repo, 'test/datastore/two-process-child.ts'),
    ],
    { cwd: repo, stdio: 'pipe' },
  );
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(out, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs the child with `args`; resolves its stdout lines; `onLine` sees each as it comes. */
function child(args: string[], onLine?: (line: string) => void): Promise<string[]> {
  const p = spawn(process.execPath, [join(out, 'test/datastore/two-process-child.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  const lines: string[] = [];
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: p.stdout }).on('line', (l) => {
    lines.push(l);
    onLine?.(l);
  });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`child ${args[0]} timed out; stderr: ${stderr}`));
    }, 60_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) res(lines);
      else rej(new Error(`child ${args[0]} exited ${code}: ${stderr}`));
    });
  });
}

describe('two processes on one SQLite store', () => {
  it('a watcher process sees exactly the 1,000 changes another process applies, in order', async () => {
    const path = join(dataDir, 'egw.db');
    const setup = await SqliteDatastore.open(path);
    // Something already there, which the watcher must not see (it watches after this).
    await setup.commit([{ op: 'put', key: { kind: 'Change', namespace: 'two-proc', name: 'before' }, value: {} }]);
    const after = await setup.currentRevision();
    await setup.close();

    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const watching = child(['watcher', path, String(after), '1000'], (l) => {
      if (l === 'ready') ready();
    });
    await isReady;
    const [written] = await child(['writer', path, '1000']);
    const seen = (await watching).filter((l) => l !== 'ready');

    const expected = JSON.parse(written!) as unknown[];
    expect(expected).toHaveLength(1000);
    expect(seen.map((l) => JSON.parse(l) as unknown)).toEqual(expected);
  });
});
