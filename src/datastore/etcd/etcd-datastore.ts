import { connect as tlsConnect } from 'node:tls';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError, isRecoverableError } from 'etcd3';
import type { DatastoreCapabilities } from '../contract.js';
import type { ICompare, IDuplexStream, IKeyValue, IOptions, IRequestOp, IWatchRequest, IWatchResponse } from 'etcd3';
import type { Clock } from '../../platform/clock.js';
import { jittered, SystemClock } from '../../platform/clock.js';
import { EgwError, isEgwError } from '../../platform/errors.js';
import type {
  CommitResult,
  Datastore,
  JsonObject,
  ListResult,
  ResourceKey,
  StoredResource,
  WatchEvent,
  WatchOptions,
  WriteOp,
} from '../contract.js';
import { checkKey, checkOps, opFailure, opHolds, sortResources } from '../keys.js';
import type { EtcdSecurity } from './etcd-security.js';

/**
 * Connection and tuning of {@link EtcdDatastore}. `tls` (present: TLS, with what was read from the files
 * of src/datastore/etcd/etcd-security.ts) and `auth` (etcd's user/password authentication) come from
 * {@link EtcdSecurity}.
 */
export interface EtcdDatastoreOptions extends EtcdSecurity {
  /** `host:port` of each member (plain HTTP, or TLS when `tls` is set). */
  endpoints: string[];
  /** Key prefix, starting and ending with `/` (default `/egw/`). Lets several egw installations share an etcd. */
  prefix?: string;
  /** Deadline of one request (default 5,000 ms); past it the call fails with `DatastoreUnavailable`. */
  requestTimeoutMs?: number;
  /** Pause before a broken watch stream is re-established, doubling up to `watchRetryMaxMs` (defaults 100 / 2,000 ms). */
  watchRetryInitialMs?: number;
  watchRetryMaxMs?: number;
  /** Clock for the watch retry pauses. */
  clock?: Clock;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/** Resources per range request of a list (bounds one gRPC message). */
const LIST_PAGE = 500;
/** Watch responses buffered before the stream is paused (bounds memory with a slow consumer). */
const WATCH_HIGH_WATER = 64;

/**
 * The etcd backend (etcd v3 API through the `etcd3` client).
 *
 * Keys: `<prefix><kind>/<namespace or _>/<name>` (prefix `/egw/` by default), values the resource as
 * JSON. A commit is one etcd transaction whose compares encode the ops' expectations (create:
 * `create_revision == 0`; update / delete with `expectedRevision`: `mod_revision == n`; update and
 * `mustExist`: `create_revision > 0`; check: `mod_revision == n`, 0 for absent); its failure branch reads the
 * keys back so the error names the op that failed. Revisions are etcd's: global to the etcd cluster, so
 * other writers to the same etcd make them skip (they only ever grow).
 *
 * A watch is one etcd watch on the prefix from `afterRevision + 1` with previous values; a broken stream
 * (server restart, network) is re-established from the last revision delivered, so nothing is lost or
 * repeated; when etcd has compacted that history the watch yields `resync` and ends.
 *
 * Errors: `DatastoreUnavailable` when etcd cannot be reached within `requestTimeoutMs`.
 */
export class EtcdDatastore implements Datastore {
  readonly location: string;
  /** Commits of several keys and `check` ops are atomic. */
  readonly capabilities: DatastoreCapabilities = { atomicMultiKey: true };
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly closing = new AbortController();
  private closed = false;
  private readonly endpoints: readonly string[];
  private readonly security: EtcdSecurity;

