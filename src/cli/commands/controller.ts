import { hostname } from 'node:os';
import type { Command } from 'commander';
import { openDatastoreForDaemon } from '../daemon-datastore.js';
import { parseDuration } from '../../api/index.js';
import { ResilientEc2 } from '../../aws/resilient-ec2.js';
import { SdkEc2 } from '../../aws/sdk-ec2.js';
import { Controller } from '../../controller/controller.js';
import { webhookOptionsFromFlags, type WebhookFlags } from '../../controller/webhook/flags.js';
import type { ValidationWebhook } from '../../controller/webhook/validation-webhook.js';
import { eventRecorderFor } from '../../datastore/events.js';
import { parseDatastoreSpec } from '../../datastore/open.js';
import { SystemClock } from '../../platform/clock.js';
import { EgwError, errorMessage } from '../../platform/errors.js';
import { createLogger } from '../../platform/logger.js';
import { ExitCode, usageError } from '../exit.js';

interface ControllerFlags extends WebhookFlags {
  gatewayImage?: string;
  ipamGcGrace: string;
  awsRegion?: string;
  awsEndpoint?: string;
  awsSubnetsInterval: string;
  logLevel?: string;
  leaderElect: boolean;
  identity?: string;
  leaderElectLeaseDuration: string;
  leaderElectRenewDeadline: string;
  leaderElectRetryPeriod: string;
}

/** The controller's `reportingController` in Events. */
export const CONTROLLER_EVENT_SOURCE = 'egw.io/controller';

function duration(name: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw usageError(`${name} "${text}" is not a duration`, 'e.g. 30s, 15m');
  return ms;
}

