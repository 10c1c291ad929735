/**
 * The benchmark runner: `npm run bench -- NAME` (after a build, `node dist/bench/main.js NAME`).
 * Prints the benchmark's readable table(s), then, as the very last line, one JSON object of its figures.
 * With no NAME or an unknown one it lists the benchmarks and exits 2.
 *
 * To add a benchmark: write bench/NAME.ts exporting a {@link Benchmark} (see bench/harness.ts and
 * bench/selectors.ts), then add one line to `benchmarks` below.
 */
import type { Benchmark } from './harness.js';
import { figuresLine } from './harness.js';
import { selectorsBenchmark } from './selectors.js';
import { datastoreBenchmark } from './datastore.js';
import { ec2CallsBenchmark } from './ec2-calls.js';
import { awsConvergeBenchmark } from './aws-converge.js';
import { calcScaleBenchmark } from './calc-scale.js';
import { ipamBenchmark } from './ipam.js';
import { cniBenchmark } from './cni.js';
import { dataplaneBenchmark } from './dataplane.js';
import { failoverBenchmark } from './failover.js';
import { eipFailoverBenchmark } from './eip-failover.js';
import { kubernetesBenchmark } from './kubernetes.js';
import { rolloutBenchmark } from './rollout.js';

/** Every benchmark, by name. One line each. */
const benchmarks: readonly Benchmark[] = [
  selectorsBenchmark,
  datastoreBenchmark,
  ec2CallsBenchmark,
  awsConvergeBenchmark,
  calcScaleBenchmark,
  ipamBenchmark,
  cniBenchmark,
  dataplaneBenchmark,
  failoverBenchmark,
  eipFailoverBenchmark,
  kubernetesBenchmark,
  rolloutBenchmark,
];

function usage(): string {
  const width = Math.max(...benchmarks.map((b) => b.name.length));
  const lines = benchmarks.map((b) => `  ${b.name.padEnd(width)}  ${b.description}`);
  return ['usage: npm run bench -- NAME', '', 'benchmarks:', ...lines].join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const name = argv[0];
  if (name === '--help' || name === '-h' || name === '--list' || name === 'list') {
    console.log(usage());
    return 0;
  }
  const bench = benchmarks.find((b) => b.name === name);
  if (name === undefined || bench === undefined) {
    if (name !== undefined) console.error(`unknown benchmark: ${name}\n`);
    console.error(usage());
    return 2;
  }
  console.log(`benchmark ${bench.name}: ${bench.description}`);
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  const figures = await bench.run();
  console.log('');
  console.log(figuresLine(bench.name, figures));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
