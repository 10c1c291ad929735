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
  if (line !== 'quit') return;
  clearInterval(ticker);
  const deadline = Date.now() + timeout + 500;
  while (pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  results.sort((a, b) => a.t - b.t);
  console.log(JSON.stringify(results));
  process.exit(0);
});
`;
