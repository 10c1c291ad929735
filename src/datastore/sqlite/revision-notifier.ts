import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Wakes watches when the store's revision moves past theirs, whichever process wrote it.
 *
 * Two sources, because neither alone is enough: `fs.watch` on the database's directory reports writes
 * to the WAL at once (but inotify can be missing, full, or silent on some file systems), and a short
 * poll of one integer is the backstop. Both only run while a watch uses the notifier.
 */
export class RevisionNotifier {
  private readonly waiters = new Set<{ after: number; wake: () => void }>();
  private users = 0;
  private timer: NodeJS.Timeout | undefined;
  private fsWatcher: FSWatcher | undefined;
  private scheduled = false;
  private stopped = false;

  /**
   * @param readRevision returns the store's current revision; a throw wakes every waiter (so that each
   *   finds the problem itself on its next read).
   * @param dbPath the database file; its directory is watched for changes to the file and its WAL.
   */
  constructor(
    private readonly readRevision: () => number,
    private readonly dbPath: string,
    private readonly pollIntervalMs: number,
  ) {}

  /** Starts the wake-up sources for one more watch. Pair with {@link release}. */
  acquire(): void {
    if (this.stopped || this.users++ > 0) return;
    this.timer = setInterval(() => this.poke(), this.pollIntervalMs);
    const dir = dirname(this.dbPath);
    const base = basename(this.dbPath);
    try {
      this.fsWatcher = watch(dir, { persistent: false }, (_event, file) => {
        if (file === null || file === base || file === `${base}-wal`) this.schedule();
      });
      // inotify can fail later (e.g. the directory vanished); polling carries on alone then.
      this.fsWatcher.on('error', () => this.stopFsWatch());
    } catch {
      this.fsWatcher = undefined;
    }
  }

  /** Stops the wake-up sources when the last watch is done. */
  release(): void {
    if (this.stopped || --this.users > 0) return;
    this.stopSources();
  }

  private stopSources(): void {
    this.users = 0;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.stopFsWatch();
  }

  /** Resolves once the revision is above `after` (possibly at once), or when `signal` aborts. */
  wait(after: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const waiter = {
        after,
        wake: (): void => {
          this.waiters.delete(waiter);
          signal.removeEventListener('abort', waiter.wake);
          resolve();
        },
      };
      signal.addEventListener('abort', waiter.wake, { once: true });
      this.waiters.add(waiter);
      this.poke();
    });
  }

  /** Reads the revision now and wakes the waiters it satisfies (call after a local commit). */
  poke(): void {
    if (this.waiters.size === 0) return;
    let revision: number;
    try {
      revision = this.readRevision();
    } catch {
      revision = Number.POSITIVE_INFINITY;
    }
    for (const w of [...this.waiters]) if (revision > w.after) w.wake();
  }

  /**
   * Wakes every waiter and stops the wake-up sources for good (closing the store), also for watches
   * whose consumer abandoned them without ending them (their timer would otherwise keep the process up).
   */
  shutdown(): void {
    for (const w of [...this.waiters]) w.wake();
    this.stopped = true;
    this.stopSources();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.poke();
    });
  }

  private stopFsWatch(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
  }
}
