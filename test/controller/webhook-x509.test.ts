/**
 * The webhook's self-made CA and serving certificate: parsed and verified by node:crypto and by openssl
 * (the same checks Go's crypto/x509 makes: chain, CA flag, key usage, subjectAltName, serverAuth).
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { issueWebhookTls, webhookTlsCovers } from '../../src/controller/webhook/x509.js';

const now = new Date('2026-12-07T12:00:00Z');
const req = { dnsNames: ['egw-webhook.egw-system.svc', 'egw-webhook.egw-system.svc.cluster.local'], ipAddresses: ['127.0.0.1'], now };

describe('issueWebhookTls', () => {
  const tls = issueWebhookTls(req);

  it('makes a CA and a serving certificate it signed, covering every name and address', () => {
    const ca = new X509Certificate(tls.caPem);
    const cert = new X509Certificate(tls.certPem);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(ca.subject).toBe('CN=egw-webhook-ca');
    expect(cert.issuer).toBe('CN=egw-webhook-ca');
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:egw-webhook.egw-system.svc, DNS:egw-webhook.egw-system.svc.cluster.local, IP Address:127.0.0.1');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new Date(cert.validFrom).getTime()).toBe(now.getTime() - 3_600_000);
    expect(new Date(cert.validTo).getTime()).toBe(now.getTime() + 3650 * 86_400_000);
  });

  it('openssl verifies the chain for server use, with the host and the address', () => {
    const dir = mkdtempSync(join(tmpdir(), 'egw-x509-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), tls.caPem);
      writeFileSync(join(dir, 'cert.pem'), tls.certPem);
      const at = String(Math.floor(now.getTime() / 1000));
      const base = ['verify', '-attime', at, '-purpose', 'sslserver', '-x509_strict', '-CAfile', join(dir, 'ca.pem')];
      for (const extra of [['-verify_hostname', 'egw-webhook.egw-system.svc'], ['-verify_ip', '127.0.0.1']]) {
        const r = spawnSync('openssl', [...base, ...extra, join(dir, 'cert.pem')], { encoding: 'utf8' });
        expect(r.stdout + r.stderr).toContain(': OK');
        expect(r.status).toBe(0);
      }
      const wrong = spawnSync('openssl', [...base, '-verify_ip', '10.0.0.1', join(dir, 'cert.pem')], { encoding: 'utf8' });
      expect(wrong.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('webhookTlsCovers: reusable only for the names asked, while valid for long enough, with the matching key', () => {
    expect(webhookTlsCovers(tls, req)).toBe(true);
    expect(webhookTlsCovers(tls, { ...req, ipAddresses: ['10.0.0.1'] })).toBe(false);
    expect(webhookTlsCovers(tls, { ...req, dnsNames: ['other.egw-system.svc'] })).toBe(false);
    expect(webhookTlsCovers(tls, { ...req, now: new Date(now.getTime() + 3640 * 86_400_000) })).toBe(false);
    expect(webhookTlsCovers({ ...tls, keyPem: issueWebhookTls(req).keyPem }, req)).toBe(false);
    expect(webhookTlsCovers({ ...tls, caPem: issueWebhookTls(req).caPem }, req)).toBe(false);
    expect(webhookTlsCovers({ ...tls, certPem: 'garbage' }, req)).toBe(false);
  });

  it('each call makes new keys; refuses an empty request and a non-IPv4 address', () => {
    expect(issueWebhookTls(req).keyPem).not.toBe(tls.keyPem);
    expect(() => issueWebhookTls({ dnsNames: [], ipAddresses: [], now })).toThrow(/at least one DNS name or IP address/);
    expect(() => issueWebhookTls({ dnsNames: [], ipAddresses: ['::1'], now })).toThrow(/not an IPv4 address/);
  });
});
