/**
 * Small self-contained Node programs the mini cluster runs inside namespaces (`ip netns exec NS node
 * FILE …`), written into the topology's temp dir. Plain JavaScript, no build step.
 */

/**
 * `node http-get.mjs URL TIMEOUT_MS`: prints one JSON line `{status, body}` or `{error}`. Used to ask a
 * gateway's `/readiness` from its node, as the kubelet does.
 */
export const HTTP_GET_SOURCE = `import http from 'node:http';
const [url, timeoutText] = process.argv.slice(2);
const timeout = Number(timeoutText || '1000');
const req = http.get(url, { agent: false }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { body += d; });
  res.on('end', () => { console.log(JSON.stringify({ status: res.statusCode, body })); process.exit(0); });
});
req.setTimeout(timeout, () => { console.log(JSON.stringify({ error: 'ETIMEDOUT' })); process.exit(0); });
req.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message })); process.exit(0); });
`;

/**
 * The connection prober: \`node conn-prober.mjs HOST PORT INTERVAL_MS TIMEOUT_MS\` opens a new TCP
 * connection to the echo server every INTERVAL_MS (each waits up to TIMEOUT_MS for the server's
 * "who called" line), prints \`started\` once, and on the stdin line \`quit\` prints one JSON array of
 * \`{ t, ms, seen }\` or \`{ t, ms, error }\` (t: start time, epoch ms) and exits.
 */
export const CONN_PROBER_SOURCE = `import net from 'node:net';
import readline from 'node:readline';
const [host, portText, intervalText, timeoutText] = process.argv.slice(2);
const port = Number(portText), interval = Number(intervalText), timeout = Number(timeoutText);
const results = [];
let pending = 0;
function once() {
  const t = Date.now();
  pending++;
  const sock = net.connect({ host, port });
  let buf = '';
  let done = false;
  const finish = (r) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock.destroy();
    pending--;
    results.push({ t, ms: Date.now() - t, ...r });
  };
  const timer = setTimeout(() => finish({ error: 'ETIMEDOUT' }), timeout);
  sock.on('data', (d) => { buf += d; const i = buf.indexOf('\\n'); if (i >= 0) finish({ seen: buf.slice(0, i) }); });
  sock.on('error', (e) => finish({ error: e.code || e.message }));
  sock.on('close', () => finish({ error: 'ECLOSED' }));
}
const ticker = setInterval(once, interval);
once();
console.log('started');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  // "count SINCE": how many connections started after SINCE (ms since the epoch) have succeeded so far.
  if (line.startsWith('count ')) { const since = Number(line.slice(6)); console.log('count ' + results.filter((r) => r.t > since && r.seen !== undefined).length); return; }
  if (line !== 'quit') return;
  clearInterval(ticker);
  const deadline = Date.now() + timeout + 500;
  while (pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  results.sort((a, b) => a.t - b.t);
  console.log(JSON.stringify(results));
  process.exit(0);
});
`;

/**
 * New connections per second: `node conn-rate.mjs HOST PORT COUNT CONCURRENCY` makes COUNT connections,
 * CONCURRENCY at a time, each waiting for the echo server's first line and closing; prints one JSON line
 * `{ connections, errors, seconds, perSecond }`. A fixed count (not a duration) keeps the client's
 * ephemeral ports from running out in TIME_WAIT, which would measure the client, not the path.
 */
export const CONN_RATE_SOURCE = `import net from 'node:net';
const [host, portText, countText, concText] = process.argv.slice(2);
const port = Number(portText), count = Number(countText), concurrency = Number(concText);
let connections = 0, errors = 0, started = 0;
const start = process.hrtime.bigint();
function one() {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let done = false;
    const finish = (ok) => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); if (ok) connections++; else errors++; resolve(); };
    const timer = setTimeout(() => finish(false), 2000);
    sock.on('data', (d) => { if (String(d).includes('\\n')) finish(true); });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
  });
}
async function worker() { while (started < count) { started++; await one(); } }
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ connections, errors, seconds, perSecond: connections / seconds }));
`;

/**
 * TCP round-trip time: \`node tcp-rtt.mjs HOST PORT COUNT\` opens one connection to the echo server,
 * sends a short line and waits for its echo COUNT times (after 100 unrecorded ones); prints one JSON line
 * \`{ n, p50Us, p90Us, p99Us }\`.
 */
export const TCP_RTT_SOURCE = `import net from 'node:net';
const [host, portText, countText] = process.argv.slice(2);
const port = Number(portText), count = Number(countText);
const sock = net.connect({ host, port });
sock.setNoDelay(true);
let buf = '';
let waiter = null;
sock.on('data', (d) => { buf += d; if (waiter !== null && buf.includes('\\n')) { const w = waiter; waiter = null; const i = buf.indexOf('\\n'); buf = buf.slice(i + 1); w(); } });
sock.on('error', (e) => { console.error(String(e)); process.exit(1); });
const line = () => new Promise((r) => { if (buf.includes('\\n')) { const i = buf.indexOf('\\n'); buf = buf.slice(i + 1); r(); } else waiter = r; });
await line();
const samples = [];
for (let i = 0; i < count + 100; i++) {
  const t = process.hrtime.bigint();
  sock.write('ping\\n');
  await line();
  if (i >= 100) samples.push(Number(process.hrtime.bigint() - t) / 1000);
}
sock.destroy();
samples.sort((a, b) => a - b);
const q = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
console.log(JSON.stringify({ n: samples.length, p50Us: q(50), p90Us: q(90), p99Us: q(99) }));
`;
