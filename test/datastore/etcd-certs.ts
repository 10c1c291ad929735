/**
 * Throwaway PKI for the etcd TLS tests, made with `openssl` in a temp folder: a CA, a server certificate
 * for 127.0.0.1, a client certificate, and a second CA with a client certificate of its own (the "wrong"
 * ones). ECDSA P-256, valid one day. `cleanup()` removes the folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  otherCa: string;
  otherClient: { cert: string; key: string };
  cleanup(): void;
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'egw-test-pki-'));
  const f = (name: string): string => join(dir, name);
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    for (const ca of ['ca', 'other-ca']) ossl('req', '-x509', ...ec, '-keyout', f(`${ca}.key`), '-out', f(`${ca}.crt`), '-days', '1', '-subj', `/CN=egw test ${ca}`);
    const leaf = (name: string, ca: string, cn: string, ext: string): void => {
      ossl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
      writeFileSync(f(`${name}.ext`), ext);
      ossl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
    };
    leaf('server', 'ca', 'etcd', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    leaf('client', 'ca', 'egw-client', 'extendedKeyUsage=clientAuth\n');
    leaf('other-client', 'other-ca', 'egw-client', 'extendedKeyUsage=clientAuth\n');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    ca: f('ca.crt'),
    server: { cert: f('server.crt'), key: f('server.key') },
    client: { cert: f('client.crt'), key: f('client.key') },
    otherCa: f('other-ca.crt'),
    otherClient: { cert: f('other-client.crt'), key: f('other-client.key') },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
