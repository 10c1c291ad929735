import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { EgwError } from '../../platform/errors.js';
import { guardedHandler, hardenServer } from '../../platform/http-edge.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { ACTIONS, isUnfilteredUnpaginated } from './actions.js';
import { Ec2ApiError, awsErrors } from './api-error.js';
import { Ec2Engine } from './engine.js';
import { FabricDispatcher, NoopFabricDriver, type FabricDriver, type FabricStatus } from './fabric.js';
import { Imds } from './imds.js';
import { builtInInstanceTypes, loadInstanceTypeTable, type InstanceTypeTable } from './instance-types.js';
import { initialState, worldHash, type SimState } from './model.js';
import { SeededRandom, deriveSeed } from './prng.js';
import { readStateFile, StateWriter } from './persistence.js';
import { QueryParams } from './query.js';
import { AllowList, FailureInjector, injectedError, sampleLatency, unauthorized } from './realism.js';
import { Throttle } from './throttle.js';
import { parseWorld, readWorldDefinition, type SimDefinition, type World, type WorldDefinition } from './world.js';
import { errorDocument, responseDocument } from './xml.js';

/** Options of {@link startAwsSim}. */
export interface StartAwsSimOptions {
  /** The world: a path to a YAML file, or a definition built in code. */
  world: string | WorldDefinition;
  /** `HOST:PORT` (`[::1]:PORT` for IPv6); port 0 picks a free port. */
  listen: string;
  /** Keep the state in this JSON file (written atomically after every change) so a restart resumes it. */
  stateFile?: string;
  /** Makes the fabric real (the lab); a no-op driver when absent. */
  fabric?: FabricDriver;
  logger?: Logger;
  /** Overrides merged over the world's `sim:` section (validated the same way). */
  sim?: SimDefinition;
  /**
   * Extra IMDS-only listeners, each answering as one instance whatever the source address
   * (for clients that cannot set the instance header, e.g. the SDK's own IMDS client in tests).
   */
  imdsBindings?: { listen: string; instanceId: string }[];
  /** Time source (default: the system clock). */
  clock?: Clock;
}

/** Request counters, by action and by answer. */
export interface AwsSimStats {
  /** Per action: calls received, successful answers, and error answers by code. */
  actions: Record<string, { calls: number; ok: number; errors: Record<string, number> }>;
  /** Calls refused by the token buckets. */
  throttled: number;
  /** Calls failed by failure injection (including lost replies after commit). */
  injected: number;
  /** State-file writes that failed (the in-memory state is kept). */
  persistFailures: number;
}

/** Everything the emulator knows, as `GET /_sim/state` and `egw aws-sim dump` show it. */
export interface AwsSimStateDump {
  format: 'egw-aws-sim-dump/v1';
  world: World;
  state: SimState;
  fabric: FabricStatus;
  stats: AwsSimStats;
}

/** A running emulator. */
export interface AwsSimHandle {
  /** Base URL of the EC2 endpoint (`endpoint` of the SDK client). */
  url: string;
  /** Base URL of IMDS (value for `AWS_EC2_METADATA_SERVICE_ENDPOINT`); the same server as `url`. */
  imdsUrl: string;
  /** IMDS URL of each `imdsBindings` listener, by instance ID. */
  imdsBindingUrls: Record<string, string>;
  /** The validated world, with the realism settings in force. */
  world: World;
  /** A deep copy of the current state, fabric status and counters. */
  state(): AwsSimStateDump;
  /** Resolves when pending state writes and fabric deliveries are done. */
  idle(): Promise<void>;
  /** Stops listening, finishes pending writes and deliveries. Idempotent. */
  close(): Promise<void>;
}

const MAX_BODY = 1 << 20;

