import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EgwError } from '../../platform/errors.js';
import type { SimState } from './model.js';

/**
 * Reads a state file written by {@link StateWriter}. Returns undefined when the file does not exist;
 * throws `InvalidInput` when it exists but is not a state file of this format.
 */
export async function readStateFile(path: string): Promise<SimState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EgwError('InvalidInput', `cannot read state file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new EgwError('InvalidInput', `${path}: not a JSON state file: ${(e as Error).message}`, {
      hint: 'remove the file to start from the world definition again',
      cause: e,
    });
  }
  const s = parsed as Partial<SimState>;
  if (s.format !== 'egw-aws-sim-state/v1' || typeof s.enis !== 'object' || typeof s.addresses !== 'object') {
    throw new EgwError('InvalidInput', `${path}: not an egw aws-sim state file (format egw-aws-sim-state/v1)`, {
      hint: 'remove the file to start from the world definition again',
    });
  }
  return parsed as SimState;
}

/**
 * Writes the state to a file atomically (temporary file, fsync, rename), so that a crash leaves
 * either the old or the new state, never a torn one. Writes are serialised; when several are
 * requested while one runs, only the latest state is written next.
 */
export class StateWriter {
  private running: Promise<void> | undefined;
  private pending: string | undefined;
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(private readonly path: string) {}

  /** Schedules a write of `state` (serialised now); resolves once it, or a later state, is on disk. */
  write(state: SimState): Promise<void> {
    this.pending = JSON.stringify(state, null, 1);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.running ??= this.drain();
    return done;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending !== undefined) {
        const text = this.pending;
        const waiters = this.waiters;
        this.pending = undefined;
        this.waiters = [];
        try {
          await writeAtomically(this.path, text);
          for (const w of waiters) w.resolve();
        } catch (e) {
          for (const w of waiters) w.reject(e);
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
