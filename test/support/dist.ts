import { resolve } from 'node:path';

/** The repository root. */
export const REPO = resolve(import.meta.dirname, '../..');

/** The compiled form of a repository file (test/global-setup.ts compiles everything before the tests). */
export function distPath(repoRelativeTs: string): string {
  return resolve(REPO, 'dist', repoRelativeTs.replace(/\.ts$/, '.js'));
}

/** The compiled `egw` CLI. */
export const EGW_CLI = distPath('src/cli/main.ts');