  private constructor(options: EtcdDatastoreOptions) {
    const prefix = options.prefix ?? '/egw/';
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) {
      throw new EgwError('InvalidInput', `etcd key prefix ${JSON.stringify(prefix)} must start and end with "/"`);
    }
    if (options.endpoints.length === 0) throw new EgwError('InvalidInput', 'etcd needs at least one endpoint');
    this.prefix = prefix;
    // The location names no file and no user: it is logged and shown everywhere.
    this.location = `${options.tls === undefined ? 'etcd' : 'etcds'}://${options.endpoints.join(',')}${prefix === '/egw/' ? '' : prefix.replace(/\/$/, '')}`;
    this.endpoints = options.endpoints;
    this.security = { ...(options.tls === undefined ? {} : { tls: options.tls }), ...(options.auth === undefined ? {} : { auth: options.auth }) };
    this.clock = options.clock ?? new SystemClock();
    this.retryInitialMs = options.watchRetryInitialMs ?? 100;
    this.retryMaxMs = options.watchRetryMaxMs ?? 2_000;
    const timeout = options.requestTimeoutMs ?? 5_000;
    const tls = options.tls;
    this.client = new Etcd3({
      hosts: options.endpoints.map((e) => `${tls === undefined ? 'http' : 'https'}://${e}`),
      // etcd3 hands these to grpc's createSsl; without a CA file the system's roots verify etcd (grpc's
      // default, which also applies to https:// hosts without credentials).
      ...(tls === undefined || (tls.ca === undefined && tls.cert === undefined)
        ? {}
        : {
            credentials: {
              // grpc's createSsl takes null for "the system's roots"; etcd3's type insists on a Buffer.
              rootCertificate: tls.ca ?? (null as unknown as Buffer),
              ...(tls.key === undefined ? {} : { privateKey: tls.key }),
              ...(tls.cert === undefined ? {} : { certChain: tls.cert }),
            },
          }),
      ...(options.auth === undefined
        ? {}
        : // The token exchange gets the deadline of defaultCallOptions, like every other call.
          { auth: { username: options.auth.username, password: options.auth.password } }),
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: {
        // etcd3's default host circuit breaker refuses calls for 5 s after three failures, which only
        // delays recovery after a restart; a retry over the members is all we want.
        host: () => passthroughPolicy,
        global: retryPolicy(Math.max(2, options.endpoints.length + 1), this.clock),
      },
    });
  }

  /**
   * Connects and checks that etcd answers (and, with `auth`, that the user may read this store's prefix).
   * Throws `DatastoreUnavailable` naming the endpoints: `retry` while etcd cannot be reached, `terminal`
   * for what waiting cannot fix — a certificate etcd or egw rejects, TLS spoken to a plain etcd or the
   * other way round, a wrong user or password, a user without permission (`details.reason`: `TlsRejected`,
   * `TlsMismatch`, `Unauthenticated`, `Forbidden`).
   */
  static async open(options: EtcdDatastoreOptions): Promise<EtcdDatastore> {
    const store = new EtcdDatastore(options);
    try {
      await store.currentRevision();
    } catch (err) {
      await store.close();
      // A plain client at a TLS etcd (or the reverse) looks like an unreachable server to gRPC; one
      // probe tells the two apart, so that the program stops with the fix instead of waiting forever.
      if (isEgwError(err, 'DatastoreUnavailable') && err.retry === 'retry') {
        const mismatch = await protocolMismatch(options.endpoints, options.tls !== undefined);
        if (mismatch !== undefined) {
          throw new EgwError('DatastoreUnavailable', `datastore ${store.location}: ${mismatch.message}`, {
            hint: mismatch.hint,
            retry: 'terminal',
            cause: err,
            details: { reason: 'TlsMismatch', location: store.location },
          });
        }
      }
      throw err;
    }
    return store;
  }

  async get(key: ResourceKey): Promise<StoredResource | undefined> {
    const k = checkKey(key);
    const res = await this.call('get', () => this.client.kv.range({ key: Buffer.from(this.encodeKey(k)) }));
    const kv = res.kvs[0];
    return kv === undefined ? undefined : this.toStored(kv);
  }

