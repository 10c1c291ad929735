/**
 * Where new pods get their name suffixes and uids. Injected so that tests can name pods predictably.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { NAME_ALPHABET } from './pods.js';

/** A source of identifiers for new pods. */
export interface IdSource {
  /** Five characters from Kubernetes' name alphabet (`bcdfghjklmnpqrstvwxz2456789`). */
  podSuffix(): string;
  /** A unique id for `metadata.uid`. */
  uid(): string;
}

/** Random suffixes and UUIDs, as the API server makes them. */
export class RandomIds implements IdSource {
  podSuffix(): string {
    let out = '';
    for (let i = 0; i < 5; i++) out += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)] ?? 'b';
    return out;
  }

  uid(): string {
    return randomUUID();
  }
}

/**
 * Predictable identifiers for tests: suffixes `bbbbb`, `bbbbc`, … (counting in the name alphabet) and
 * uids `uid-1`, `uid-2`, ….
 */
export class SequentialIds implements IdSource {
  private n = 0;
  private u = 0;

  podSuffix(): string {
    let v = this.n++;
    let out = '';
    for (let i = 0; i < 5; i++) {
      out = (NAME_ALPHABET[v % NAME_ALPHABET.length] ?? 'b') + out;
      v = Math.floor(v / NAME_ALPHABET.length);
    }
    return out;
  }

  uid(): string {
    this.u += 1;
    return `uid-${this.u}`;
  }
}
