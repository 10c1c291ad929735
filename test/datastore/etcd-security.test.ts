import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, WatchEvent } from '../../src/datastore/contract.js';
import { Informer } from '../../src/datastore/informer.js';
import { openDatastore, openDatastoreWaiting } from '../../src/datastore/open.js';
import { etcdRoles, renderEtcdRolesScript, type EtcdRole } from '../../src/install/etcd-roles.js';
import type { Clock } from '../../src/platform/clock.js';
import { isEgwError, type EgwError } from '../../src/platform/errors.js';
import { EGW_CLI } from '../support/dist.js';
import { makeTestPki, type TestPki } from './etcd-certs.js';
import { freePort, startTestEtcd, type TestEtcd } from './etcd-server.js';

// Issue 11, item 6: etcd over TLS with client certificates, etcd authentication, and one least-privilege
// role per program — against real etcd servers of this file's own (loopback, free ports, temp folders).

let pki: TestPki;
/** TLS, client certificates required (`--client-cert-auth --trusted-ca-file`). */
let tlsEtcd: TestEtcd;
/** TLS (server certificate only) with etcd authentication enabled and egw's roles. */
let authEtcd: TestEtcd;
/** Plain HTTP, no auth. */
let plainEtcd: TestEtcd;
let pwDir: string;

const ROOT_PW = 'root-secret';
const roles = etcdRoles('/egw/');

/** Creates the users and roles of `roles` (the JSON form of `egw render etcd-roles`) through etcd's auth API, as etcd root would. */
async function applyRoles(client: Etcd3, list: readonly EtcdRole[], password: (user: string) => string): Promise<void> {
  for (const r of list) {
    const role = await client.role(r.role).create();
    for (const p of r.permissions) {
      const permission = p.permission === 'read' ? 'Read' : 'Readwrite';
      await role.grant(p.prefix ? { permission, range: client.range({ prefix: p.key }) } : { permission, key: p.key });
    }
    await client.user(r.user).create(password(r.user));
    await client.user(r.user).addRole(r.role);
  }
}