  async list(kind: string, options: { namespace?: string } = {}): Promise<ListResult> {
    // Validates kind and namespace the way keys are validated ('' = cluster-scoped = `_`).
    const k = checkKey({ kind, namespace: options.namespace, name: 'x' });
    const start =
      options.namespace === undefined ? `${this.prefix}${k.kind}/` : `${this.prefix}${k.kind}/${k.namespace ?? '_'}/`;
    const end = prefixEnd(Buffer.from(start));
    // Pages at one revision: the list is a snapshot even when it takes several requests. Should etcd
    // compact that revision between two pages, start over at a newer one.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.listPages(Buffer.from(start), end);
      } catch (err) {
        if (attempt < 3 && isEgwError(err) && /compacted/i.test(err.message)) continue;
        throw err;
      }
    }
  }

  private async listPages(start: Buffer, end: Buffer): Promise<ListResult> {
    const items: StoredResource[] = [];
    let from = start;
    let revision = 0;
    for (;;) {
      const res = await this.call('list', () =>
        this.client.kv.range({ key: from, range_end: end, limit: LIST_PAGE, revision, sort_order: 'Ascend', sort_target: 'Key' }),
      );
      if (revision === 0) revision = Number(res.header.revision);
      for (const kv of res.kvs) items.push(this.toStored(kv));
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { items: sortResources(items), revision };
  }

  async currentRevision(): Promise<number> {
    // A range that matches nothing still carries the header with the store's revision.
    const res = await this.call('read the revision', () =>
      this.client.kv.range({ key: Buffer.from(`${this.prefix}\0`), count_only: true }),
    );
    return Number(res.header.revision);
  }

  async commit(ops: readonly WriteOp[]): Promise<CommitResult> {
    const checked = checkOps(ops);
    if (checked.length === 0) return { revision: await this.currentRevision(), results: [] };
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const failure: IRequestOp[] = [];
    for (const op of checked) {
      const key = Buffer.from(this.encodeKey(op.key));
      const createIs = (result: 'Equal' | 'Greater'): ICompare => ({ key, target: 'Create', result, create_revision: 0 });
      const modIs = (n: number): ICompare => ({ key, target: 'Mod', result: 'Equal', mod_revision: n });
      switch (op.op) {
        case 'create':
          compare.push(createIs('Equal'));
          break;
        // At most one compare per sensible op (etcd caps compares per transaction like ops):
        // `mod_revision == n` with n > 0 already implies that the key exists. Revision 0 means absent,
        // so "update / must-exist delete at revision 0" can never hold, as in every backend.
        case 'update':
          if (op.expectedRevision === undefined || op.expectedRevision === 0) compare.push(createIs('Greater'));
          if (op.expectedRevision !== undefined) compare.push(modIs(op.expectedRevision));
          break;
        case 'delete':
          if (op.mustExist === true && (op.expectedRevision === undefined || op.expectedRevision === 0)) compare.push(createIs('Greater'));
          if (op.expectedRevision !== undefined) compare.push(modIs(op.expectedRevision));
          break;
        case 'check':
          compare.push(modIs(op.expectedRevision));
          break;
        case 'put':
          break;
      }
      if (op.op === 'create' || op.op === 'update' || op.op === 'put') {
        success.push({ request_put: { key, value: Buffer.from(JSON.stringify(op.value)), prev_kv: true } });
      } else if (op.op === 'delete') {
        success.push({ request_delete_range: { key } });
      }
      failure.push({ request_range: { key } });
    }
    const res = await this.call('commit', () => this.client.kv.txn({ compare, success, failure }));
    const revision = Number(res.header.revision);
    if (!res.succeeded) {
      checked.forEach((op, i) => {
        const kv = res.responses[i]?.response_range.kvs[0];
        const cur = kv === undefined ? undefined : this.toStored(kv);
        if (!opHolds(op, cur)) throw opFailure(op, cur);
      });
      throw new EgwError('Conflict', 'the commit\'s expectations did not hold', { hint: 'read again and retry' });
    }
    let r = 0;
    const results = checked.map((op): StoredResource | undefined => {
      if (op.op === 'check') return undefined;
      const response = res.responses[r++];
      if (op.op === 'delete') return undefined;
      const prev = response?.response_put.prev_kv;
      const createRevision = prev !== null && prev !== undefined && Number(prev.create_revision) > 0 ? Number(prev.create_revision) : revision;
      return { key: op.key, value: JSON.parse(JSON.stringify(op.value)) as JsonObject, createRevision, modRevision: revision };
    });
    return { revision, results };
  }

  /**
   * Compacts etcd's history up to `revision` (cluster-wide: it affects every user of this etcd).
   * Production clusters should rather run etcd with `--auto-compaction-retention`.
   */
  async compact(revision: number): Promise<void> {
    try {
      await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
    } catch (err) {
      // Compacting to an already compacted revision is a no-op for us.
      if (!(isEgwError(err) && /compacted/i.test(err.message))) throw err;
    }
  }

  /** Deletes every key under this store's prefix in one request (tests, uninstall). Returns how many. */
  async deleteAll(): Promise<number> {
    const key = Buffer.from(this.prefix);
    const res = await this.call('delete all', () => this.client.kv.deleteRange({ key, range_end: prefixEnd(key) }));
    return Number(res.deleted);
  }

  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return { [Symbol.asyncIterator]: () => this.follow(options) };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.closing.abort();
      this.client.close();
    }
    return Promise.resolve();
  }

  private async *follow(options: WatchOptions): AsyncGenerator<WatchEvent> {
    this.assertOpen();
    const stop = options.signal === undefined ? this.closing.signal : AbortSignal.any([options.signal, this.closing.signal]);
    const kinds = options.kinds === undefined ? undefined : new Set(options.kinds);
    // One kind: watch only its keys; several: the whole prefix, filtered here (one stream keeps the
    // global order across kinds).
    const only = kinds?.size === 1 ? [...kinds][0] : undefined;
    const start = only === undefined ? this.prefix : `${this.prefix}${only}/`;
    let cursor = options.afterRevision;
    let delay = this.retryInitialMs;
    while (!stop.aborted) {
      const stream = new WatchStream(stop);
      try {
        const raw = await this.client.watchClient.watch();
        stream.attach(raw);
        raw.write({
          create_request: {
            key: Buffer.from(start),
            range_end: prefixEnd(Buffer.from(start)),
            start_revision: cursor + 1,
            prev_kv: true,
          },
        });
        for (;;) {
          const res = await stream.next();
          if (res === undefined) return; // stopped
          if (Number(res.compact_revision) > 0) {
            yield {
              type: 'resync',
              revision: Number(res.header.revision),
              reason: `history after revision ${cursor} was compacted (etcd kept from ${res.compact_revision})`,
            };
            return;
          }
          if (res.canceled) {
            // A watch of a range the user may not read all of is cancelled at once: say so, do not loop.
            const denied = /permission denied/i.test(res.cancel_reason);
            throw new EgwError('DatastoreUnavailable', `etcd cancelled the watch: ${res.cancel_reason}`, denied
              ? { retry: 'terminal', details: { reason: 'Forbidden', location: this.location }, hint: `the etcd user needs read permission on all of ${start} (egw render etcd-roles)` }
              : {});
          }
          if (res.created) {
            delay = this.retryInitialMs;
            const now = Number(res.header.revision);
            if (cursor > now) {
              yield { type: 'resync', revision: now, reason: `revision ${cursor} is ahead of etcd (at ${now}): the store was replaced` };
              return;
            }
            continue;
          }
          let last = cursor;
          for (const ev of res.events) {
            const revision = Number(ev.kv.mod_revision);
            // A re-established stream starts after the last revision delivered; never repeat one.
            if (revision <= cursor) continue;
            last = Math.max(last, revision);
            const key = this.decodeKey(ev.kv.key);
            if (key === undefined || (kinds !== undefined && !kinds.has(key.kind))) continue;
            if (String(ev.type).toUpperCase() === 'DELETE') {
              const prev = ev.prev_kv;
              yield prev === null || prev === undefined
                ? { type: 'delete', key, revision }
                : { type: 'delete', key, revision, prevValue: parseValue(prev.value) };
            } else {
              const prev = ev.prev_kv;
              const base = { type: 'put' as const, key, value: parseValue(ev.kv.value), revision, createRevision: Number(ev.kv.create_revision) };
              yield prev === null || prev === undefined ? base : { ...base, prevValue: parseValue(prev.value) };
            }
            if (stop.aborted) return;
          }
          cursor = last;
        }
      } catch (err) {
        if (stop.aborted) return;
        if (isEgwError(err) && (err.code !== 'DatastoreUnavailable' || err.retry === 'terminal')) throw err;
        // The stream broke (server restart, network): wait, then resume from the cursor.
        await sleepUnless(this.clock, jittered(delay), stop);
        delay = Math.min(delay * 2, this.retryMaxMs);
      } finally {
        stream.close();
      }
    }
  }

  private encodeKey(k: ResourceKey): string {
    return `${this.prefix}${k.kind}/${k.namespace ?? '_'}/${k.name}`;
  }

  private decodeKey(raw: Buffer): ResourceKey | undefined {
    const s = raw.toString('utf8');
    if (!s.startsWith(this.prefix)) return undefined;
    const parts = s.slice(this.prefix.length).split('/');
    if (parts.length !== 3) return undefined;
    const [kind, ns, name] = parts as [string, string, string];
    return ns === '_' ? { kind, name } : { kind, namespace: ns, name };
  }

  private toStored(kv: IKeyValue): StoredResource {
    const key = this.decodeKey(kv.key);
    if (key === undefined) throw new EgwError('Internal', `etcd key ${kv.key.toString()} is not an egw key`);
    return { key, value: parseValue(kv.value), createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision) };
  }

  private assertOpen(): void {
    if (this.closed) throw new EgwError('DatastoreClosed', `${this.location} is closed`);
  }

  /** Runs one etcd call, turning client errors into `EgwError`s that name the store. */
  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await fn();
    } catch (err) {
      if (isEgwError(err)) throw err;
      if (this.closed) throw new EgwError('DatastoreClosed', `${this.location} is closed`);
      const refused = securityFailure(err, this.security, this.endpoints);
      if (refused !== undefined) {
        throw new EgwError('DatastoreUnavailable', `datastore ${this.location}: ${action} failed: ${refused.message}`, {
          hint: refused.hint,
          retry: 'terminal',
          cause: err,
          details: { reason: refused.reason, location: this.location },
        });
      }
      const msg = err instanceof Error ? err.message : String(err);
      const unreachable = (err instanceof Error && isRecoverableError(err)) || /deadline|unavailable|connect|closed/i.test(msg);
      throw new EgwError(
        unreachable ? 'DatastoreUnavailable' : 'Internal',
        `datastore ${this.location}: ${action} failed: ${msg}`,
        unreachable
          ? { hint: 'check that etcd is running and reachable at the endpoints given by --datastore / EGW_DATASTORE', cause: err, retry: 'retry' }
          : { cause: err },
      );
    }
  }
}

