import { EgwError } from '../../platform/errors.js';
import type { RunningProcess } from './process.js';
import type { Topology } from './topology.js';

/**
 * The "echo who called" server and its clients, as small self-contained Node programs run inside a
 * namespace (`ip netns exec NS node <file>`). They are plain JavaScript so they run anywhere Node runs,
 * without a build step; the topology writes them into its temp dir.
 *
 * Protocol: on each connection the server writes the peer address it saw and a newline (so
 * `nc <server> <port>` shows it at once), then echoes every byte it receives until the peer closes.
 */

/** Source of the echo server: `node echo-server.mjs --port P [--host H]`; prints `listening <port>`. */
export const ECHO_SERVER_SOURCE = `import net from 'node:net';
const arg = (name, dflt) => { const i = process.argv.indexOf('--' + name); return i < 0 ? dflt : process.argv[i + 1]; };
const port = Number(arg('port', '8089'));
const host = arg('host', '0.0.0.0');
let connections = 0;
const server = net.createServer((sock) => {
  connections++;
  sock.setNoDelay(true);
  sock.on('error', () => {});
  const peer = String(sock.remoteAddress || '').replace(/^::ffff:/, '');
  sock.write(peer + '\\n');
  sock.on('data', (d) => sock.write(d));
  sock.on('end', () => sock.end());
});
server.on('error', (e) => { console.error(String(e && e.message)); process.exit(1); });
server.listen(port, host, () => console.log('listening ' + server.address().port));
process.on('SIGTERM', () => { console.log('connections ' + connections); process.exit(0); });
`;

/**
 * Source of the echo client: `node echo-client.mjs HOST PORT COUNT CONCURRENCY TIMEOUT_MS [flows]`.
 * One-shot mode prints one JSON array of `{ seen }` or `{ error }`, one per connection.
 * Flows mode keeps COUNT connections open, prints `{"event":"ready","flows":[…]}`, and on each stdin
 * line `check` sends a probe on every flow and prints `{"event":"check","results":[{id,ok}]}`; on
 * `quit` it closes them and exits.
 */
export const ECHO_CLIENT_SOURCE = `import net from 'node:net';
import readline from 'node:readline';
const [host, portText, countText, concText, timeoutText, mode] = process.argv.slice(2);
const port = Number(portText), count = Number(countText), concurrency = Math.max(1, Number(concText)), timeout = Number(timeoutText);
function connect() {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    let buf = '';
    let done = false;
    const finish = (r) => { if (done) return; done = true; clearTimeout(timer); sock.removeAllListeners('data'); resolve({ sock, ...r }); };
    const timer = setTimeout(() => { finish({ error: 'ETIMEDOUT' }); sock.destroy(); }, timeout);
    sock.on('data', (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) finish({ seen: buf.slice(0, i) }); });
    sock.on('error', (e) => { finish({ error: e.code || e.message }); });
    sock.on('close', () => finish({ error: 'ECLOSED' }));
  });
}
async function oneShot() {
  const results = new Array(count);
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const r = await connect();
      r.sock.destroy();
      results[i] = r.error === undefined ? { seen: r.seen } : { error: r.error };
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  console.log(JSON.stringify(results));
}
async function flows() {
  const list = [];
  for (let i = 0; i < count; i += concurrency) {
    const batch = await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, connect));
    list.push(...batch);
  }
  const flows = list.map((r, id) => ({ id, sock: r.sock, seen: r.seen, error: r.error, broken: r.error !== undefined, buf: '' }));
  for (const f of flows) {
    f.sock.on('data', (d) => { f.buf += d; });
    f.sock.on('error', () => { f.broken = true; });
    f.sock.on('close', () => { f.broken = true; });
  }
  console.log(JSON.stringify({ event: 'ready', flows: flows.map((f) => ({ id: f.id, seen: f.seen, error: f.error })) }));
  let n = 0;
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    if (line === 'quit') { for (const f of flows) f.sock.destroy(); process.exit(0); }
    if (line !== 'check') return;
    const probe = 'p' + (++n) + '\\n';
    for (const f of flows) if (!f.broken) { f.buf = ''; f.sock.write(probe); }
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline && flows.some((f) => !f.broken && !f.buf.includes(probe))) await new Promise((r) => setTimeout(r, 10));
    console.log(JSON.stringify({ event: 'check', results: flows.map((f) => ({ id: f.id, ok: !f.broken && f.buf.includes(probe) })) }));
  });
}
(mode === 'flows' ? flows() : oneShot()).catch((e) => { console.error(String(e && e.stack)); process.exit(1); });
`;

