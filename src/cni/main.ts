#!/usr/bin/env node
/**
 * The `egw-ipam` executable: a CNI IPAM plugin run by the main plugin (e.g. ptp) with the CNI_* environment
 * and the network configuration on stdin. Prints the result (or a CNI error object) on stdout; logs, if
 * any, go to stderr. Imports only what one invocation needs, to start fast.
 */
import { runCni } from './plugin.js';

/** A network configuration is a few hundred bytes; more than this is refused unread (issue 11). */
const MAX_STDIN_BYTES = 1024 * 1024;

class StdinTooLarge extends Error {}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY === true) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) {
      process.stdin.destroy();
      throw new StdinTooLarge(`the network configuration on stdin is larger than ${MAX_STDIN_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

readStdin()
  .then(
    (stdin) => runCni(process.env, stdin),
    (err: unknown) => {
      if (!(err instanceof StdinTooLarge)) throw err;
      // CNI error 6: failed to decode the network configuration.
      return { stdout: `${JSON.stringify({ cniVersion: '1.0.0', code: 6, msg: 'network configuration too large', details: err.message })}\n`, exitCode: 1 };
    },
  )
  .then(
    (out) => {
      process.stdout.write(out.stdout);
      process.exitCode = out.exitCode;
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: 'I/O failure', details: err instanceof Error ? err.message : String(err) })}\n`);
      process.exitCode = 1;
    },
  );
