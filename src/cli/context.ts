import type { Command } from 'commander';
import { openDatastore } from '../datastore/open.js';
import type { Datastore } from '../datastore/contract.js';

/**
 * Opens the datastore the global options name (`--datastore`, else EGW_DATASTORE, else the default file),
 * runs `use` with it and closes it, also on failure.
 */
export async function withStore<T>(command: Command, use: (store: Datastore) => Promise<T>): Promise<T> {
  const { datastore } = command.optsWithGlobals<{ datastore?: string }>();
  const store = await openDatastore(datastore);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
