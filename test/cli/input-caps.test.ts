import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES, readManifestSources } from '../../src/cli/manifest-sources.js';
import { distPath } from '../support/dist.js';

// Issue 11, item 11 (part): manifest files, stdin and the CNI plugin's stdin have a size bound.
const dir = mkdtempSync(join(tmpdir(), 'egw-input-caps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('input size bounds', () => {
  it('a manifest file larger than the bound is refused (even when it is valid YAML); one at the bound is read', () => {
    const comment = `# ${'x'.repeat(1021)}\n`;
    const big = join(dir, 'big.yaml');
    writeFileSync(big, comment.repeat(MAX_MANIFEST_BYTES / comment.length) + '#');
    expect(() => readManifestSources([big])).toThrow(/larger than 16777216 bytes/);
    const ok = join(dir, 'ok.yaml');
    writeFileSync(ok, comment.repeat(MAX_MANIFEST_BYTES / comment.length));
    expect(readManifestSources([ok])[0]!.text.length).toBe(MAX_MANIFEST_BYTES);
  });

  it('egw validate -f - refuses a stdin larger than the bound', () => {
    const r = spawnSync(process.execPath, [distPath('src/cli/main.ts'), 'validate', '-f', '-'], { input: '#'.repeat(MAX_MANIFEST_BYTES + 1), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/stdin is larger than/);
  });

  it('egw-ipam refuses a network configuration larger than 1 MiB, unread, with CNI error 6', () => {
    const r = spawnSync(process.execPath, [distPath('src/cni/main.ts')], { input: ' '.repeat(8 * 1024 * 1024), env: { CNI_COMMAND: 'ADD' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 6, msg: 'network configuration too large' });
  });
});