/**
 * Starts the EC2-API emulator and its IMDS on `listen`. The EC2 Query API answers `POST /` (form
 * parameters `Action=…&Version=2016-11-15`), IMDS answers under `/latest/`, and `GET /_sim/state`
 * returns {@link AwsSimStateDump} as JSON. Throws `InvalidInput` for an invalid world or state file
 * (naming file and field), and when the state file was written for a different world.
 */
export async function startAwsSim(options: StartAwsSimOptions): Promise<AwsSimHandle> {
  const logger = (options.logger ?? silentLogger()).child({ component: 'aws-sim' });
  const clock = options.clock ?? new SystemClock();
  const { world, types } = resolveWorld(options.world, options.sim);

  let state = options.stateFile === undefined ? undefined : await readStateFile(options.stateFile);
  if (state !== undefined && state.worldHash !== worldHash(world)) {
    throw new EgwError('InvalidInput', `state file ${options.stateFile ?? ''} was written for a different world`, {
      hint: 'restore the world file it was made with, or delete the state file to start afresh',
    });
  }
  const fresh = state === undefined;
  state ??= initialState(world, world.sim.seed ?? randomInt(2 ** 31), clock.now());
  const seed = world.sim.seed ?? state.seed;
  const latencyRandom = new SeededRandom(deriveSeed(seed, 'latency'));
  // Its own stream, so that turning eventual consistency on or off does not shift the other delays.
  const consistencyRandom = new SeededRandom(deriveSeed(seed, 'consistency'));
  const deps = {
    now: () => clock.now(),
    attachDelayMs: () => sampleLatency(world.sim.attachLatency, latencyRandom),
    detachDelayMs: () => sampleLatency(world.sim.detachLatency, latencyRandom),
    createPropagationMs: () => sampleLatency(world.sim.createPropagation, consistencyRandom),
  };
  const engine = new Ec2Engine(world, state, types, deps);
  const lagged = world.sim.describeLag.fixedMs + world.sim.describeLag.jitterMs > 0;
  const describeView = new DescribeView(
    engine,
    () => new Ec2Engine(world, viewOf(engine.state), types, deps),
    lagged ? () => sampleLatency(world.sim.describeLag, consistencyRandom) : undefined,
  );
  const writer = options.stateFile === undefined ? undefined : new StateWriter(options.stateFile);
  // The file exists from the start, so that a dump or a restart sees the world's initial state too.
  if (writer !== undefined && fresh) await writer.write(state);
  const dispatcher = new FabricDispatcher({ driver: options.fabric ?? new NoopFabricDriver(), logger, snapshot: () => engine.snapshot() });
  const throttle = new Throttle(world.sim.throttle.scale, world.sim.throttle.buckets);
  const allow = new AllowList(world.sim.allowActions);
  const failures = new FailureInjector(world.sim, new SeededRandom(deriveSeed(seed, 'failures')));
  const imds = new Imds({ engine, now: () => clock.now() });
  const stats: AwsSimStats = { actions: {}, throttled: 0, injected: 0, persistFailures: 0 };
  let pending: Promise<unknown>[] = [];
  let transitionTimer: NodeJS.Timeout | undefined;
  let closed = false;

  /** Persists and delivers whatever the engine changed; resolves when the fabric has seen it. */
  const commit = (): Promise<void> => {
    const events = engine.takeEvents();
    const persisted = writer !== undefined && engine.takeDirty()
      ? writer.write(engine.state).catch((e: unknown) => {
          stats.persistFailures++;
          logger.error({ err: (e as Error).message, file: options.stateFile }, 'cannot write state file');
        })
      : Promise.resolve();
    if (writer === undefined) engine.takeDirty();
    describeView.publish(clock.now());
    const delivered = dispatcher.deliver(events, persisted);
    const all = Promise.all([persisted, delivered]).then(() => undefined);
    pending.push(all);
    void all.then(() => {
      pending = pending.filter((p) => p !== all);
    });
    return all;
  };

  /** Completes due attach/detach phases and arms a timer for the next one. */
  const tick = (): void => {
    engine.tick();
    void commit();
    if (closed) return;
    if (transitionTimer !== undefined) clearTimeout(transitionTimer);
    transitionTimer = undefined;
    const next = engine.nextTransitionAt();
    if (next !== undefined) {
      transitionTimer = setTimeout(tick, Math.max(0, next - clock.now()) + 1);
      transitionTimer.unref();
    }
  };

  const handleEc2 = async (req: IncomingMessage, res: ServerResponse, query: string): Promise<void> => {
    const requestId = randomUUID();
    let action = '(none)';
    const answer = (status: number, body: string): void => {
      res.statusCode = status;
      res.setHeader('content-type', 'text/xml;charset=UTF-8');
      res.setHeader('x-amzn-requestid', requestId);
      res.end(body);
    };
    const fail = (e: Ec2ApiError): void => {
      const entry = (stats.actions[action] ??= { calls: 0, ok: 0, errors: {} });
      entry.errors[e.code] = (entry.errors[e.code] ?? 0) + 1;
      logger.debug({ action, code: e.code, requestId }, 'ec2 call failed');
      answer(e.status, errorDocument(e.code, e.message, requestId));
    };
    try {
      const body = await readBody(req);
      const params = QueryParams.parse(query, body);
      const name = params.string('Action');
      if (name === undefined || name === '') throw awsErrors.missingAction();
      const spec = ACTIONS[name];
      if (spec === undefined) throw awsErrors.invalidAction(name);
      action = name;
      (stats.actions[action] ??= { calls: 0, ok: 0, errors: {} }).calls++;
      if (!allow.allows(action)) throw unauthorized(action, principalOf(req, world.accountId), world.region, world.accountId);
      if (params.boolean('DryRun') === true) throw awsErrors.dryRun();
      if (world.sim.throttle.enabled && !throttle.take(action, isUnfilteredUnpaginated(params), clock.now())) {
        stats.throttled++;
        throw awsErrors.requestLimitExceeded();
      }
      const fault = failures.decide(action);
      if (fault !== undefined && !fault.afterCommit) {
        stats.injected++;
        throw injectedError(fault.kind);
      }
      const delay = sampleLatency(world.sim.actionLatency[action] ?? world.sim.latency, latencyRandom);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (closed) throw awsErrors.unavailable();
      engine.tick();
      describeView.publish(clock.now());
      let xml: string;
      try {
        // Describe calls read the lagging view (EC2's eventual consistency); the others the state itself.
        xml = responseDocument(action, requestId, spec.handle(params, spec.mutating ? engine : describeView.at(clock.now())));
      } finally {
        // A failed call changes nothing, but the tick before it may have completed transitions.
        const committed = commit();
        if (spec.mutating) await withTimeout(committed, world.sim.fabricTimeoutMs);
        tick();
      }
      if (fault?.afterCommit === true) {
        stats.injected++;
        throw injectedError(fault.kind);
      }
      (stats.actions[action] ??= { calls: 0, ok: 0, errors: {} }).ok++;
      answer(200, xml);
    } catch (e) {
      if (e instanceof Ec2ApiError) return fail(e);
      logger.error({ action, err: (e as Error).message, requestId }, 'ec2 call crashed');
      fail(awsErrors.internalError());
    }
  };

  // The request-parsing edge (issue 11): a malformed target (`//`, `//[`) is a 400, never an exception.
  const route = (boundInstanceId: string | undefined) => guardedHandler((req: IncomingMessage, res: ServerResponse, { path, query }): void => {
    if (path === '/latest' || path.startsWith('/latest/')) {
      // IMDS shows only completed attachments, so bring the state machine up to date first.
      tick();
      imds.handle(req, res, path, boundInstanceId);
      return;
    }
    if (boundInstanceId !== undefined) {
      res.statusCode = 404;
      res.end('Not Found\n');
      return;
    }
    if (path.startsWith('/_sim/')) {
      handleAdmin(path, res);
      return;
    }
    void handleEc2(req, res, query);
  }, (err) => logger.error({ err: (err as Error).message }, 'aws-sim request failed'));

  const dump = (): AwsSimStateDump => {
    engine.tick();
    void commit();
    return structuredClone({ format: 'egw-aws-sim-dump/v1', world, state: engine.state, fabric: dispatcher.status, stats });
  };

  const handleAdmin = (path: string, res: ServerResponse): void => {
    res.setHeader('content-type', 'application/json');
    if (path === '/_sim/state') {
      res.end(JSON.stringify(dump(), null, 1));
    } else if (path === '/_sim/health') {
      res.end(JSON.stringify({ ok: true, fabric: dispatcher.status }));
    } else {
      res.statusCode = 404;
      res.end(JSON.stringify({ error: `unknown admin path ${path}` }));
    }
  };

  const servers: Server[] = [];
  const main = hardenServer(createServer(route(undefined)));
  const url = await listen(main, options.listen);
  servers.push(main);
  const imdsBindingUrls: Record<string, string> = {};
  try {
    for (const b of options.imdsBindings ?? []) {
      if (!world.instances.some((i) => i.id === b.instanceId)) {
        throw new EgwError('InvalidInput', `imdsBindings: ${b.instanceId} is not an instance of the world`, { hint: 'bind a listener to an instance of the world' });
      }
      const s = hardenServer(createServer(route(b.instanceId)));
      imdsBindingUrls[b.instanceId] = await listen(s, b.listen);
      servers.push(s);
    }
  } catch (e) {
    await Promise.all(servers.map((s) => closeServer(s)));
    throw e;
  }

  // A state written while attachments were in flight resumes them; the fabric starts from a full sync.
  tick();
  void dispatcher.sync();
  logger.info({ url, instances: world.instances.length, stateFile: options.stateFile }, 'aws-sim listening');

  return {
    url,
    imdsUrl: url,
    imdsBindingUrls,
    world,
    state: dump,
    idle: async () => {
      while (pending.length > 0) await Promise.all(pending);
      await dispatcher.idle();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (transitionTimer !== undefined) clearTimeout(transitionTimer);
      await Promise.all(servers.map((s) => closeServer(s)));
      // A hung fabric driver must not hang shutdown: wait for it at most fabricTimeoutMs.
      await withTimeout(
        (async () => {
          while (pending.length > 0) await Promise.all(pending);
          await dispatcher.idle();
        })(),
        world.sim.fabricTimeoutMs,
      );
      dispatcher.close();
      logger.info({ url }, 'aws-sim stopped');
    },
  };
}

