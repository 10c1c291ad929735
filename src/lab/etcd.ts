/**
 * The lab's keys in an etcd datastore: a lab owns one key prefix (by default `/egw-lab-<prefix>/`), marks
 * it as a lab's, starts it empty and removes it at `down`. A prefix that holds keys without the mark is
 * someone's data: the lab refuses to use it rather than wipe it.
 */
import { Etcd3 } from 'etcd3';
import { parseDatastoreSpec } from '../datastore/open.js';
import { EgwError } from '../platform/errors.js';

/** The marker, in the datastore's key layout (`<prefix><kind>/_/<name>`), so egw's readers ignore it as an unknown kind. */
const MARKER = 'EgwLab/_/marker';

async function withEtcd<T>(url: string, use: (client: Etcd3, prefix: string) => Promise<T>): Promise<T> {
  const spec = parseDatastoreSpec(url);
  if (spec.backend !== 'etcd') throw new EgwError('Internal', `${url} is not an etcd datastore`);
  const client = new Etcd3({ hosts: spec.endpoints.map((e) => `http://${e}`), dialTimeout: 3000 });
  try {
    return await use(client, spec.prefix);
  } catch (e) {
    if (e instanceof EgwError) throw e;
    throw new EgwError('DatastoreUnavailable', `etcd at ${spec.endpoints.join(',')}: ${(e as Error).message}`, { hint: 'start etcd, or drop --datastore to use the embedded SQLite store' });
  } finally {
    client.close();
  }
}

/** True when the prefix holds keys and no lab marker. */
export async function etcdHasForeignData(url: string): Promise<boolean> {
  return withEtcd(url, async (client, prefix) => {
    const count = await client.getAll().prefix(prefix).count();
    if (count === 0) return false;
    return (await client.get(`${prefix}${MARKER}`).string()) === null;
  });
}

/** Deletes every key under the prefix. */
export async function clearEtcdPrefix(url: string): Promise<void> {
  await withEtcd(url, async (client, prefix) => {
    await client.delete().prefix(prefix);
  });
}

/** Marks the prefix as a lab's. */
export async function markEtcdPrefix(url: string): Promise<void> {
  await withEtcd(url, async (client, prefix) => {
    await client.put(`${prefix}${MARKER}`).value(JSON.stringify({ kind: 'EgwLab', createdAt: new Date().toISOString() }));
  });
}
