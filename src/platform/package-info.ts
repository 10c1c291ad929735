/**
 * Where egw's package is installed and its version: the first package.json named `egw` above this module
 * (it sits at the root of both the source tree and the compiled tree's parent). Read once.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface EgwPackage {
  /** The package's root folder (holds package.json, dist/, node_modules/); undefined when not found. */
  root: string | undefined;
  /** Its version; `0.0.0-dev` when no package.json is found. */
  version: string;
}

let cached: EgwPackage | undefined;

export function egwPackage(): EgwPackage {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'egw' && typeof pkg.version === 'string') return (cached = { root: dir, version: pkg.version });
    } catch {
      // no package.json here: look one level up
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return (cached = { root: undefined, version: '0.0.0-dev' });
}
