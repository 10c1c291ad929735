import { EgwError } from '../platform/errors.js';

/**
 * Thrown by a command to end the process with a given exit code after it has printed what it had to say
 * (e.g. `validate` printing each problem, then exiting 1). The top level prints nothing more for it.
 */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** A usage mistake: printed as `error: …` and exits 2. */
export function usageError(message: string, hint?: string): EgwError {
  return new EgwError('InvalidInput', message, { ...(hint === undefined ? {} : { hint }), details: { exitCode: 2 } });
}
