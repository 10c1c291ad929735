/**
 * `egw controller` as a process: started on a store, it renders gateway pods for an EgressGateway applied
 * while it runs, and stops cleanly on SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatastore } from '../../src/datastore/open.js';
import { listResources } from '../../src/datastore/resources.js';
import { EGW_CLI, REPO } from '../support/dist.js';

const work = mkdtempSync(join(tmpdir(), 'egw-controller-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('egw controller', () => {
  it('renders the gateway pods of an EgressGateway applied while it runs, and exits 0 on SIGTERM', async () => {
    const db = join(work, 'egw.db');
    const env = { ...process.env, EGW_DATASTORE: db, AWS_REGION: '', AWS_ENDPOINT_URL_EC2: '' };
    const apply = spawnSync(process.execPath, [EGW_CLI, 'apply', '-f', join(REPO, 'examples/reference')], { env, encoding: 'utf8' });
    expect(apply.status, apply.stderr).toBe(0);
    const child = spawn(process.execPath, [EGW_CLI, 'controller', '--log-level', 'warn'], { env: { ...env, AWS_REGION: undefined }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const store = await openDatastore(db);
      try {
        let pods: Awaited<ReturnType<typeof listResources<'Pod'>>> = [];
        for (let i = 0; i < 200 && pods.length < 2; i++) {
          await new Promise((r) => setTimeout(r, 50));
          pods = (await listResources(store, 'Pod', 'calico-egress')).filter((p) => p.metadata.name.startsWith('egress-gateway-red-'));
        }
        expect(pods).toHaveLength(2);
        for (const pod of pods) {
          expect(pod.metadata.labels?.['egress-code']).toBe('red');
          expect(pod.metadata.annotations?.['cni.projectcalico.org/ipv4pools']).toBe('["egress-red-west-1","egress-red-west-2"]');
        }
      } finally {
        await store.close();
      }
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr).toBe(0);
  });
});