/** `egw controller`: the operator, IPAM GC and AWS subnet facts (docs/architecture.md, the control path). */
export function registerControllerCommands(program: Command): void {
  program
    .command('controller')
    .description('run the controller: the EgressGateway operator, IPAM garbage collection and AWS subnet facts')
    .option('--gateway-image <image>', 'image of the rendered gateway pods')
    .option('--ipam-gc-grace <duration>', 'leak grace of IPAM GC', '15m')
    .option('--aws-region <region>', 'AWS region for subnet facts (also AWS_REGION); without it and --aws-endpoint, no AWS calls are made')
    .option('--aws-endpoint <url>', 'EC2 endpoint override, e.g. egw aws-sim\'s URL (also AWS_ENDPOINT_URL_EC2)')
    .option('--aws-subnets-interval <duration>', 'how often subnet facts are refreshed', '5m')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default EGW_LOG_LEVEL or info)')
    .option('--no-leader-elect', 'run without the controller lease (only when no other controller can run on this datastore)')
    .option('--identity <id>', 'this controller\'s identity in the lease (default hostname_pid_random)')
    .option('--leader-elect-lease-duration <duration>', 'how long candidates wait on an unrenewed lease', '15s')
    .option('--leader-elect-renew-deadline <duration>', 'how long the leader tries to renew before it stops leading', '10s')
    .option('--leader-elect-retry-period <duration>', 'pause between lease attempts', '2s')
    .option('--webhook-listen <host:port>', 'serve the validating admission webhook here, on every replica (off by default)')
    .option('--webhook-url <url>', 'how the API server reaches the webhook, e.g. https://127.0.0.1:9443/validate')
    .option('--webhook-service <namespace/name>', 'or: the Service in front of the webhook (port 443)')
    .option('--webhook-tls-secret <namespace/name>', 'Secret holding the CA every replica shares (default with --webhook-service: NAME-tls beside it; else in memory)')
    .option('--webhook-configuration <name>', 'name of the ValidatingWebhookConfiguration (default egw-validation)')
    .option('--webhook-failure-policy <policy>', 'Fail (default) or Ignore')
    .action(async (opts: ControllerFlags, cmd: Command) => {
      const logger = createLogger({ component: 'controller', ...(opts.logLevel === undefined ? {} : { level: opts.logLevel }) });
      const graceMs = duration('--ipam-gc-grace', opts.ipamGcGrace);
      const subnetsMs = duration('--aws-subnets-interval', opts.awsSubnetsInterval);
      const endpoint = opts.awsEndpoint ?? process.env['AWS_ENDPOINT_URL_EC2'];
      const region = opts.awsRegion ?? process.env['AWS_REGION'] ?? (endpoint === undefined ? undefined : 'us-west-2');
      const clock = new SystemClock();
      const ec2 =
        region === undefined
          ? undefined
          : new ResilientEc2(new SdkEc2({ region, ...(endpoint === undefined ? {} : { endpoint }) }), { clock, logger: logger.child({ part: 'ec2' }) });
      let webhookOptions;
      try {
        webhookOptions = webhookOptionsFromFlags(opts);
      } catch (err) {
        throw usageError(errorMessage(err), err instanceof EgwError ? err.hint : undefined);
      }
      const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
      const store = await openDatastoreForDaemon(datastore, logger);
      // On the Kubernetes datastore the operator makes real Deployments; elsewhere (the lab) Pod records.
      const spec = datastore ?? process.env['EGW_DATASTORE'];
      const kube = spec === undefined || spec === '' ? undefined : parseDatastoreSpec(spec);
      // (Loaded only then: @kubernetes/client-node costs every other command start-up time.)
      const gatewayWorkloads =
        kube?.backend === 'kubernetes'
          ? await import('../../controller/operator/kube-deployments.js').then(
              (m) => new m.KubeDeployments({ kubeConfig: m.loadOperatorKubeConfig(kube.kubeconfig), store, logger: logger.child({ part: 'gateway-deployments' }) }),
            )
          : undefined;
      // Events on EgressGateways: events.k8s.io Events on Kubernetes, log lines elsewhere.
      const events = eventRecorderFor(store, { controller: CONTROLLER_EVENT_SOURCE, instance: opts.identity ?? hostname() }, { clock, logger });
      const controller = new Controller(
        { store, clock, logger, events, ...(ec2 === undefined ? {} : { ec2 }), ...(gatewayWorkloads === undefined ? {} : { gatewayWorkloads }) },
        {
          ipamGcGraceMs: graceMs,
          awsSubnetsIntervalMs: subnetsMs,
          ...(opts.gatewayImage === undefined ? {} : { gatewayImage: opts.gatewayImage }),
          leaderElection: opts.leaderElect && {
            ...(opts.identity === undefined ? {} : { identity: opts.identity }),
            leaseDurationMs: duration('--leader-elect-lease-duration', opts.leaderElectLeaseDuration),
            renewDeadlineMs: duration('--leader-elect-renew-deadline', opts.leaderElectRenewDeadline),
            retryPeriodMs: duration('--leader-elect-retry-period', opts.leaderElectRetryPeriod),
          },
        },
      );
      // The webhook serves on every replica, leader or not (the API server may call any): beside the lease.
      let webhook: ValidationWebhook | undefined;
      if (webhookOptions !== undefined) {
        const [{ ClientKubeObjects }, webhooks] = await Promise.all([import('../../controller/webhook/kube-objects.js'), import('../../controller/webhook/validation-webhook.js')]);
        const kubeObjects = ClientKubeObjects.fromKubeconfig(kube?.backend === 'kubernetes' ? kube.kubeconfig : undefined);
        webhook = new webhooks.ValidationWebhook({ store, kube: kubeObjects, clock, logger: logger.child({ part: 'webhook' }) }, webhookOptions);
      }
      await webhook?.start();
      controller.start();
      // Ends on a signal, or when the lease is lost (the parts have stopped by then).
      await Promise.race([
        new Promise<void>((resolve) => {
          process.once('SIGTERM', () => resolve());
          process.once('SIGINT', () => resolve());
        }),
        controller.done(),
      ]);
      const outcome = await controller.stop();
      await webhook?.stop();
      await events.close();
      await store.close();
      // As kube-controller-manager: a controller that lost its lease exits non-zero; its supervisor restarts it.
      if (outcome === 'lost') throw new ExitCode(1);
    });
}
