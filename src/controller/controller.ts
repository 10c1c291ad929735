/**
 * `egw controller`: the cluster's one controller process. It runs, side by side and independently:
 * - the operator (EgressGateway → gateway pods, status),
 * - the IPAM garbage collector,
 * - the AWS subnet facts loop (when an EC2 endpoint or region is configured),
 * - the clean-up of agent records whose pod or node is gone,
 * - the gateway-maintenance annotations on the clients of terminating gateways (./gateway-maintenance.ts).
 * One failing part never stops the others; each logs and retries on its own schedule.
 * The parts run only while this process holds the controller lease (./leader-election.ts). The validating
 * admission webhook (./webhook/) is not one of them: the CLI runs it beside them on every replica.
 */
import type { Ec2 } from '../aws/ec2-port.js';
import type { Datastore } from '../datastore/contract.js';
import type { Clock } from '../platform/clock.js';
import { SystemClock } from '../platform/clock.js';
import { errorMessage } from '../platform/errors.js';
import type { EventRecorder } from '../platform/events.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import { AgentRecordsGc } from './agent-records-gc.js';
import { AwsSubnetFactsLoop } from './aws-subnets.js';
import { GatewayMaintenanceWriter } from './gateway-maintenance.js';
import { IpamGcLoop } from './ipam-gc.js';
import { defaultIdentity, LeaderElector, type ElectionOutcome, type LeaderElectorOptions } from './leader-election.js';
import { EgressGatewayOperator } from './operator/index.js';
import type { GatewayWorkloads } from './operator/workloads.js';

export interface ControllerDeps {
  store: Datastore;
  clock?: Clock;
  logger?: Logger;
  /** The EC2 port for the subnet facts; absent = no AWS (the loop does not run). */
  ec2?: Ec2;
  /** Where the operator puts gateway workloads; absent = Pod records in `store` (the lab). On Kubernetes: `KubeDeployments`. */
  gatewayWorkloads?: GatewayWorkloads;
  /** Events on EgressGateways (the operator's); absent = none. The caller closes it after {@link Controller.stop}. */
  events?: EventRecorder;
}

export interface ControllerOptions {
  /** Image of the rendered gateway pods (default: egw's own). */
  gatewayImage?: string;
  /** Command the rendered gateway containers run (default `egw gateway`). */
  gatewayCommand?: string[];
  /** IPAM leak grace (default 15 minutes). */
  ipamGcGraceMs?: number;
  /** IPAM GC interval (default half the grace). */
  ipamGcIntervalMs?: number;
  /** AWS subnet facts refresh interval (default 5 minutes). */
  awsSubnetsIntervalMs?: number;
  /**
   * Leader election (docs/operator.md, "Leader election"): identity (default hostname_pid_random) and
   * timing; `false` runs the parts at once, without a lease (one process by construction, e.g. tests).
   */
  leaderElection?: Partial<LeaderElectorOptions> | false;
}

/** The controller process's parts, started and stopped together. */
export class Controller {
  private readonly operator: EgressGatewayOperator;
  private readonly gc: IpamGcLoop;
  private readonly records: AgentRecordsGc;
  private readonly maintenance: GatewayMaintenanceWriter;
  private readonly subnets: AwsSubnetFactsLoop | undefined;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly log: Logger;
  private readonly elector: LeaderElector | undefined;
  private readonly stopping = new AbortController();
  private election: Promise<ElectionOutcome> | undefined;

  constructor(deps: ControllerDeps, options: ControllerOptions = {}) {
    const clock = deps.clock ?? new SystemClock();
    this.log = deps.logger ?? silentLogger();
    this.operator = new EgressGatewayOperator(
      { store: deps.store, clock, logger: this.log.child({ part: 'operator' }), ...(deps.gatewayWorkloads === undefined ? {} : { workloads: deps.gatewayWorkloads }), ...(deps.events === undefined ? {} : { events: deps.events }) },
      {
        ...(options.gatewayImage === undefined ? {} : { image: options.gatewayImage }),
        ...(options.gatewayCommand === undefined ? {} : { command: options.gatewayCommand }),
      },
    );
    this.gc = new IpamGcLoop(
      { store: deps.store, clock, logger: this.log.child({ part: 'ipam-gc' }) },
      {
        ...(options.ipamGcGraceMs === undefined ? {} : { graceMs: options.ipamGcGraceMs }),
        ...(options.ipamGcIntervalMs === undefined ? {} : { intervalMs: options.ipamGcIntervalMs }),
      },
    );
    this.records = new AgentRecordsGc({ store: deps.store, clock, logger: this.log.child({ part: 'agent-records-gc' }) });
    this.maintenance = new GatewayMaintenanceWriter({ store: deps.store, clock, logger: this.log.child({ part: 'gateway-maintenance' }) });
    this.subnets =
      deps.ec2 === undefined
        ? undefined
        : new AwsSubnetFactsLoop(
            { store: deps.store, ec2: deps.ec2, clock, logger: this.log.child({ part: 'aws-subnets' }) },
            options.awsSubnetsIntervalMs === undefined ? {} : { intervalMs: options.awsSubnetsIntervalMs },
          );
    const election = options.leaderElection;
    this.elector =
      election === false
        ? undefined
        : new LeaderElector({ store: deps.store, clock, logger: this.log.child({ part: 'leader-election' }) }, { ...election, identity: election?.identity ?? defaultIdentity() });
  }

  /**
   * Campaigns for the controller lease and runs the parts while leading; without leader election, runs
   * them at once. Idempotent. The parts are started at most once per Controller: after losing the lease
   * the process exits (see {@link done}) rather than re-campaigning with half-stopped state.
   */
  start(): void {
    if (this.election !== undefined) return;
    const stopping = this.stopping.signal;
    if (this.elector === undefined) {
      this.startParts();
      this.election = untilAborted(stopping)
        .then(() => this.stopParts())
        .then(() => 'stopped' as const);
      return;
    }
    this.election = this.elector.run(stopping, async (leading) => {
      this.startParts();
      await untilAborted(leading);
      await this.stopParts();
    });
  }

  /**
   * Resolves when the controller has ended: `lost` = the lease was lost and every part has stopped (the
   * process should exit non-zero so that its supervisor restarts it), `stopped` after {@link stop}.
   */
  done(): Promise<ElectionOutcome> {
    return this.election ?? Promise.resolve('stopped');
  }

  /** Stops every part, waits for passes in progress, then releases the lease. Safe to call twice. */
  async stop(): Promise<ElectionOutcome> {
    this.stopping.abort();
    return this.done();
  }

  private startParts(): void {
    if (this.loops.length > 0) return;
    this.operator.start();
    const signal = this.abort.signal;
    const guard = (name: string, p: Promise<void>): Promise<void> =>
      p.catch((err: unknown) => this.log.error({ part: name, err: errorMessage(err) }, 'controller part stopped on an error'));
    this.loops = [
      guard('ipam-gc', this.gc.run(signal)),
      guard('agent-records-gc', this.records.run(signal)),
      guard('gateway-maintenance', this.maintenance.run(signal)),
    ];
    if (this.subnets !== undefined) this.loops.push(guard('aws-subnets', this.subnets.run(signal)));
    this.log.info({ awsSubnets: this.subnets !== undefined }, 'controller started');
  }

  private async stopParts(): Promise<void> {
    this.abort.abort();
    await this.operator.stop();
    await Promise.all(this.loops);
    this.log.info('controller stopped');
  }
}

/** Resolves when `signal` aborts. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
