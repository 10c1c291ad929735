import type { Command } from 'commander';
import { openDatastoreForDaemon } from '../daemon-datastore.js';
import { openDatastore, type OpenDatastoreOptions } from '../../datastore/open.js';
import type { Datastore } from '../../datastore/contract.js';
import { GATEWAY_ENV, GatewayProcess, gatewayConfig, initGatewayPod, type GatewayFlags } from '../../gateway/index.js';
import { createLogger } from '../../platform/logger.js';
import { ExecShell } from '../../platform/shell.js';

/** Adds the data-plane and probe flags shared by `egw gateway` and `egw gateway init`. */
function gatewayFlags(cmd: Command, withProbes: boolean): Command {
  const env = (key: keyof GatewayFlags): string => ` (env ${GATEWAY_ENV[key]})`;
  cmd
    .option('--pod-ip <ip>', `the pod's own IP${env('podIp')}`)
    .option('--health-port <port>', `readiness port, 0 = none; default 8080${env('healthPort')}`)
    .option('--vni <n>', `VXLAN VNI; default FelixConfiguration egressIPVXLANVNI, else 4097${env('vni')}`)
    .option('--vxlan-port <port>', `VXLAN UDP port; default FelixConfiguration egressIPVXLANPort, else 4790${env('vxlanPort')}`)
    .option('--mtu <n>', `MTU of the tunnel device; default 1450${env('mtu')}`);
  if (withProbes) {
    cmd
      .option('--icmp-probe-ips <list>', `comma-separated IPs to ping${env('icmpProbeIps')}`)
      .option('--icmp-probe-interval <duration>', `default 5s${env('icmpProbeInterval')}`)
      .option('--icmp-probe-timeout <duration>', `not ready after all pings failed this long; default 15s${env('icmpProbeTimeout')}`)
      .option('--http-probe-urls <list>', `comma-separated URLs to GET${env('httpProbeUrls')}`)
      .option('--http-probe-interval <duration>', `default 10s${env('httpProbeInterval')}`)
      .option('--http-probe-timeout <duration>', `not ready after all GETs failed this long; default 30s${env('httpProbeTimeout')}`)
      .option('--health-timeout-datastore <duration>', `not ready after the datastore was unreachable this long; default 90s${env('healthTimeoutDatastore')}`)
      .option('--log-severity <level>', `Fatal, Error, Warn, Info, Debug, Trace; default Info${env('logSeverity')}`)
      .option('--drain-seconds <n>', `after SIGTERM keep forwarding this long, then clean up and exit; default 0${env('drainSeconds')}`);
  }
  return cmd;
}

/**
 * `egw gateway` (the process of a gateway pod, run inside the pod's network namespace) and
 * `egw gateway init` (the operator's init container: program the namespace once and exit).
 * Configured by flags or by the environment variables Calico's gateway image reads (docs/gateway.md).
 */
/** How the gateway opens the datastore: it never writes (SQLite read-only; no effect on etcd and Kubernetes, where its identity is read-only). */
const GATEWAY_READ_ONLY: OpenDatastoreOptions = { sqlite: { readOnly: true } };

export function registerGatewayCommands(program: Command): void {
  const gateway = gatewayFlags(
    program
      .command('gateway')
      .description("run an egress gateway in this pod's network namespace: tunnel end, SNAT, filter, probes, GET /readiness"),
    true,
  ).action(async (flags: GatewayFlags, cmd: Command) => {
    const config = gatewayConfig(flags, process.env);
    const logger = createLogger({ component: 'gateway', level: config.logLevel });
    const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
    // The gateway only reads (Nodes, FelixConfiguration): on SQLite it opens the file read-only; on etcd
    // its role and on Kubernetes its RBAC grant reads only (docs/security.md).
    const store = await openDatastoreForDaemon(datastore, logger, GATEWAY_READ_ONLY);
    const gw = new GatewayProcess({ store, shell: new ExecShell(), logger }, config);
    let stopped = false;
    try {
      const signal = new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      await gw.start();
      const received = await signal;
      if (received === 'SIGTERM' && config.drainSeconds > 0) {
        // The pod is being deleted: its clients send it no new flows (they drain it), but the established
        // ones still come through it until the grace period ends. A second signal ends the drain.
        logger.info({ drainSeconds: config.drainSeconds }, 'gateway draining: forwarding established flows until the drain ends');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.drainSeconds * 1000);
          const early = (): void => {
            clearTimeout(timer);
            resolve();
          };
          process.once('SIGTERM', early);
          process.once('SIGINT', early);
        });
      }
      logger.info({ signal: received }, 'gateway shutting down');
      // SIGTERM (pod deletion): remove what we made; the pod's clients have already moved away.
      await gw.stop({ removeDataplane: true });
      stopped = true;
    } finally {
      if (!stopped) await gw.stop();
      await store.close();
    }
  });

  gatewayFlags(gateway.command('init').description("program this pod's namespace once (tunnel end, SNAT, filter) and exit"), false).action(
    async (_flags: GatewayFlags, cmd: Command) => {
      // Flags written after `init` may be taken by `egw gateway` itself: read both levels.
      const config = gatewayConfig(cmd.optsWithGlobals<GatewayFlags>(), process.env);
      const logger = createLogger({ component: 'gateway-init', level: config.logLevel });
      const { datastore } = cmd.optsWithGlobals<{ datastore?: string }>();
      let store: Datastore | undefined;
      try {
        store = await openDatastore(datastore, GATEWAY_READ_ONLY);
      } catch (e) {
        logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'datastore not reachable; tunnel closed until egw gateway starts');
      }
      try {
        const r = await initGatewayPod(new ExecShell(), config, store);
        logger.info({ changed: r.changed, nodes: r.nodes, datastore: r.datastore, failures: r.failures.map((f) => f.message) }, 'gateway pod initialised');
        if (r.failures.length > 0) process.exitCode = 1;
      } finally {
        await store?.close();
      }
    },
  );
}
