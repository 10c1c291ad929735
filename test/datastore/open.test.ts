import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_DATASTORE, openDatastore, parseDatastoreSpec } from '../../src/datastore/open.js';
import { isEgwError } from '../../src/platform/errors.js';
import type { EgwError } from '../../src/platform/errors.js';

describe('parseDatastoreSpec', () => {
  it('reads paths and sqlite: specs as SQLite files', () => {
    expect(parseDatastoreSpec('./egw-data/egw.db')).toEqual({ backend: 'sqlite', path: './egw-data/egw.db' });
    expect(parseDatastoreSpec('/var/lib/egw/egw.db')).toEqual({ backend: 'sqlite', path: '/var/lib/egw/egw.db' });
    expect(parseDatastoreSpec('sqlite:/tmp/x.db')).toEqual({ backend: 'sqlite', path: '/tmp/x.db' });
    expect(parseDatastoreSpec('sqlite:rel/x.db')).toEqual({ backend: 'sqlite', path: 'rel/x.db' });
    expect(parseDatastoreSpec('sqlite:///tmp/x.db')).toEqual({ backend: 'sqlite', path: '/tmp/x.db' });
  });

  it('reads etcd:// specs with one or more endpoints and an optional prefix', () => {
    const plain = { backend: 'etcd', tls: false, security: {} };
    expect(parseDatastoreSpec('etcd://127.0.0.1:2379')).toEqual({ ...plain, endpoints: ['127.0.0.1:2379'], prefix: '/egw/' });
    expect(parseDatastoreSpec('etcd://a:1,b.example:2,[::1]:3')).toEqual({
      ...plain,
      endpoints: ['a:1', 'b.example:2', '[::1]:3'],
      prefix: '/egw/',
    });
    expect(parseDatastoreSpec('etcd://h:2379/team-a/')).toEqual({ ...plain, endpoints: ['h:2379'], prefix: '/team-a/' });
  });

  it('reads etcds:// (TLS) and the security options of the query', () => {
    expect(parseDatastoreSpec('etcds://h:2379/p?ca=/etc/egw/ca.pem&cert=/c.pem&key=/k.pem&user=gw&password-file=/run/pw')).toEqual({
      backend: 'etcd',
      endpoints: ['h:2379'],
      prefix: '/p/',
      tls: true,
      security: { caFile: '/etc/egw/ca.pem', certFile: '/c.pem', keyFile: '/k.pem', username: 'gw', passwordFile: '/run/pw' },
    });
    expect(parseDatastoreSpec('etcd://h:2379?user=gw&password-file=/run/pw')).toMatchObject({ tls: false, prefix: '/egw/', security: { username: 'gw' } });
    for (const bad of ['etcd://h:1?ca=/x', 'etcds://h:1?password=secret', 'etcds://h:1?user=a&user=b', 'etcds://h:1?ca=']) {
      expect(() => parseDatastoreSpec(bad), bad).toThrow(/TLS options|unknown etcd option|twice|empty/);
    }
  });

  it('reads kubernetes and kubernetes:/path/to/kubeconfig', () => {
    expect(parseDatastoreSpec('kubernetes')).toEqual({ backend: 'kubernetes', kubeconfig: undefined });
    expect(parseDatastoreSpec('kubernetes:/etc/egw/kubeconfig')).toEqual({ backend: 'kubernetes', kubeconfig: '/etc/egw/kubeconfig' });
    expect(parseDatastoreSpec('kubernetes:rel/kc')).toEqual({ backend: 'kubernetes', kubeconfig: 'rel/kc' });
  });

  it('rejects unknown schemes and bad endpoints, saying what is accepted', () => {
    for (const bad of ['postgres://db/egw', 'etcd://nohost', 'etcd://h:99999', 'etcd://', 'sqlite:', '', 'http://x:1']) {
      let err: unknown;
      try {
        parseDatastoreSpec(bad);
      } catch (e) {
        err = e;
      }
      expect(isEgwError(err, 'InvalidInput'), bad).toBe(true);
      expect((err as EgwError).hint).toContain('etcd://HOST:PORT');
      expect((err as EgwError).hint).toContain('kubernetes:/path/to/kubeconfig');
    }
  });
});

describe('openDatastore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'egw-ds-open-'));
    dirs.push(d);
    return d;
  };

  it('prefers the argument, then EGW_DATASTORE, then the default path', async () => {
    const d = tmp();
    const a = await openDatastore(join(d, 'arg.db'), { env: { EGW_DATASTORE: join(d, 'env.db') } });
    expect(a.location).toBe(`sqlite:${join(d, 'arg.db')}`);
    await a.close();
    const b = await openDatastore(undefined, { env: { EGW_DATASTORE: `sqlite:${join(d, 'env.db')}` } });
    expect(b.location).toBe(`sqlite:${join(d, 'env.db')}`);
    await b.close();
    expect(DEFAULT_DATASTORE).toBe('/var/lib/egw/egw.db');
  });

  it('opens kubernetes from EGW_DATASTORE; no kubeconfig anywhere is DatastoreUnavailable/terminal', async () => {
    const err: unknown = await openDatastore(undefined, { env: { EGW_DATASTORE: 'kubernetes' } }).catch((e: unknown) => e);
    expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
    expect((err as EgwError).retry).toBe('terminal');
    expect((err as EgwError).message).toMatch(/no kubeconfig/);
  });

  it('reports an unreachable Kubernetes API server as DatastoreUnavailable/retry', async () => {
    const d = tmp();
    const kc = join(d, 'kubeconfig');
    writeFileSync(
      kc,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const err: unknown = await openDatastore(`kubernetes:${kc}`, { env: {} }).catch((e: unknown) => e);
    expect(isEgwError(err, 'DatastoreUnavailable'), String(err)).toBe(true);
    expect((err as EgwError).retry).toBe('retry');
    expect((err as EgwError).message).toContain('127.0.0.1:1');
  });

  it('reports an unreachable etcd as DatastoreUnavailable naming the endpoint', async () => {
    const err: unknown = await openDatastore('etcd://127.0.0.1:1', { etcd: { requestTimeoutMs: 1_000 } }).catch((e: unknown) => e);
    expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
    expect((err as EgwError).message).toContain('127.0.0.1:1');
  });
});
