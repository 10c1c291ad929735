/**
 * The container image the operator puts in gateway pods: egw's own image, tagged with egw's version.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where egw's image is published. */
export const EGW_IMAGE_REPOSITORY = 'ghcr.io/egw-project/egw';

let cachedVersion: string | undefined;

/**
 * egw's version, read once from the package.json named `egw` above this module (it sits at the root of
 * both the source tree and the compiled tree's parent). `0.0.0-dev` when none is found.
 */
export function egwVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'egw' && typeof pkg.version === 'string') return (cachedVersion = pkg.version);
    } catch {
      // no package.json here: look one level up
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return (cachedVersion = '0.0.0-dev');
}

/** `ghcr.io/egw-project/egw:<egw version>`: the image rendered when no other is configured. */
export function defaultGatewayImage(): string {
  return `${EGW_IMAGE_REPOSITORY}:${egwVersion()}`;
}