beforeAll(async () => {
  pki = makeTestPki();
  pwDir = pki.dir;
  const healthClient = { caFile: pki.ca, certFile: pki.client.cert, keyFile: pki.client.key };
  [tlsEtcd, authEtcd, plainEtcd] = await Promise.all([
    startTestEtcd({ tls: { certFile: pki.server.cert, keyFile: pki.server.key, clientCaFile: pki.ca, healthClient } }),
    startTestEtcd({ tls: { certFile: pki.server.cert, keyFile: pki.server.key, healthClient: { caFile: pki.ca } } }),
    startTestEtcd(),
  ]);
  // Auth on: root (the root role, as etcd requires), then egw's roles, then `auth enable`.
  const admin = new Etcd3({ hosts: `https://${authEtcd.endpoint}`, credentials: { rootCertificate: readFileSync(pki.ca) } });
  try {
    await admin.role('root').create();
    await admin.user('root').create(ROOT_PW);
    await admin.user('root').addRole('root');
    await applyRoles(admin, roles, (u) => `${u}-pw`);
    // A role narrower than egw's: Nodes only (a watch of several kinds covers the whole prefix).
    const nodes = { permission: 'read', key: '/egw/Node/', prefix: true } as const;
    // The key egw reads the revision from (`<prefix>\0`, never a resource): with it, open succeeds.
    const revisionKey = { permission: 'read', key: '/egw/\0', prefix: false } as const;
    await applyRoles(admin, [
      { program: 'gateway', role: 'narrow', user: 'narrow', writes: [], permissions: [nodes] },
      { program: 'gateway', role: 'narrow2', user: 'narrow2', writes: [], permissions: [nodes, revisionKey] },
    ], () => 'narrow-pw');
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
  writeFileSync(join(pwDir, 'root.pw'), `${ROOT_PW}\n`);
  for (const r of roles) writeFileSync(join(pwDir, `${r.user}.pw`), `${r.user}-pw\n`);
  writeFileSync(join(pwDir, 'narrow.pw'), 'narrow-pw\n');
  writeFileSync(join(pwDir, 'narrow2.pw'), 'narrow-pw\n');
  writeFileSync(join(pwDir, 'wrong.pw'), 'not-the-password\n');
}, 60_000);

afterAll(async () => {
  await Promise.all([tlsEtcd?.cleanup(), authEtcd?.cleanup(), plainEtcd?.cleanup()]);
  pki?.cleanup();
});

/** The rejection of a promise (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<EgwError> {
  const r: unknown = await p.then(
    async (store) => {
      await (store as Datastore).close();
      return new Error('expected a failure, the store opened');
    },
    (e: unknown) => e,
  );
  if (!isEgwError(r)) throw r instanceof Error ? r : new Error(String(r));
  return r;
}

const q = (o: Record<string, string>): string => new URLSearchParams(o).toString();
const tlsUrl = (o: Record<string, string>): string => `etcds://${tlsEtcd.endpoint}?${q(o)}`;
const authUrl = (user: string, pwFile = join(pwDir, `${user}.pw`)): string =>
  `etcds://${authEtcd.endpoint}?${q({ ca: pki.ca, user, 'password-file': pwFile })}`;
const noWaitClock = (): Clock & { waits: number[] } => {
  const waits: number[] = [];
  return { waits, now: () => 0, sleep: (ms: number) => (waits.push(ms), Promise.resolve()) };
};

describe('etcd over TLS with client certificates', () => {
  it('refuses a plain etcd:// client with a terminal error that says to use etcds:// (no wait loop)', async () => {
    const err = await rejection(openDatastore(`etcd://${tlsEtcd.endpoint}`, { env: {} }));
    expect(err.code).toBe('DatastoreUnavailable');
    expect(err.retry).toBe('terminal');
    expect(err.details['reason']).toBe('TlsMismatch');
    expect(err.describe()).toMatch(/speaks TLS but the datastore URL is plain etcd:\/\/.*use etcds:\/\//);
    const clock = noWaitClock();
    await expect(openDatastoreWaiting(`etcd://${tlsEtcd.endpoint}`, { env: {}, clock })).rejects.toMatchObject({ retry: 'terminal' });
    expect(clock.waits).toEqual([]);
  });

  it('with the CA and a client certificate, put, get, list and watch work end to end (URL query and environment)', async () => {
    const a = await openDatastore(tlsUrl({ ca: pki.ca, cert: pki.client.cert, key: pki.client.key }), { env: {} });
    const b = await openDatastore(`etcds://${tlsEtcd.endpoint}`, {
      env: { EGW_ETCD_CA_FILE: pki.ca, EGW_ETCD_CERT_FILE: pki.client.cert, EGW_ETCD_KEY_FILE: pki.client.key },
    });
    const ac = new AbortController();
    try {
      expect(a.location).toBe(`etcds://${tlsEtcd.endpoint}`);
      const from = await a.currentRevision();
      const seen: WatchEvent[] = [];
      const watching = (async () => {
        for await (const ev of a.watch({ afterRevision: from, kinds: ['Node'], signal: ac.signal })) {
          seen.push(ev);
          if (seen.length === 2) return;
        }
      })();
      await b.commit([{ op: 'create', key: { kind: 'Node', name: 'n1' }, value: { n: 1 } }]);
      await b.commit([{ op: 'put', key: { kind: 'Node', name: 'n1' }, value: { n: 2 } }]);
      expect((await a.get({ kind: 'Node', name: 'n1' }))?.value).toEqual({ n: 2 });
      expect((await a.list('Node')).items.map((i) => i.key.name)).toEqual(['n1']);
      await watching;
      expect(seen.map((e) => (e.type === 'put' ? e.value['n'] : e.type))).toEqual([1, 2]);
    } finally {
      ac.abort();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a CA that did not sign the server certificate fails clearly, naming the CA file', async () => {
    const err = await rejection(openDatastore(tlsUrl({ ca: pki.otherCa, cert: pki.client.cert, key: pki.client.key }), { env: {} }));
    expect(err.retry).toBe('terminal');
    expect(err.details['reason']).toBe('TlsRejected');
    expect(err.message).toMatch(/certificate of etcd at .* is not trusted: unable to verify/);
    expect(err.message).toContain(pki.otherCa);
  });

  it('no client certificate, or one etcd does not trust, fails clearly', async () => {
    const none = await rejection(openDatastore(tlsUrl({ ca: pki.ca }), { env: {} }));
    expect(none.retry).toBe('terminal');
    expect(none.describe()).toMatch(/requires a client certificate.*EGW_ETCD_CERT_FILE/);
    const foreign = await rejection(openDatastore(tlsUrl({ ca: pki.ca, cert: pki.otherClient.cert, key: pki.otherClient.key }), { env: {} }));
    expect(foreign.retry).toBe('terminal');
    expect(foreign.message).toContain(`rejected the client certificate ${pki.otherClient.cert}`);
  });

  it('etcds:// at a plain etcd fails clearly', async () => {
    const err = await rejection(openDatastore(`etcds://${plainEtcd.endpoint}?ca=${encodeURIComponent(pki.ca)}`, { env: {} }));
    expect(err.retry).toBe('terminal');
    expect(err.details['reason']).toBe('TlsMismatch');
    expect(err.message).toMatch(/speaks plain HTTP but the datastore URL is etcds:\/\//);
  });

  it('an unreachable etcds:// etcd is still waited for (item 5), not a configuration error', async () => {
    const port = await freePort();
    const clock = noWaitClock();
    const abort = new AbortController();
    let attempts = 0;
    const p = openDatastoreWaiting(`etcds://127.0.0.1:${port}?ca=${encodeURIComponent(pki.ca)}`, {
      env: {},
      clock: { now: () => 0, sleep: (ms) => (clock.waits.push(ms), ++attempts === 2 && abort.abort(), Promise.resolve()) },
      signal: abort.signal,
      etcd: { requestTimeoutMs: 1_000 },
    });
    const err = await rejection(p);
    expect(err.code).toBe('DatastoreUnavailable');
    expect(err.retry).toBe('retry');
    expect(clock.waits).toHaveLength(2);
  });

  it('a missing, empty or non-PEM file and inconsistent settings are InvalidInput naming the file and setting, before dialling', async () => {
    const cases: [string, Record<string, string | undefined>, RegExp][] = [
      [tlsUrl({ ca: '/nonexistent/ca.pem' }), {}, /cannot read \/nonexistent\/ca.pem, the PEM CA bundle .* EGW_ETCD_CA_FILE/],
      [`etcds://127.0.0.1:1`, { EGW_ETCD_CA_FILE: join(pwDir, 'root.pw') }, /root.pw, the PEM CA bundle .* is not PEM/],
      [tlsUrl({ ca: pki.ca, cert: pki.client.cert }), {}, /needs both a certificate and a key: EGW_ETCD_KEY_FILE/],
      [`etcd://127.0.0.1:1`, { EGW_ETCD_CA_FILE: pki.ca }, /TLS settings \(EGW_ETCD_CA_FILE.*plain etcd:\/\//],
      [`etcds://127.0.0.1:1`, { EGW_ETCD_USERNAME: 'egw-agent' }, /needs a user and a password file: EGW_ETCD_PASSWORD_FILE/],
      [authUrl('egw-agent', '/nonexistent/pw'), {}, /cannot read \/nonexistent\/pw, the file holding the etcd user's password/],
    ];
    for (const [spec, env, message] of cases) {
      const clock = noWaitClock();
      const err = await rejection(openDatastoreWaiting(spec, { env, clock }));
      expect(err.code, spec).toBe('InvalidInput');
      expect(err.retry, spec).toBe('terminal');
      expect(err.message, spec).toMatch(message);
      expect(clock.waits, spec).toEqual([]);
    }
  });

  it('the CLI exits at once with the reason for a wrong CA (the --etcd-* flags set the settings)', () => {
    const started = Date.now();
    const r = spawnSync(process.execPath, [EGW_CLI, '--datastore', `etcds://${tlsEtcd.endpoint}`, '--etcd-ca-file', pki.otherCa, '--etcd-cert-file', pki.client.cert, '--etcd-key-file', pki.client.key, 'get', 'pods'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: datastore etcds:\/\/.* is not trusted: unable to verify the first certificate/m);
    expect(Date.now() - started).toBeLessThan(30_000);
    const ok = spawnSync(process.execPath, [EGW_CLI, '--datastore', `etcds://${tlsEtcd.endpoint}`, '--etcd-ca-file', pki.ca, '--etcd-cert-file', pki.client.cert, '--etcd-key-file', pki.client.key, 'get', 'pods'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 60_000,
    });
    expect(ok.status, ok.stderr).toBe(0);
  });

  // Last in this block: it turns authentication on in this etcd.
  it("with authentication on, a user named by the client certificate's CN needs no password (egw render etcd-roles --no-password)", async () => {
    const admin = new Etcd3({
      hosts: `https://${tlsEtcd.endpoint}`,
      credentials: { rootCertificate: readFileSync(pki.ca), certChain: readFileSync(pki.client.cert), privateKey: readFileSync(pki.client.key) },
    });
    try {
      await admin.role('root').create();
      await admin.user('root').create(ROOT_PW);
      await admin.user('root').addRole('root');
      const cni = roles.find((r) => r.program === 'cni')!;
      await admin.role('cn-cni').create();
      for (const p of cni.permissions) await admin.role('cn-cni').grant({ permission: p.permission === 'read' ? 'Read' : 'Readwrite', range: admin.range({ prefix: p.key }) });
      await admin.auth.userAdd({ name: 'egw-client', options: { no_password: true } }); // the CN of pki.client
      await admin.user('egw-client').addRole('cn-cni');
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }
    const store = await openDatastore(tlsUrl({ ca: pki.ca, cert: pki.client.cert, key: pki.client.key }), { env: {} });
    try {
      await store.commit([{ op: 'put', key: { kind: 'IPAMBlock', namespace: 'p', name: 'b1' }, value: { ok: true } }]);
      const err: unknown = await store.commit([{ op: 'put', key: { kind: 'Pod', namespace: 'p', name: 'x' }, value: {} }]).catch((e: unknown) => e);
      expect((err as EgwError).details['reason']).toBe('Forbidden');
      expect((err as EgwError).message).toContain(`the etcd user named by the client certificate ${pki.client.cert} may not do this`);
    } finally {
      await store.close();
    }
  });
});

describe('etcd authentication and one least-privilege role per program', () => {
  it('no user, or a wrong password, fails clearly and at once', async () => {
    const none = await rejection(openDatastore(`etcds://${authEtcd.endpoint}?ca=${encodeURIComponent(pki.ca)}`, { env: {} }));
    expect(none.retry).toBe('terminal');
    expect(none.details['reason']).toBe('Unauthenticated');
    expect(none.describe()).toMatch(/authentication enabled and no etcd user was given.*EGW_ETCD_USERNAME/);
    const clock = noWaitClock();
    const wrong = await rejection(openDatastoreWaiting(authUrl('egw-gateway', join(pwDir, 'wrong.pw')), { env: {}, clock }));
    expect(wrong.retry).toBe('terminal');
    expect(wrong.describe()).toMatch(/etcd refused the user "egw-gateway": wrong user name or password.*wrong\.pw/);
    expect(clock.waits).toEqual([]);
  });

  it('a long-running program (egw controller) stops at once on a wrong password instead of waiting', () => {
    const r = spawnSync(process.execPath, [EGW_CLI, '--datastore', authUrl('egw-controller', join(pwDir, 'wrong.pw')), 'controller', '--no-leader-elect'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '' },
      timeout: 60_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error: datastore etcds:\/\/.*etcd refused the user "egw-controller": wrong user name or password/);
    expect(r.stderr).not.toContain('not-the-password');
    expect(r.stderr).not.toMatch(/datastore unreachable: waiting/);
  });

  it("the gateway's role reads what the gateway reads (Nodes, FelixConfiguration, a watch of both) and can write nothing", async () => {
    const admin = await openDatastore(authUrl('root', join(pwDir, 'root.pw')), { env: {} });
    const gw = await openDatastore(authUrl('egw-gateway'), { env: {} });
    const informer = new Informer({ store: gw }, { kinds: ['Node', 'FelixConfiguration'], backoffInitialMs: 50, backoffMaxMs: 200 }, {});
    try {
      await admin.commit([
        { op: 'put', key: { kind: 'Node', name: 'gw-n1' }, value: { n: 1 } },
        { op: 'put', key: { kind: 'FelixConfiguration', name: 'default' }, value: { f: 1 } },
      ]);
      expect((await gw.list('Node')).items.map((i) => i.key.name)).toContain('gw-n1');
      expect((await gw.get({ kind: 'FelixConfiguration', name: 'default' }))?.value).toEqual({ f: 1 });
      informer.start();
      await informer.waitForSync();
      await admin.commit([{ op: 'put', key: { kind: 'Node', name: 'gw-n2' }, value: { n: 2 } }]);
      for (let i = 0; i < 200 && informer.get({ kind: 'Node', name: 'gw-n2' }) === undefined; i++) await new Promise((r) => setTimeout(r, 25));
      expect(informer.get({ kind: 'Node', name: 'gw-n2' })?.value).toEqual({ n: 2 });
      for (const key of [{ kind: 'Pod', namespace: 'default', name: 'victim' }, { kind: 'Node', name: 'gw-n1' }, { kind: 'IPAMBlock', namespace: '10.0.0.0-16', name: 'b' }]) {
        const err = await gw.commit([{ op: 'put', key, value: { evil: true } }]).then(() => undefined, (e: unknown) => e);
        expect(isEgwError(err, 'DatastoreUnavailable'), key.kind).toBe(true);
        expect((err as EgwError).retry).toBe('terminal');
        expect((err as EgwError).details['reason']).toBe('Forbidden');
        expect((err as EgwError).message).toMatch(/commit failed: permission denied: the etcd user "egw-gateway" may not do this/);
      }
      expect((await admin.get({ kind: 'Pod', namespace: 'default', name: 'victim' }))).toBeUndefined();
      expect((await admin.get({ kind: 'Node', name: 'gw-n1' }))?.value).toEqual({ n: 1 });
    } finally {
      await informer.stop();
      await Promise.all([gw.close(), admin.close()]);
    }
  });

  it("the CNI plugin's role writes IPAM records and nothing else; the agent's and the controller's write only their kinds", async () => {
    const stores = await Promise.all(['egw-cni', 'egw-agent', 'egw-controller'].map((u) => openDatastore(authUrl(u), { env: {} })));
    const [cni, agent, controller] = stores as [Datastore, Datastore, Datastore];
    const writes = async (store: Datastore, kind: string): Promise<boolean> => {
      try {
        await store.commit([{ op: 'put', key: { kind, namespace: 'ns', name: `${kind.toLowerCase()}-x` }, value: { by: store.location } }]);
        return true;
      } catch (e) {
        if (isEgwError(e, 'DatastoreUnavailable') && e.details['reason'] === 'Forbidden') return false;
        throw e;
      }
    };
    try {
      const table: [Datastore, string, boolean][] = [
        [cni, 'IPAMBlock', true], [cni, 'IPAMHandle', true], [cni, 'BlockAffinity', true],
        [cni, 'Pod', false], [cni, 'IPPool', false], [cni, 'EgressGatewayPolicy', false], [cni, 'Node', false],
        [agent, 'EgressNodeStatus', true], [agent, 'EgressNextHops', true], [agent, 'Pod', true], [agent, 'Node', true],
        [agent, 'IPPool', false], [agent, 'EgressGatewayPolicy', false], [agent, 'Namespace', false], [agent, 'Lease', false],
        [controller, 'Lease', true], [controller, 'Pod', true], [controller, 'EgressGateway', true], [controller, 'AWSSubnet', true],
        [controller, 'EgressGatewayPolicy', false], [controller, 'FelixConfiguration', false], [controller, 'Namespace', false],
      ];
      const got = await Promise.all(table.map(async ([s, kind]) => writes(s, kind)));
      expect(got).toEqual(table.map(([, , allowed]) => allowed));
      // Reads are the whole prefix (the ordered watch needs it): the CNI plugin reads pools and pods.
      expect((await cni.list('IPPool')).items).toEqual([]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('a role that does not cover the prefix is refused clearly: at open, and a watch ends with Forbidden instead of retrying in silence', async () => {
    const atOpen = await rejection(openDatastore(authUrl('narrow'), { env: {} }));
    expect(atOpen.retry).toBe('terminal');
    expect(atOpen.details['reason']).toBe('Forbidden');
    expect(atOpen.describe()).toMatch(/read the revision failed: permission denied: the etcd user "narrow".*egw render etcd-roles/);
    const narrow = await openDatastore(authUrl('narrow2'), { env: {} });
    try {
      await narrow.list('Node');
      const err: unknown = await (async () => {
        for await (const _ of narrow.watch({ afterRevision: 0, kinds: ['Node', 'Pod'] })) return undefined;
        return undefined;
      })().catch((e: unknown) => e);
      expect(isEgwError(err, 'DatastoreUnavailable')).toBe(true);
      expect((err as EgwError).retry).toBe('terminal');
      expect((err as EgwError).details['reason']).toBe('Forbidden');
      expect((err as EgwError).describe()).toMatch(/permission denied.*read permission on all of \/egw\//);
    } finally {
      await narrow.close();
    }
  });

  it('the script form grants the same permissions with etcdctl, idempotently', () => {
    const script = renderEtcdRolesScript(roles);
    expect(script).toContain("etcdctl role grant-permission --prefix=true 'egw-gateway' read '/egw/'");
    expect(script).not.toMatch(/'egw-gateway' readwrite/);
    expect(script).toContain("etcdctl role grant-permission --prefix=true 'egw-cni' readwrite '/egw/IPAMBlock/'");
    expect(script).toContain(`etcdctl user get 'egw-cni' >/dev/null 2>&1 || etcdctl user add 'egw-cni' --interactive=false < "$EGW_ETCD_PASSWORD_DIR/egw-cni"`);
    expect(renderEtcdRolesScript(roles, { noPassword: true })).toContain("etcdctl user add 'egw-agent' --no-password");
    expect(roles.find((r) => r.program === 'gateway')?.writes).toEqual([]);
    expect(roles.find((r) => r.program === 'cni')?.writes).toEqual(['BlockAffinity', 'FullBlockAffinity', 'IPAMBlock', 'IPAMGCMark', 'IPAMHandle']);
    // The CLI prints the same roles (the JSON these tests applied), for another prefix too.
    const cli = spawnSync(process.execPath, [EGW_CLI, 'render', 'etcd-roles', '--prefix', '/team-a/', '-o', 'json'], { encoding: 'utf8', timeout: 60_000 });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(etcdRoles('/team-a/'));
    const bad = spawnSync(process.execPath, [EGW_CLI, 'render', 'etcd-roles', '--prefix', 'no-slash'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
  });
});
