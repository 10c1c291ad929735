import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgwError } from '../platform/errors.js';

/** One manifest file's text, with the name it is reported under. */
export interface ManifestSource {
  file: string;
  text: string;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * The largest manifest file (or stdin) read, in bytes. Real manifests are kilobytes; the bound keeps a
 * wrong path (a disk image, /dev/zero) or a hostile pipe from exhausting memory (issue 11).
 */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * Reads a file descriptor to its end, at most `max` bytes: more is an `InvalidInput` error naming `what`,
 * raised as soon as the bound is passed (the rest is never read). UTF-8.
 */
export function readBounded(fd: number, max: number, what: string): string {
  const chunks: Buffer[] = [];
  let size = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      // A non-blocking stdin with nothing yet: wait for it, as readFileSync(0) does.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0) break;
    size += n;
    if (size > max) {
      throw new EgwError('InvalidInput', `${what} is larger than ${max} bytes`, { hint: 'split the manifests into smaller files', details: { exitCode: 2 } });
    }
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function readFileBounded(file: string): string {
  const fd = openSync(file, 'r');
  try {
    return readBounded(fd, MAX_MANIFEST_BYTES, file);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the manifests named by `-f` arguments: a file, a directory (its .yaml/.yml/.json files, sorted,
 * not recursive, as `kubectl apply -f DIR`), or `-` for stdin. A missing or unreadable path is an error
 * naming it, and so is one larger than {@link MAX_MANIFEST_BYTES}.
 */
export function readManifestSources(paths: readonly string[], readStdin: () => string = () => readBounded(0, MAX_MANIFEST_BYTES, 'stdin')): ManifestSource[] {
  if (paths.length === 0) throw new EgwError('InvalidInput', 'no manifests given', { hint: 'pass -f FILE, -f DIR or -f -', details: { exitCode: 2 } });
  const sources: ManifestSource[] = [];
  for (const path of paths) {
    if (path === '-') {
      sources.push({ file: '-', text: readStdin() });
      continue;
    }
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw new EgwError('InvalidInput', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, {
        hint: 'check the path given to -f',
      });
    }
    const files = isDir
      ? readdirSync(path)
          .filter((f) => MANIFEST_EXTENSIONS.some((ext) => f.endsWith(ext)))
          .sort()
          .map((f) => join(path, f))
      : [path];
    if (isDir && files.length === 0) {
      throw new EgwError('InvalidInput', `${path} holds no .yaml, .yml or .json files`, { hint: 'point -f at a manifest file or a directory of them' });
    }
    for (const file of files) {
      try {
        sources.push({ file, text: readFileBounded(file) });
      } catch (err) {
        if (err instanceof EgwError) throw err;
        throw new EgwError('InvalidInput', `cannot read ${file}: ${(err as Error).message}`, { hint: 'check the file\'s permissions' });
      }
    }
  }
  return sources;
}
