import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EgwError } from '../platform/errors.js';

/** One manifest file's text, with the name it is reported under. */
export interface ManifestSource {
  file: string;
  text: string;
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/**
 * Reads the manifests named by `-f` arguments: a file, a directory (its .yaml/.yml/.json files, sorted,
 * not recursive, as `kubectl apply -f DIR`), or `-` for stdin. A missing or unreadable path is an error
 * naming it.
 */
export function readManifestSources(paths: readonly string[], readStdin: () => string = () => readFileSync(0, 'utf8')): ManifestSource[] {
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
        sources.push({ file, text: readFileSync(file, 'utf8') });
      } catch (err) {
        throw new EgwError('InvalidInput', `cannot read ${file}: ${(err as Error).message}`, { hint: 'check the file\'s permissions' });
      }
    }
  }
  return sources;
}
