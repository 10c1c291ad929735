/**
 * Small self-contained programs the lab runs (plain JavaScript written into the state directory and run
 * with `node`), so that they start in tens of milliseconds and need no build step.
 */

/**
 * The external servers' echo server: `node echo-server.mjs PORT NAME`. Listens on every address of its
 * namespace. For each connection it prints — to its log and to the caller — the line netcat's
 * `nc -l -k -v` prints, `Connection from <source IP> <source port> received`, then echoes what it
 * receives. A caller that sends nothing within 2 s is disconnected (so `nc <server> 8089 </dev/null`
 * returns, as the reference's step expects); one that talks is kept as long as it likes.
 */
export const LAB_ECHO_SERVER_SOURCE = `import net from 'node:net';
const port = Number(process.argv[2] || '8089');
const name = process.argv[3] || 'server';
let connections = 0;
const server = net.createServer((sock) => {
  connections++;
  sock.setNoDelay(true);
  sock.on('error', () => {});
  const ip = String(sock.remoteAddress || '').replace(/^::ffff:/, '');
  const line = 'Connection from ' + ip + ' ' + sock.remotePort + ' received';
  console.log(new Date().toISOString() + ' ' + name + ' ' + sock.localAddress.replace(/^::ffff:/, '') + ':' + port + ' ' + line);
  sock.write(line + '\\n');
  let talked = false;
  const idle = setTimeout(() => { if (!talked) sock.end(); }, 2000);
  sock.on('data', (d) => { talked = true; sock.write(d); });
  sock.on('end', () => { clearTimeout(idle); sock.end(); });
  sock.on('close', () => clearTimeout(idle));
});
server.on('error', (e) => { console.error(String(e && e.message)); process.exit(1); });
server.listen(port, '0.0.0.0', () => console.log('listening ' + port + ' as ' + name));
process.on('SIGTERM', () => { console.log('connections ' + connections); process.exit(0); });
`;

/**
 * A byte relay between a TCP listener and a Unix socket, either way round:
 * `node relay.mjs tcp-to-unix HOST:PORT SOCKET` or `node relay.mjs unix-to-tcp SOCKET HOST:PORT[,HOST:PORT…]`.
 * The lab reaches an etcd on the host's loopback through two of them: one in the root namespace
 * (socket → etcd), one in the control plane's namespace (VPC address → socket). A Unix socket is a
 * file, not a network link: no namespace is connected to the host's network.
 */
export const LAB_RELAY_SOURCE = `import net from 'node:net';
import fs from 'node:fs';
const [mode, from, to] = process.argv.slice(2);
function pipe(a, connect) {
  a.pause();
  const b = connect();
  let open = false;
  b.on('connect', () => { open = true; a.pipe(b); b.pipe(a); a.resume(); });
  const done = () => { a.destroy(); b.destroy(); };
  a.on('error', done); b.on('error', done); a.on('close', done); b.on('close', done);
  return open;
}
function hostPort(text) { const i = text.lastIndexOf(':'); return { host: text.slice(0, i).replace(/^\\[|\\]$/g, ''), port: Number(text.slice(i + 1)) }; }
let server;
if (mode === 'tcp-to-unix') {
  const { host, port } = hostPort(from);
  server = net.createServer((a) => pipe(a, () => net.connect({ path: to })));
  server.listen(port, host, () => console.log('relay ' + from + ' -> ' + to));
} else if (mode === 'unix-to-tcp') {
  const targets = to.split(',').map(hostPort);
  let next = 0;
  try { fs.unlinkSync(from); } catch {}
  server = net.createServer((a) => pipe(a, () => { const t = targets[next++ % targets.length]; return net.connect(t); }));
  server.listen(from, () => console.log('relay ' + from + ' -> ' + to));
} else {
  console.error('usage: relay.mjs tcp-to-unix HOST:PORT SOCKET | unix-to-tcp SOCKET HOST:PORT[,…]');
  process.exit(2);
}
server.on('error', (e) => { console.error(String(e && e.message)); process.exit(1); });
process.on('SIGTERM', () => { server.close(); if (mode === 'unix-to-tcp') { try { fs.unlinkSync(from); } catch {} } process.exit(0); });
`;

/**
 * The lab's probe: `node probe.mjs TIMEOUT_MS [--from IP] HOST:PORT…` connects to every target at once
 * and prints one JSON line per target, `{target, seen, line}` (the source address the server reported)
 * or `{target, error}` (the socket error, or ETIMEDOUT), then exits. `verify` runs it inside each
 * client pod's namespace.
 */
export const LAB_PROBE_SOURCE = `import net from 'node:net';
const args = process.argv.slice(2);
const timeout = Number(args.shift() || '3000');
let localAddress;
if (args[0] === '--from') { args.shift(); localAddress = args.shift(); }
function probe(target) {
  return new Promise((resolve) => {
    const i = target.lastIndexOf(':');
    const sock = net.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)), ...(localAddress ? { localAddress } : {}) });
    let buf = '';
    let done = false;
    const finish = (r) => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); resolve({ target, ...r }); };
    const timer = setTimeout(() => finish({ error: 'ETIMEDOUT' }), timeout);
    sock.on('data', (d) => {
      buf += d;
      const n = buf.indexOf('\\n');
      if (n < 0) return;
      const line = buf.slice(0, n);
      const m = /^Connection from (\\S+) /.exec(line);
      finish(m ? { seen: m[1], line } : { error: 'EPROTO', line });
    });
    sock.on('error', (e) => finish({ error: e.code || e.message }));
    sock.on('close', () => finish({ error: 'ECLOSED' }));
  });
}
const results = await Promise.all(args.map(probe));
for (const r of results) console.log(JSON.stringify(r));
`;
