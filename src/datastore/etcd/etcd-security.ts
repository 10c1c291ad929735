/**
 * How egw's programs prove themselves to etcd and check that they talk to the right etcd: TLS (a CA bundle,
 * a client certificate and key) and etcd's own user/password authentication (issue 11, item 6).
 *
 * The settings come from the datastore URL's query (`etcds://h:2379?ca=/etc/egw/ca.pem&user=agent…`), else
 * from the environment (`EGW_ETCD_CA_FILE`, …; the CLI's `--etcd-*` flags set these). The URL wins so that a
 * CNI configuration, which only has one `datastore` string, can carry everything. The password is only ever
 * read from a file: never from a URL, an environment variable or a flag, which end up in process listings,
 * shell histories and logs.
 */
import { readFileSync } from 'node:fs';
import { EgwError, errorMessage } from '../../platform/errors.js';

/** The security settings of an etcd datastore: file paths and a user name (never a secret itself). */
export interface EtcdSecuritySettings {
  /** PEM CA bundle that signs etcd's server certificate (TLS only; default: the system's roots). */
  caFile?: string;
  /** PEM client certificate (chain) and its private key, for etcd's `--client-cert-auth` (TLS only). */
  certFile?: string;
  keyFile?: string;
  /** etcd user (etcd's `auth enable`) and the file holding its password (one line). */
  username?: string;
  passwordFile?: string;
}

/** Each setting: its URL query parameter, its environment variable and its CLI flag. */
export const ETCD_SETTINGS: readonly { field: keyof EtcdSecuritySettings; query: string; env: string; flag: string; what: string }[] = [
  { field: 'caFile', query: 'ca', env: 'EGW_ETCD_CA_FILE', flag: '--etcd-ca-file', what: "PEM CA bundle that signs etcd's server certificate" },
  { field: 'certFile', query: 'cert', env: 'EGW_ETCD_CERT_FILE', flag: '--etcd-cert-file', what: 'PEM client certificate for etcd' },
  { field: 'keyFile', query: 'key', env: 'EGW_ETCD_KEY_FILE', flag: '--etcd-key-file', what: "the client certificate's PEM private key" },
  { field: 'username', query: 'user', env: 'EGW_ETCD_USERNAME', flag: '--etcd-username', what: 'etcd user (etcd authentication)' },
  { field: 'passwordFile', query: 'password-file', env: 'EGW_ETCD_PASSWORD_FILE', flag: '--etcd-password-file', what: "file holding the etcd user's password" },
];

/** What {@link EtcdDatastore} is given: the material read from the files, and where it came from (for messages). */
export interface EtcdSecurity {
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; caFile?: string; certFile?: string; keyFile?: string };
  auth?: { username: string; password: string; passwordFile: string };
}

/**
 * Reads the settings of the URL's query (pure): unknown parameters and repeated ones are `InvalidInput`.
 * `describe` names the datastore in messages.
 */
export function parseEtcdQuery(query: string, describe: string): EtcdSecuritySettings {
  const out: EtcdSecuritySettings = {};
  if (query === '') return out;
  const seen = new Set<string>();
  for (const [name, value] of new URLSearchParams(query)) {
    const s = ETCD_SETTINGS.find((x) => x.query === name);
    if (s === undefined) {
      throw new EgwError('InvalidInput', `invalid datastore ${describe}: unknown etcd option ${JSON.stringify(name)}`, {
        hint: `the options are ${ETCD_SETTINGS.map((x) => x.query).join(', ')} (the password only as a file: password-file=PATH)`,
      });
    }
    if (seen.has(name)) throw new EgwError('InvalidInput', `invalid datastore ${describe}: the etcd option ${name} is given twice`);
    if (value === '') throw new EgwError('InvalidInput', `invalid datastore ${describe}: the etcd option ${name} is empty`);
    seen.add(name);
    out[s.field] = value;
  }
  return out;
}

/**
 * The settings in force: the URL's, else the environment's, checked for consistency (pure). Throws
 * `InvalidInput` naming the setting for: TLS files with a plain `etcd://` URL (the operator meant TLS: fail
 * closed rather than send everything in clear), a certificate without its key or the other way round, a
 * user without a password file or the other way round.
 */