/**
 * The state of an emulator, for `egw aws-sim dump`: fetched from a running one (`url`, its
 * `GET /_sim/state`) or read from its state file (`stateFile`, world and counters then absent).
 * Throws `AwsError` when the emulator cannot be reached, `InvalidInput` for a bad file.
 */
export async function dumpAwsSimState(source: { url: string } | { stateFile: string }): Promise<AwsSimStateDump | { format: 'egw-aws-sim-state/v1'; state: SimState }> {
  if ('stateFile' in source) {
    const state = await readStateFile(source.stateFile);
    if (state === undefined) {
      throw new EgwError('InvalidInput', `state file ${source.stateFile} does not exist`, { hint: 'start egw aws-sim with --state-file first' });
    }
    return { format: 'egw-aws-sim-state/v1', state };
  }
  let res: Response;
  try {
    res = await fetch(new URL('/_sim/state', source.url));
  } catch (e) {
    throw new EgwError('AwsError', `cannot reach aws-sim at ${source.url}: ${(e as Error).message}`, {
      hint: 'start it with egw aws-sim --world FILE --listen HOST:PORT, or pass its URL',
      retry: 'retry',
      cause: e,
    });
  }
  if (!res.ok) throw new EgwError('AwsError', `aws-sim at ${source.url} answered ${res.status} for /_sim/state`, { hint: 'is this an egw aws-sim endpoint?' });
  return (await res.json()) as AwsSimStateDump;
}

