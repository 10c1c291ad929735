import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SystemClock, type Clock } from '../platform/clock.js';
import { EgwError, errorMessage, isEgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import type { Datastore } from './contract.js';
import type { SqliteDatastoreOptions } from './sqlite/sqlite-datastore.js';
import type { EtcdDatastoreOptions } from './etcd/etcd-datastore.js';
import type { KubernetesDatastoreOptions } from './kubernetes/kubernetes-datastore.js';
import { etcdSettings, loadEtcdSecurity, parseEtcdQuery } from './etcd/etcd-security.js';
import type { EtcdSecuritySettings } from './etcd/etcd-security.js';

/**
 * Where the data lives when nothing says otherwise: an absolute path, so that a daemon started from another
 * working directory (systemd, a container) finds the same store as the CLI, and never one next to whatever
 * directory it happened to start in (issue 11, item 6).
 */
export const DEFAULT_DATASTORE = '/var/lib/egw/egw.db';

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
  /**
   * `tls`: `etcds://` (TLS) rather than `etcd://`; `security`: the settings of the URL's query only (the
   * environment's are merged when the store is opened).
   */
  | { backend: 'etcd'; endpoints: string[]; prefix: string; tls: boolean; security: EtcdSecuritySettings }
  /** `kubeconfig` undefined: KUBECONFIG, else the in-cluster service account. */
  | { backend: 'kubernetes'; kubeconfig: string | undefined };

const ACCEPTED = 'a file path, sqlite:PATH, etcd://HOST:PORT[,HOST:PORT…][/PREFIX] (etcds:// for TLS, options ?ca=&cert=&key=&user=&password-file=), kubernetes or kubernetes:/path/to/kubeconfig';

/**
 * Parses a datastore spec (pure):
 * - `PATH` or `sqlite:PATH` (also `sqlite://PATH`) → the embedded SQLite file at PATH;
 * - `etcd://HOST:PORT[,HOST:PORT…]` → etcd at those endpoints (plain HTTP), keys under `/egw/`;
 *   a path after the endpoints sets another key prefix (`etcd://h:2379/team-a` → `/team-a/`);
 *   `etcds://…` the same over TLS; a query sets the security options (`?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE`,
 *   src/datastore/etcd/etcd-security.ts);
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
  if (s.startsWith('etcd://') || s.startsWith('etcds://')) {
    const tls = s.startsWith('etcds://');
    const afterScheme = s.slice(tls ? 'etcds://'.length : 'etcd://'.length);
    const q = afterScheme.indexOf('?');
    const rest = q === -1 ? afterScheme : afterScheme.slice(0, q);
    const security = parseEtcdQuery(q === -1 ? '' : afterScheme.slice(q + 1), JSON.stringify(spec));
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
    if (!tls && (security.caFile !== undefined || security.certFile !== undefined || security.keyFile !== undefined)) {
      throw invalid(spec, 'ca, cert and key are TLS options: use etcds://');
    }
    return { backend: 'etcd', endpoints, prefix: prefixPart === '' ? '/egw/' : `/${prefixPart}/`, tls, security };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(s);
  if (scheme !== null) throw invalid(spec, `the scheme ${JSON.stringify(scheme[1])} is not known`);
  return { backend: 'sqlite', path: s };
}

/** Options of {@link openDatastore}: per-backend tuning and the environment to read. */
export interface OpenDatastoreOptions {
  sqlite?: SqliteDatastoreOptions;
  etcd?: Omit<EtcdDatastoreOptions, 'endpoints' | 'prefix' | 'tls' | 'auth'>;
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
  // Files first: a missing certificate or password file is a bad configuration, named before any dialling.
  const security = loadEtcdSecurity(etcdSettings(parsed.security, parsed.tls, env), parsed.tls);
  const { EtcdDatastore } = await import('./etcd/etcd-datastore.js');
  return EtcdDatastore.open({ ...options.etcd, endpoints: parsed.endpoints, prefix: parsed.prefix, ...security });
}

function invalid(spec: string, why: string): EgwError {
  return new EgwError('InvalidInput', `invalid datastore ${JSON.stringify(spec)}: ${why}`, { hint: `use ${ACCEPTED}` });
}

/** How {@link openDatastoreWaiting} waits. */
export interface OpenWaitOptions {
  /** Told about every failed attempt (warn) and the success after failures (info). */
  logger?: Logger;
  /** Ends the wait (SIGTERM): the promise rejects with the last error. */
  signal?: AbortSignal;
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: () => number;
  /** First wait (default 500 ms) and ceiling (default 30 s); each failure doubles it, jittered to [½, 1]×. */
  baseMs?: number;
  maxMs?: number;
  /** The opener (tests); default {@link openDatastore}. */
  open?: (spec: string | undefined, options: OpenDatastoreOptions) => Promise<Datastore>;
}

/**
 * {@link openDatastore} for long-running programs (agent, gateway, controller): while the datastore cannot
 * be reached (any error but a terminal `EgwError`, such as a malformed spec or a missing kubeconfig) it
 * waits and tries again — exponential backoff from `baseMs` to `maxMs`, jittered so that a fleet of agents
 * does not reconnect in lockstep after an outage, each failure logged — and never gives up on its own. A bad
 * configuration is thrown at once: only that should stop a program (issue 11, item 5).
 */
export async function openDatastoreWaiting(spec: string | undefined, options: OpenDatastoreOptions & OpenWaitOptions = {}): Promise<Datastore> {
  const clock = options.clock ?? new SystemClock();
  const random = options.random ?? Math.random;
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const open = options.open ?? openDatastore;
  const aborted = (): boolean => options.signal?.aborted === true;
  for (let attempt = 1; ; attempt++) {
    try {
      const store = await open(spec, options);
      if (attempt > 1) options.logger?.info({ attempts: attempt, datastore: store.location }, 'datastore reachable');
      return store;
    } catch (err) {
      if (isEgwError(err) && err.retry === 'terminal') throw err;
      if (aborted()) throw err;
      const ceiling = Math.min(max, base * 2 ** Math.min(attempt - 1, 20));
      const waitMs = Math.round(ceiling / 2 + random() * (ceiling / 2));
      options.logger?.warn({ attempt, waitMs, err: errorMessage(err) }, 'datastore unreachable: waiting to try again');
      await clock.sleep(waitMs, options.signal).catch(() => undefined);
      if (aborted()) throw err;
    }
  }
}
