import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgwError } from '../platform/errors.js';
import type { Datastore } from './contract.js';
import type { SqliteDatastoreOptions } from './sqlite/sqlite-datastore.js';
import type { EtcdDatastoreOptions } from './etcd/etcd-datastore.js';
import type { KubernetesDatastoreOptions } from './kubernetes/kubernetes-datastore.js';

/** Where the data lives when nothing says otherwise (relative to the working directory). */
export const DEFAULT_DATASTORE = './egw-data/egw.db';

/** The environment variable naming `egw lab`'s state directory. */
export const LAB_DIR_ENV = 'EGW_LAB_DIR';
/** `egw lab`'s state directory when EGW_LAB_DIR is not set. */
export const LAB_DIR_DEFAULT = '/run/egw-lab';
/** The file in the lab's state directory that holds the running lab's datastore URL (docs/lab.md). */
export const LAB_DATASTORE_FILE = 'datastore';

/**
 * The datastore of a running `egw lab`: the content of `$EGW_LAB_DIR/datastore` (default
 * `/run/egw-lab/datastore`), written by `egw lab up` and removed by `egw lab down`; undefined when there
 * is none (no lab, or an empty file).
 */
export function labDatastore(env: Record<string, string | undefined> = process.env): string | undefined {
  const dir = env[LAB_DIR_ENV] !== undefined && env[LAB_DIR_ENV] !== '' ? env[LAB_DIR_ENV] : LAB_DIR_DEFAULT;
  try {
    const url = readFileSync(join(dir, LAB_DATASTORE_FILE), 'utf8').trim();
    return url === '' ? undefined : url;
  } catch {
    return undefined;
  }
}

/** A parsed datastore spec: which backend, and where. */
export type DatastoreSpec =
  | { backend: 'sqlite'; path: string }
  | { backend: 'etcd'; endpoints: string[]; prefix: string }
  /** `kubeconfig` undefined: KUBECONFIG, else the in-cluster service account. */
  | { backend: 'kubernetes'; kubeconfig: string | undefined };

const ACCEPTED = 'a file path, sqlite:PATH, etcd://HOST:PORT[,HOST:PORT…][/PREFIX], kubernetes or kubernetes:/path/to/kubeconfig';

/**
 * Parses a datastore spec (pure):
 * - `PATH` or `sqlite:PATH` (also `sqlite://PATH`) → the embedded SQLite file at PATH;
 * - `etcd://HOST:PORT[,HOST:PORT…]` → etcd at those endpoints (plain HTTP), keys under `/egw/`;
 *   a path after the endpoints sets another key prefix (`etcd://h:2379/team-a` → `/team-a/`);
 * - `kubernetes` or `kubernetes:/path/to/kubeconfig` → the Kubernetes API server (kubeconfig from the
 *   spec, else KUBECONFIG, else the in-cluster service account).
 * Throws `InvalidInput` naming what is accepted for any other scheme or a malformed endpoint.
 */
export function parseDatastoreSpec(spec: string): DatastoreSpec {
  const s = spec.trim();
  if (s === '') throw invalid(spec, 'it is empty');
  if (s.startsWith('sqlite:')) {
    const path = s.slice('sqlite:'.length).replace(/^\/\/(?=\/|\.|~)/, '');
    if (path === '') throw invalid(spec, 'sqlite: needs a path');
    return { backend: 'sqlite', path };
  }
  if (s === 'kubernetes') return { backend: 'kubernetes', kubeconfig: undefined };
  if (s.startsWith('kubernetes:')) {
    const path = s.slice('kubernetes:'.length).replace(/^\/\/(?=\/)/, '');
    return { backend: 'kubernetes', kubeconfig: path === '' ? undefined : path };
  }
  if (s.startsWith('etcd://')) {
    const rest = s.slice('etcd://'.length);
    const slash = rest.indexOf('/');
    const hostPart = slash === -1 ? rest : rest.slice(0, slash);
    const prefixPart = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    const endpoints = hostPart.split(',').map((h) => h.trim());
    for (const e of endpoints) {
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(e);
      if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) {
        throw invalid(spec, `endpoint ${JSON.stringify(e)} is not HOST:PORT`);
      }
    }
    return { backend: 'etcd', endpoints, prefix: prefixPart === '' ? '/egw/' : `/${prefixPart}/` };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(s);
  if (scheme !== null) throw invalid(spec, `the scheme ${JSON.stringify(scheme[1])} is not known`);
  return { backend: 'sqlite', path: s };
}

/** Options of {@link openDatastore}: per-backend tuning and the environment to read. */
export interface OpenDatastoreOptions {
  sqlite?: SqliteDatastoreOptions;
  etcd?: Omit<EtcdDatastoreOptions, 'endpoints' | 'prefix'>;
  kubernetes?: Omit<KubernetesDatastoreOptions, 'kubeconfig' | 'env'>;
  /** Where `EGW_DATASTORE` is read from (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/**
 * Opens the datastore named by `spec`, else by `EGW_DATASTORE`, else the running lab's
 * ({@link labDatastore}), else {@link DEFAULT_DATASTORE}.
 * See {@link parseDatastoreSpec} for the accepted forms. Throws `InvalidInput` for a bad spec and
 * `DatastoreUnavailable` when the store cannot be opened. The caller closes it.
 */
export async function openDatastore(spec?: string, options: OpenDatastoreOptions = {}): Promise<Datastore> {
  const env = options.env ?? process.env;
  const chosen = spec !== undefined && spec !== '' ? spec : env['EGW_DATASTORE'] !== undefined && env['EGW_DATASTORE'] !== '' ? env['EGW_DATASTORE'] : (labDatastore(env) ?? DEFAULT_DATASTORE);
  const parsed = parseDatastoreSpec(chosen);
  // Each backend is loaded only when asked for: etcd's gRPC client costs a CNI plugin run real time.
  if (parsed.backend === 'sqlite') {
    const { SqliteDatastore } = await import('./sqlite/sqlite-datastore.js');
    return SqliteDatastore.open(parsed.path, options.sqlite);
  }
  if (parsed.backend === 'kubernetes') {
    const { KubernetesDatastore } = await import('./kubernetes/kubernetes-datastore.js');
    return KubernetesDatastore.open({ ...options.kubernetes, ...(parsed.kubeconfig === undefined ? {} : { kubeconfig: parsed.kubeconfig }), env });
  }
  const { EtcdDatastore } = await import('./etcd/etcd-datastore.js');
  return EtcdDatastore.open({ ...options.etcd, endpoints: parsed.endpoints, prefix: parsed.prefix });
}

function invalid(spec: string, why: string): EgwError {
  return new EgwError('InvalidInput', `invalid datastore ${JSON.stringify(spec)}: ${why}`, { hint: `use ${ACCEPTED}` });
}
