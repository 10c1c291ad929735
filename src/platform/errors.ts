/**
 * The one error class of egw. Every error that crosses a module boundary is an {@link EgwError}
 * with a stable `code` (callers switch on it, never on the message), a human `message` that says
 * what is wrong, and a `hint` that says what to do about it.
 */

/** How a caller should treat an error: try again, slow down and try again, or give up. */
export type RetryClass = 'retry' | 'throttle' | 'terminal';

/** Stable error codes. Add new ones here; never reuse or rename one. */
export type ErrorCode =
  // input and validation
  | 'InvalidInput'
  | 'InvalidSelector'
  | 'UnknownKind'
  // datastore
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Compacted'
  | 'DatastoreUnavailable'
  | 'DatastoreClosed'
  /** The backend cannot do this (e.g. a multi-key commit on the Kubernetes datastore). */
  | 'Unsupported'
  // ipam
  | 'PoolExhausted'
  | 'NoQualifiedPool'
  // processes and the kernel
  | 'CommandFailed'
  | 'Timeout'
  // linux data plane
  | 'RouteTablesExhausted'
  | 'NexthopIdsExhausted'
  | 'InterfaceNotFound'
  // AWS
  | 'AwsError'
  // anything else
  | 'Internal';

export interface EgwErrorOptions {
  /** What to do about it, in one sentence. Shown to users after the message. */
  hint?: string;
  retry?: RetryClass;
  cause?: unknown;
  /** Structured facts for logs and programmatic callers (never needed to understand the message). */
  details?: Record<string, unknown>;
}

const defaultRetry: Partial<Record<ErrorCode, RetryClass>> = {
  Conflict: 'retry',
  DatastoreUnavailable: 'retry',
  Timeout: 'retry',
};

export class EgwError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly retry: RetryClass;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: EgwErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EgwError';
    this.code = code;
    this.hint = options.hint;
    this.retry = options.retry ?? defaultRetry[code] ?? 'terminal';
    this.details = options.details ?? {};
  }

  /** The message followed by the hint, as shown to a user. */
  describe(): string {
    return this.hint === undefined ? this.message : `${this.message} (${this.hint})`;
  }
}

/** True when `err` is an {@link EgwError}, optionally with one of the given codes. */
export function isEgwError(err: unknown, ...codes: ErrorCode[]): err is EgwError {
  return err instanceof EgwError && (codes.length === 0 || codes.includes(err.code));
}

/** A printable message for any thrown value, without a stack trace. */
export function errorMessage(err: unknown): string {
  if (err instanceof EgwError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