function resolveWorld(input: string | WorldDefinition, overrides: SimDefinition | undefined): { world: World; types: InstanceTypeTable } {
  const source = typeof input === 'string' ? input : 'world';
  const raw: unknown = typeof input === 'string' ? readWorldDefinition(input) : input;
  // A non-mapping is left as it is, for parseWorld to report.
  const definition: unknown = isRecord(raw) && overrides !== undefined ? { ...raw, sim: { ...(isRecord(raw['sim']) ? raw['sim'] : {}), ...overrides } } : raw;
  let types = builtInInstanceTypes();
  let world = parseWorld(definition, source, types);
  if (world.sim.instanceTypesFile !== undefined) {
    // Validate the instances again against the table that will be used.
    types = loadInstanceTypeTable(world.sim.instanceTypesFile);
    world = parseWorld(definition, source, types);
  }
  return { world, types };
}

/**
 * What Describe calls see: the state as it was some time ago. Every committed change is published as a
 * snapshot that becomes visible after a sampled lag; visibility times never go backwards, so a reader
 * sees a prefix of history (a change may show late, never out of order, never half of one call).
 */
class DescribeView {
  private readonly queue: { at: number; version: number; engine: Ec2Engine }[] = [];
  private lastAt = -Infinity;

  /** `lagMs` undefined: no lag, Describe calls read the live state (no copies are made). */
  constructor(
    private readonly live: Ec2Engine,
    private readonly snapshot: () => Ec2Engine,
    private readonly lagMs: (() => number) | undefined,
  ) {
    if (lagMs !== undefined) this.queue.push({ at: -Infinity, version: live.version, engine: this.snapshot() });
  }