export function etcdSettings(fromUrl: EtcdSecuritySettings, tls: boolean, env: Record<string, string | undefined>): EtcdSecuritySettings {
  const out: EtcdSecuritySettings = {};
  for (const s of ETCD_SETTINGS) {
    const v = fromUrl[s.field] ?? (env[s.env] !== undefined && env[s.env] !== '' ? env[s.env] : undefined);
    if (v !== undefined) out[s.field] = v;
  }
  const named = (f: keyof EtcdSecuritySettings): string => {
    const s = ETCD_SETTINGS.find((x) => x.field === f);
    return s === undefined ? f : `${s.env} / ?${s.query}=`;
  };
  if (!tls) {
    const given = (['caFile', 'certFile', 'keyFile'] as const).filter((f) => out[f] !== undefined);
    if (given.length > 0) {
      throw new EgwError('InvalidInput', `TLS settings (${given.map(named).join(', ')}) are given but the datastore is a plain etcd:// URL`, {
        hint: 'use etcds://HOST:PORT for TLS, or remove the TLS settings',
      });
    }
  }
  if ((out.certFile === undefined) !== (out.keyFile === undefined)) {
    const missing = out.certFile === undefined ? 'certFile' : 'keyFile';
    throw new EgwError('InvalidInput', `an etcd client certificate needs both a certificate and a key: ${named(missing)} is not set`, {
      hint: 'set EGW_ETCD_CERT_FILE and EGW_ETCD_KEY_FILE together (or ?cert=…&key=…)',
    });
  }
  if ((out.username === undefined) !== (out.passwordFile === undefined)) {
    const missing = out.username === undefined ? 'username' : 'passwordFile';
    throw new EgwError('InvalidInput', `etcd authentication needs a user and a password file: ${named(missing)} is not set`, {
      hint: 'set EGW_ETCD_USERNAME and EGW_ETCD_PASSWORD_FILE together (or ?user=…&password-file=…)',
    });
  }
  return out;
}

/**
 * Reads the files the settings name. A missing or unreadable file, an empty one, a file that is not PEM
 * where PEM is expected, is `InvalidInput` naming the file and its setting: a bad configuration, which
 * stops a program at once instead of making it wait (issue 11, items 5 and 6).
 */
export function loadEtcdSecurity(settings: EtcdSecuritySettings, tls: boolean): EtcdSecurity {
  const read = (field: keyof EtcdSecuritySettings, path: string): Buffer => {
    const s = ETCD_SETTINGS.find((x) => x.field === field);
    const setting = s === undefined ? field : `${s.env} (?${s.query}=, ${s.flag})`;
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new EgwError('InvalidInput', `cannot read ${path}, the ${s?.what ?? field} given by ${setting}: ${errorMessage(err)}`, {
        hint: 'check the path and that this user may read the file',
        details: { setting: s?.env, file: path },
      });
    }
    if (data.toString('utf8').trim() === '') {
      throw new EgwError('InvalidInput', `${path}, the ${s?.what ?? field} given by ${setting}, is empty`, { details: { setting: s?.env, file: path } });
    }
    if (field !== 'passwordFile' && !data.toString('utf8').includes('-----BEGIN ')) {
      throw new EgwError('InvalidInput', `${path}, the ${s?.what ?? field} given by ${setting}, is not PEM (no "-----BEGIN" line)`, {
        hint: 'give a PEM file',
        details: { setting: s?.env, file: path },
      });
    }
    return data;
  };
  const out: EtcdSecurity = {};
  if (tls) {
    out.tls = {
      ...(settings.caFile === undefined ? {} : { ca: read('caFile', settings.caFile), caFile: settings.caFile }),
      ...(settings.certFile === undefined ? {} : { cert: read('certFile', settings.certFile), certFile: settings.certFile }),
      ...(settings.keyFile === undefined ? {} : { key: read('keyFile', settings.keyFile), keyFile: settings.keyFile }),
    };
  }
  if (settings.username !== undefined && settings.passwordFile !== undefined) {
    // One line: a trailing newline (echo pw > file) is not part of the password.
    const password = read('passwordFile', settings.passwordFile).toString('utf8').replace(/\r?\n$/, '');
    out.auth = { username: settings.username, password, passwordFile: settings.passwordFile };
  }
  return out;
}
