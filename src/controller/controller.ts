/**
 * `egw controller`: the cluster's one controller process. It runs, side by side and independently:
 * - the operator (EgressGateway → gateway pods, status),
 * - the IPAM garbage collector,
 * - the AWS subnet facts loop (when an EC2 endpoint or region is configured),
 * - the clean-up of agent records whose pod or node is gone.
 * One failing part never stops the others; each logs and retries on its own schedule.
 */
import type { Ec2 } from '../aws/ec2-port.js';
import type { Datastore } from '../datastore/contract.js';
import type { Clock } from '../platform/clock.js';
import { SystemClock } from '../platform/clock.js';
import { errorMessage } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import { AgentRecordsGc } from './agent-records-gc.js';
import { AwsSubnetFactsLoop } from './aws-subnets.js';
import { IpamGcLoop } from './ipam-gc.js';
import { EgressGatewayOperator } from './operator/index.js';

export interface ControllerDeps {
  store: Datastore;
  clock?: Clock;
  logger?: Logger;
  /** The EC2 port for the subnet facts; absent = no AWS (the loop does not run). */
  ec2?: Ec2;
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
}

/** The controller process's parts, started and stopped together. */
export class Controller {
  private readonly operator: EgressGatewayOperator;
  private readonly gc: IpamGcLoop;
  private readonly records: AgentRecordsGc;
  private readonly subnets: AwsSubnetFactsLoop | undefined;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly log: Logger;

  constructor(deps: ControllerDeps, options: ControllerOptions = {}) {
    const clock = deps.clock ?? new SystemClock();
    this.log = deps.logger ?? silentLogger();
    this.operator = new EgressGatewayOperator(
      { store: deps.store, clock, logger: this.log.child({ part: 'operator' }) },
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
    this.subnets =
      deps.ec2 === undefined
        ? undefined
        : new AwsSubnetFactsLoop(
            { store: deps.store, ec2: deps.ec2, clock, logger: this.log.child({ part: 'aws-subnets' }) },
            options.awsSubnetsIntervalMs === undefined ? {} : { intervalMs: options.awsSubnetsIntervalMs },
          );
  }

  /** Starts every part. Idempotent. */
  start(): void {
    if (this.loops.length > 0) return;
    this.operator.start();
    const signal = this.abort.signal;
    const guard = (name: string, p: Promise<void>): Promise<void> =>
      p.catch((err: unknown) => this.log.error({ part: name, err: errorMessage(err) }, 'controller part stopped on an error'));
    this.loops = [guard('ipam-gc', this.gc.run(signal)), guard('agent-records-gc', this.records.run(signal))];
    if (this.subnets !== undefined) this.loops.push(guard('aws-subnets', this.subnets.run(signal)));
    this.log.info({ awsSubnets: this.subnets !== undefined }, 'controller started');
  }

  /** Stops every part and waits for passes in progress. Safe to call twice. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.operator.stop();
    await Promise.all(this.loops);
    this.log.info('controller stopped');
  }
}
