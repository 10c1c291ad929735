/**
 * A self-signed CA and one serving certificate for the admission webhook, made with node:crypto alone.
 *
 * node:crypto parses and verifies X.509 (`X509Certificate`) but cannot issue it; issuing only needs the
 * DER encoding of a TBSCertificate and one ECDSA signature, so the few ASN.1 types that takes are encoded
 * here instead of adding a dependency (node-forge, selfsigned). Keys are ECDSA P-256, signatures
 * ecdsa-with-SHA256: what Go's crypto/x509 (kube-apiserver) verifies.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { EgwError } from '../../platform/errors.js';

/** PEM texts of the CA certificate and of the serving certificate with its private key. */
export interface WebhookTls {
  /** The CA certificate: what the ValidatingWebhookConfiguration's `caBundle` carries. */
  readonly caPem: string;
  /** The serving certificate, signed by the CA. */
  readonly certPem: string;
  /** The serving certificate's private key (PKCS#8). */
  readonly keyPem: string;
}

/** What the serving certificate must cover. */
export interface WebhookTlsRequest {
  /** DNS names (subjectAltName dNSName); e.g. `egw-webhook.egw-system.svc`. */
  readonly dnsNames: readonly string[];
  /** IPv4 addresses (subjectAltName iPAddress); e.g. `127.0.0.1` in tests. */
  readonly ipAddresses: readonly string[];
  /** Start of validity (the certificates are back-dated one hour for clock skew). */
  readonly now: Date;
  /** Validity in days. Default 3650: rotation is by restart (docs/kubernetes.md). */
  readonly days?: number;
}

// --- DER ------------------------------------------------------------------------------------------
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n > 0xffff) throw new Error('DER value too long');
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer) => tlv(0xa0 + n, inner);

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && (b[i + 1]! & 0x80) === 0) i++;
  const v = b.subarray(i);
  return tlv(0x02, (v[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let v = arc >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

/** The key identifier of a public key: SHA-1 of its SubjectPublicKeyInfo (RFC 5280 4.2.1.2 allows any unique value). */
const keyId = (k: KeyObject) => createHash('sha1').update(k.export({ format: 'der', type: 'spki' })).digest();
/** subjectKeyIdentifier and authorityKeyIdentifier: strict verifiers (openssl -x509_strict) require both. */
const keyIds = (subject: KeyObject, issuer: KeyObject) => [
  extension('2.5.29.14', false, octets(keyId(subject))),
  extension('2.5.29.35', false, seq(tlv(0x80, keyId(issuer)))),
];

function ipBytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new EgwError('InvalidInput', `webhook certificate address "${ip}" is not an IPv4 address`, { hint: 'give an IPv4 address or a DNS name' });
  return Buffer.from(ip.split('.').map(Number));
}

interface Issue {
  readonly subject: string;
  readonly issuer: string;
  readonly publicKey: KeyObject;
  readonly signer: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly extensions: Buffer[];
}

function issue(i: Issue): string {
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f; // positive
  const spki = i.publicKey.export({ format: 'der', type: 'spki' });
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    ECDSA_SHA256,
    name(i.issuer),
    seq(time(i.notBefore), time(i.notAfter)),
    name(i.subject),
    spki,
    explicit(3, seq(...i.extensions)),
  );
  const der = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, i.signer)));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Makes a fresh CA (CN `egw-webhook-ca`, CA:true, keyCertSign) and a serving certificate signed by it
 * (CN the first DNS name or address, serverAuth, subjectAltName = every name and address asked for: the
 * API server checks only the subjectAltName). Random keys and serials: each call gives new material.
 * Throws `InvalidInput` when no name or address is given or an address is not IPv4.
 */
export function issueWebhookTls(req: WebhookTlsRequest): WebhookTls {
  if (req.dnsNames.length === 0 && req.ipAddresses.length === 0) {
    throw new EgwError('InvalidInput', 'the webhook certificate needs at least one DNS name or IP address', { hint: 'give --webhook-url or --webhook-service' });
  }
  const notBefore = new Date(req.now.getTime() - 3_600_000);
  const notAfter = new Date(req.now.getTime() + (req.days ?? 3650) * 86_400_000);
  const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const leaf = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caName = 'egw-webhook-ca';
  const caPem = issue({
    subject: caName,
    issuer: caName,
    publicKey: ca.publicKey,
    signer: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension('2.5.29.19', true, seq(bool(true))), // basicConstraints CA:TRUE
      extension('2.5.29.15', true, bits(Buffer.from([0x86]), 1)), // keyUsage digitalSignature, keyCertSign, cRLSign
      ...keyIds(ca.publicKey, ca.publicKey),
    ],
  });
  const san = seq(...req.dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), ...req.ipAddresses.map((ip) => tlv(0x87, ipBytes(ip))));
  const certPem = issue({
    subject: req.dnsNames[0] ?? req.ipAddresses[0]!,
    issuer: caName,
    publicKey: leaf.publicKey,
    signer: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension('2.5.29.19', true, seq()), // basicConstraints CA:FALSE
      extension('2.5.29.15', true, bits(Buffer.from([0x80]), 7)), // keyUsage digitalSignature
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage serverAuth
      extension('2.5.29.17', false, san),
      ...keyIds(leaf.publicKey, ca.publicKey),
    ],
  });
  const keyPem = leaf.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { caPem, certPem, keyPem };
}

/**
 * True when `tls` is usable for `req` at `req.now`: it parses, the serving certificate is signed by the CA,
 * matches its key, covers every name and address, and stays valid for at least `minDays` more days.
 * Used to decide whether stored material can be reused. Never throws.
 */
export function webhookTlsCovers(tls: WebhookTls, req: WebhookTlsRequest, minDays = 30): boolean {
  try {
    const ca = new X509Certificate(tls.caPem);
    const cert = new X509Certificate(tls.certPem);
    if (!cert.verify(ca.publicKey) || !cert.checkPrivateKey(createPrivateKey(tls.keyPem))) return false;
    const horizon = req.now.getTime() + minDays * 86_400_000;
    for (const c of [ca, cert]) if (new Date(c.validTo).getTime() < horizon || new Date(c.validFrom).getTime() > req.now.getTime()) return false;
    return req.dnsNames.every((d) => cert.checkHost(d, { wildcards: false }) === d) && req.ipAddresses.every((ip) => cert.checkIP(ip) === ip);
  } catch {
    return false;
  }
}
