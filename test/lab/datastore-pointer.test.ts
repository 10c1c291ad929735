import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_DATASTORE, labDatastore, LAB_DATASTORE_FILE, openDatastore } from '../../src/datastore/open.js';

// openDatastore's default resolution consults a running lab's pointer file (docs/lab.md, "The datastore").
const dirs: string[] = [];
function labDir(content?: string): string {
  const d = mkdtempSync(join(tmpdir(), 'egw-lab-ptr-'));
  dirs.push(d);
  if (content !== undefined) writeFileSync(join(d, LAB_DATASTORE_FILE), content);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the lab datastore pointer', () => {
  it('is read from $EGW_LAB_DIR/datastore, trimmed; absent or empty means none', () => {
    const d = labDir('/run/egw-lab/egw.db\n');
    expect(labDatastore({ EGW_LAB_DIR: d })).toBe('/run/egw-lab/egw.db');
    expect(labDatastore({ EGW_LAB_DIR: labDir() })).toBeUndefined();
    expect(labDatastore({ EGW_LAB_DIR: labDir('  \n') })).toBeUndefined();
  });

  it('is used when neither a spec nor EGW_DATASTORE is given, and only then', async () => {
    const d = labDir();
    const db = join(d, 'lab.db');
    writeFileSync(join(d, LAB_DATASTORE_FILE), db);
    const other = join(d, 'other.db');
    const viaLab = await openDatastore(undefined, { env: { EGW_LAB_DIR: d } });
    const viaEnv = await openDatastore(undefined, { env: { EGW_LAB_DIR: d, EGW_DATASTORE: other } });
    const viaSpec = await openDatastore(other, { env: { EGW_LAB_DIR: d } });
    try {
      expect(viaLab.location).toContain(db);
      expect(viaEnv.location).toContain(other);
      expect(viaSpec.location).toContain(other);
    } finally {
      await Promise.all([viaLab.close(), viaEnv.close(), viaSpec.close()]);
    }
    expect(DEFAULT_DATASTORE).toBe('/var/lib/egw/egw.db');
  });
});

describe('the state directory', () => {
  it('is removed only when it holds nothing but what a lab writes', async () => {
    const { removeStateDir } = await import('../../src/lab/state.js');
    const { mkdirSync, existsSync } = await import('node:fs');
    const lab = labDir('/x/egw.db');
    mkdirSync(join(lab, 'logs'));
    writeFileSync(join(lab, 'lab.json'), '{}');
    removeStateDir(lab);
    expect(existsSync(lab)).toBe(false);
    const home = labDir();
    writeFileSync(join(home, 'notes.txt'), 'mine');
    expect(() => removeStateDir(home)).toThrow(/not \(only\) a lab's state directory: it holds notes.txt/);
    expect(existsSync(join(home, 'notes.txt'))).toBe(true);
    removeStateDir(join(home, 'missing'));
  });
});
