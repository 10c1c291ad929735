/**
 * Opening the datastore for the long-running commands (agent, gateway, controller): they wait for an
 * unreachable datastore instead of exiting, and a SIGTERM/SIGINT during the wait ends it (issue 11, item 5).
 */
import type { Datastore } from '../datastore/contract.js';
import { openDatastoreWaiting, type OpenDatastoreOptions } from '../datastore/open.js';
import type { Logger } from '../platform/logger.js';

/**
 * Opens `spec`, retrying with jittered backoff while the datastore is unreachable (logged at each
 * attempt); throws at once for a bad configuration, and with the last error when a signal arrives first.
 * The kernel state the program owns is not touched meanwhile (nothing has started yet).
 */
export async function openDatastoreForDaemon(spec: string | undefined, logger: Logger, options: OpenDatastoreOptions = {}): Promise<Datastore> {
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    return await openDatastoreWaiting(spec, { ...options, logger, signal: abort.signal });
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
