/**
 * `egw lab aws-sim`: the emulator as the lab runs it, inside the VPC router's namespace, with the lab
 * fabric driver (the production `startAwsSim`, only the driver differs from `egw aws-sim`). Its
 * configuration is a JSON file the lab writes at `up` ({@link AwsSimRunConfig}).
 */
import { readFileSync } from 'node:fs';
import { LabFabricDriver } from '../sim/aws/lab-fabric.js';
import type { LabFabricConfig } from '../sim/aws/lab-fabric.js';
import { startAwsSim } from '../sim/aws/index.js';
import type { AwsSimHandle, WorldDefinition } from '../sim/aws/index.js';
import { EgwError } from '../platform/errors.js';
import type { Logger } from '../platform/logger.js';
import { ExecShell } from '../platform/shell.js';

/** What the lab hands the emulator. */
export interface AwsSimRunConfig {
  world: WorldDefinition;
  /** `HOST:PORT` inside the router's namespace. */
  listen: string;
  /** The emulator's persistent state (status and verify read it). */
  stateFile: string;
  fabric: LabFabricConfig;
}

/** Reads a run configuration file. Throws `InvalidInput` when it is unreadable. */
export function readAwsSimRunConfig(path: string): AwsSimRunConfig {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as AwsSimRunConfig;
  } catch (e) {
    throw new EgwError('InvalidInput', `cannot read the lab's emulator configuration ${path}: ${(e as Error).message}`, { hint: 'run egw lab up' });
  }
}

/**
 * Starts the emulator with the lab fabric and waits until the fabric has converged to the state (the
 * first `sync`), so that the caller may announce readiness. The caller `close()`s the handle.
 */
export async function runLabAwsSim(config: AwsSimRunConfig, logger: Logger): Promise<AwsSimHandle> {
  const fabric = new LabFabricDriver({ shell: new ExecShell(), logger }, config.fabric);
  const handle = await startAwsSim({ world: config.world, listen: config.listen, stateFile: config.stateFile, fabric, logger });
  await handle.idle();
  const status = handle.state().fabric;
  if (status.degraded) logger.warn({ lastError: status.lastError }, 'fabric not in sync yet; retrying in the background');
  return handle;
}
