/**
 * The datastore room's public face: the contract, `openDatastore`, the informer and key helpers.
 * The backends themselves load lazily through {@link openDatastore} (etcd's gRPC client is heavy); import
 * `./sqlite/sqlite-datastore.js` or `./etcd/etcd-datastore.js` directly only for backend-specific calls
 * (`compact`, `deleteAll`).
 */
export * from './contract.js';
export { checkKey, compareKeys } from './keys.js';
export { DEFAULT_DATASTORE, openDatastore, parseDatastoreSpec } from './open.js';
export type { DatastoreSpec, OpenDatastoreOptions } from './open.js';
export { Informer } from './informer.js';
export type { InformerDeps, InformerEvent, InformerHandlers, InformerOptions } from './informer.js';
export type { SqliteDatastoreOptions } from './sqlite/sqlite-datastore.js';
export type { EtcdDatastoreOptions } from './etcd/etcd-datastore.js';
