import { createHash } from 'node:crypto';

/** A source of uniformly distributed numbers in [0, 1). */
export interface Random {
  next(): number;
}

/**
 * A small seeded PRNG (mulberry32). Not for cryptography: it exists so that failure injection and
 * latency jitter replay identically for the same seed and the same sequence of requests.
 */
export class SeededRandom implements Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/**
 * Derives an independent stream seed from a base seed and a name, so that (for example) turning
 * latency jitter on does not shift the sequence of injected failures.
 */
export function deriveSeed(seed: number, stream: string): number {
  return createHash('sha256').update(`${seed}:${stream}`).digest().readUInt32BE(0);
}

/** `n` lowercase hex characters derived from `input` (stable across runs and machines). */
export function stableHex(input: string, n: number): string {
  return createHash('sha256').update(input).digest('hex').slice(0, n);
}