  /** Records the live state if it changed; it becomes visible after the lag. */
  publish(now: number): void {
    if (this.lagMs === undefined) return;
    this.prune(now);
    const last = this.queue[this.queue.length - 1];
    if (last !== undefined && last.version === this.live.version) return;
    this.lastAt = Math.max(this.lastAt, now + Math.max(0, this.lagMs()));
    this.queue.push({ at: this.lastAt, version: this.live.version, engine: this.snapshot() });
  }

  /** The engine to answer a Describe with at `now`. */
  at(now: number): Ec2Engine {
    this.prune(now);
    return this.queue[0]?.engine ?? this.live;
  }

  /** Drops snapshots that a later visible one supersedes. */
  private prune(now: number): void {
    while (this.queue.length > 1 && (this.queue[1]?.at ?? Infinity) <= now) this.queue.shift();
  }
}

/** A copy of the state for the Describe view (client tokens are not read by Describe calls). */
function viewOf(state: SimState): SimState {
  return structuredClone({ ...state, clientTokens: {} });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function principalOf(req: IncomingMessage, accountId: string): string {
  const auth = req.headers.authorization ?? '';
  const m = /Credential=([^/,\s]+)/.exec(auth);
  return `arn:aws:iam::${accountId}:user/${m?.[1] ?? 'anonymous'}`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(awsErrors.invalidParameterValue('Request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Parses `HOST:PORT` / `[V6]:PORT`. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new EgwError('InvalidInput', `listen address "${listen}" is not HOST:PORT`, { hint: 'e.g. 127.0.0.1:4566, or [::1]:4566; port 0 picks a free one' });
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

function listen(server: Server, address: string): Promise<string> {
  const { host, port } = parseListen(address);
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new EgwError('InvalidInput', `cannot listen on ${address}: ${e.message}`, { hint: 'pick a free port or an address of this machine', cause: e })),
    );
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      const shown = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address;
      resolve(`http://${shown.includes(':') ? `[${shown}]` : shown}:${a.port}`);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