/** Buffers one gRPC watch stream's responses for an async consumer; pauses the stream when far ahead. */
class WatchStream {
  private readonly queue: IWatchResponse[] = [];
  private failure: Error | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  private raw: (IDuplexStream<IWatchRequest, IWatchResponse> & { pause?: () => void; resume?: () => void }) | undefined;

  constructor(private readonly stop: AbortSignal) {
    stop.addEventListener('abort', this.onAbort, { once: true });
  }

  attach(raw: IDuplexStream<IWatchRequest, IWatchResponse>): void {
    this.raw = raw;
    raw.on('data', (res: IWatchResponse) => {
      this.queue.push(res);
      if (this.queue.length >= WATCH_HIGH_WATER) this.raw?.pause?.();
      this.notify();
    });
    raw.on('error', (err: Error) => {
      this.failure = err;
      this.notify();
    });
    raw.on('end', () => {
      this.ended = true;
      this.notify();
    });
  }

  /** The next response; undefined when stopped; throws `DatastoreUnavailable` when the stream broke. */
  async next(): Promise<IWatchResponse | undefined> {
    for (;;) {
      if (this.stop.aborted) return undefined;
      const res = this.queue.shift();
      if (res !== undefined) {
        if (this.queue.length < WATCH_HIGH_WATER / 2) this.raw?.resume?.();
        return res;
      }
      if (this.failure !== undefined || this.ended) {
        throw new EgwError('DatastoreUnavailable', `etcd watch stream ${this.failure === undefined ? 'ended' : `failed: ${this.failure.message}`}`, {
          cause: this.failure,
        });
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  close(): void {
    this.stop.removeEventListener('abort', this.onAbort);
    try {
      this.raw?.cancel();
    } catch {
      // already gone
    }
    this.raw = undefined;
  }

  private readonly onAbort = (): void => this.notify();

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

function parseValue(raw: Buffer): JsonObject {
  return JSON.parse(raw.toString('utf8')) as JsonObject;
}

/** The smallest key after every key starting with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

async function sleepUnless(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await clock.sleep(ms, signal).catch(() => undefined);
}

const noEvent = (): { dispose(): void } => ({ dispose: () => undefined });

/** A cockatiel-shaped policy that just runs the call (the host policy). */
const passthroughPolicy = {
  onSuccess: noEvent,
  onFailure: noEvent,
  execute: async <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => fn({ signal: new AbortController().signal }),
} as unknown as Policy;

/** Retries a call failing with a connection error on the next member, a few times with a short pause. */
function retryPolicy(attempts: number, clock: Clock): Policy {
  return {
    onSuccess: noEvent,
    onFailure: noEvent,
    execute: async <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => {
      for (let i = 0; ; i++) {
        try {
          return await fn({ signal: new AbortController().signal });
        } catch (err) {
          if (i + 1 >= attempts || !(err instanceof Error) || !isRecoverableError(err)) throw err;
          await clock.sleep(50 * 2 ** i);
        }
      }
    },
  } as unknown as Policy;
}

/** Why etcd refused us, when it is a matter of configuration (certificates, users, permissions). */
interface SecurityFailure {
  reason: 'TlsRejected' | 'Unauthenticated' | 'Forbidden';
  message: string;
  hint: string;
}

/**
 * Classifies an etcd3 / gRPC error that waiting cannot fix (pure). gRPC reports a failed TLS handshake as
 * UNAVAILABLE, like an unreachable server, with OpenSSL's or Node's reason as "Last error"; those reasons
 * are matched here (grpc-js 1.14, Node 20, etcd 3.6: test/datastore/etcd-security.test.ts drives each case).
 */
export function securityFailure(err: unknown, security: EtcdSecurity, endpoints: readonly string[]): SecurityFailure | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  const at = endpoints.join(',');
  const user = security.auth?.username;
  if (err instanceof EtcdAuthenticationFailedError) {
    return {
      reason: 'Unauthenticated',
      message: `etcd refused the user ${JSON.stringify(user)}: wrong user name or password`,
      hint: `check EGW_ETCD_USERNAME and the password in ${security.auth?.passwordFile ?? 'EGW_ETCD_PASSWORD_FILE'}`,
    };
  }
  if (/user name is empty|token is not provided|invalid auth token/i.test(msg) && security.auth === undefined) {
    return {
      reason: 'Unauthenticated',
      message: `etcd at ${at} has authentication enabled and no etcd user was given`,
      hint: 'set EGW_ETCD_USERNAME and EGW_ETCD_PASSWORD_FILE (or ?user=NAME&password-file=FILE in the datastore URL)',
    };
  }
  if (/authentication is not enabled/i.test(msg)) {
    return {
      reason: 'Unauthenticated',
      message: `an etcd user (${JSON.stringify(user)}) is given but etcd at ${at} has authentication disabled`,
      hint: 'enable etcd authentication (etcdctl auth enable), or remove the user settings',
    };
  }
  if (err instanceof EtcdPermissionDeniedError) {
    // Without a user, etcd (--client-cert-auth) takes it from the client certificate's CN.
    const who = user !== undefined ? `the etcd user ${JSON.stringify(user)}` : security.tls?.certFile !== undefined ? `the etcd user named by the client certificate ${security.tls.certFile}` : 'this client (no etcd user)';
    return {
      reason: 'Forbidden',
      message: `permission denied: ${who} may not do this (its roles do not grant it)`,
      hint: 'give this program its role (egw render etcd-roles, docs/security.md); a gateway or CNI plugin writing here is a bug or an attack',
    };
  }
  const tls = security.tls;
  if (tls !== undefined && /UNAVAILABLE/.test(msg)) {
    const caName = tls.caFile ?? "the system's CA roots";
    if (/certificate required/i.test(msg)) {
      return {
        reason: 'TlsRejected',
        message: `etcd at ${at} requires a client certificate and none was given`,
        hint: 'set EGW_ETCD_CERT_FILE and EGW_ETCD_KEY_FILE (or ?cert=FILE&key=FILE)',
      };
    }
    if (/bad certificate|unknown ca|certificate unknown|unsupported certificate|decrypt error|certificate revoked|access denied/i.test(msg)) {
      return {
        reason: 'TlsRejected',
        message: `etcd at ${at} rejected the client certificate ${tls.certFile ?? '(none)'}: ${lastError(msg)}`,
        hint: "use a client certificate signed by a CA in etcd's --trusted-ca-file, valid now, with extended key usage clientAuth",
      };
    }
    if (/unable to verify|self[- ]signed|unable to get (local )?issuer|certificate has expired|certificate is not yet valid|CERT_|altnames|does not match/i.test(msg)) {
      return {
        reason: 'TlsRejected',
        message: `the certificate of etcd at ${at} is not trusted: ${lastError(msg)} (verified with ${caName})`,
        hint: "give the CA that signed etcd's server certificate (EGW_ETCD_CA_FILE or ?ca=FILE); the certificate must name the host or IP of the endpoint",
      };
    }
  }
  return undefined;
}

/** gRPC's "Last error: …" part of an UNAVAILABLE message, or the message. */
function lastError(msg: string): string {
  const m = /Last error: (?:Error: )?(.*?)(?:\. Resolution note:|$)/s.exec(msg);
  const text = (m?.[1] ?? msg).split('\n')[0] ?? msg;
  // OpenSSL's lines carry a pointer into its sources; the reason is the part after the routine name.
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(text);
  return (ssl?.[1] ?? text).trim();
}

/**
 * One probe per endpoint after a failed first call: a plain `etcd://` client at an etcd that answers a TLS
 * handshake, or an `etcds://` client at one that answers plain HTTP. Undefined when no endpoint shows a
 * mismatch (then it is just unreachable, and the caller waits).
 */
async function protocolMismatch(endpoints: readonly string[], tls: boolean): Promise<{ message: string; hint: string } | undefined> {
  for (const e of endpoints) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(e);
    if (m === null) continue;
    const host = m[1] ?? '';
    const port = Number(m[2]);
    if (!tls && (await answersTls(host, port))) {
      return { message: `etcd at ${e} speaks TLS but the datastore URL is plain etcd://`, hint: 'use etcds://HOST:PORT with EGW_ETCD_CA_FILE (and a client certificate if etcd requires one)' };
    }
    if (tls && (await answersPlainHttp(host, port))) {
      return { message: `etcd at ${e} speaks plain HTTP but the datastore URL is etcds:// (TLS)`, hint: 'configure TLS on etcd (--cert-file, --key-file), or use etcd:// on a network only egw reaches' };
    }
  }
  return undefined;
}

/** True when host:port completes a TLS handshake (the server's certificate is not checked: this only asks "TLS or not"). */
function answersTls(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, timeout: 2_000, ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }) });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** True when host:port answers a plain HTTP request (etcd's /health). */
async function answersPlainHttp(host: string, port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}