/** A running echo server. */
export interface EchoServer {
  /** Namespace short name. */
  ns: string;
  port: number;
  process: RunningProcess;
  stop(): Promise<void>;
}

/** Starts the echo server inside a namespace and waits until it listens. */
export async function startEchoServer(topo: Topology, ns: string, options: { port?: number; host?: string } = {}): Promise<EchoServer> {
  const file = topo.writeFile('echo-server.mjs', ECHO_SERVER_SOURCE);
  const port = options.port ?? 8089;
  const p = topo.spawn(ns, [process.execPath, file, '--port', String(port), '--host', options.host ?? '0.0.0.0']);
  await p.waitForLine(/^listening \d+$/, 10_000);
  return { ns, port, process: p, stop: () => p.stop(1000) };
}

/** The outcome of one connection: the address the server saw, or the socket error code. */
export type EchoResult = { seen: string; error?: undefined } | { seen?: undefined; error: string };

/** Options of {@link echoFrom}. */
export interface EchoOptions {
  /** Connections to make (default 1). */
  count?: number;
  /** At most this many at once (default 50). */
  concurrency?: number;
  /** Per-connection timeout (default 2000 ms). */
  timeoutMs?: number;
}

/**
 * Connects from inside namespace `ns` to the echo server at `host:port` `count` times and returns, for
 * each connection, the address the server saw (or the error). One process for all connections.
 */
export async function echoFrom(topo: Topology, ns: string, host: string, port: number, options: EchoOptions = {}): Promise<EchoResult[]> {
  const file = topo.writeFile('echo-client.mjs', ECHO_CLIENT_SOURCE);
  const count = options.count ?? 1;
  const timeoutMs = options.timeoutMs ?? 2000;
  const r = await topo.exec(ns, [process.execPath, file, host, String(port), String(count), String(options.concurrency ?? 50), String(timeoutMs)], {
    timeoutMs: timeoutMs * (count + 1) + 10_000,
  });
  const line = r.stdout.trim().split('\n').at(-1) ?? '[]';
  return JSON.parse(line) as EchoResult[];
}

/** A set of long-lived connections from one namespace. */
export interface FlowSet {
  /** Per flow: the address the server saw when it connected, or the error. */
  flows: { id: number; seen?: string; error?: string }[];
  /** Sends a probe on every flow; `ok` is false for a flow that is broken (reset, closed, no echo). */
  check(): Promise<{ id: number; ok: boolean }[]>;
  close(): Promise<void>;
}

/**
 * Opens `count` long-lived connections from `ns` to the echo server and keeps them open until
 * `close()`, so that a test can change the data plane underneath and count the survivors.
 */
export async function openFlows(topo: Topology, ns: string, host: string, port: number, count: number, options: { timeoutMs?: number; concurrency?: number } = {}): Promise<FlowSet> {
  const file = topo.writeFile('echo-client.mjs', ECHO_CLIENT_SOURCE);
  const timeoutMs = options.timeoutMs ?? 2000;
  const p = topo.spawn(ns, [process.execPath, file, host, String(port), String(count), String(options.concurrency ?? 50), String(timeoutMs), 'flows']);
  const ready = JSON.parse(await p.waitForLine(/"event":"ready"/, timeoutMs * Math.ceil(count / 10) + 10_000)) as { flows: FlowSet['flows'] };
  return {
    flows: ready.flows,
    check: async () => {
      const offset = p.stdout().length;
      p.write('check\n');
      const line = await p.waitForLine(/"event":"check"/, timeoutMs + 10_000, offset);
      return (JSON.parse(line) as { results: { id: number; ok: boolean }[] }).results;
    },
    close: async () => {
      p.write('quit\n');
      const t = setTimeout(() => void p.stop(500), 2000);
      await p.exited;
      clearTimeout(t);
    },
  };
}

/** Counts results by the address the server saw (errors under `error:<code>`). */
export function tally(results: readonly EchoResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const k = r.seen ?? `error:${r.error ?? 'unknown'}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Throws unless every result saw an address (for concise test setup). */
export function seenAll(results: readonly EchoResult[]): string[] {
  return results.map((r) => {
    if (r.seen === undefined) throw new EgwError('CommandFailed', `connection failed: ${r.error}`);
    return r.seen;
  });
}
