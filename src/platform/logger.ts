import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';

/**
 * Structured logging: constant messages, facts in fields. `log.info({ pool, ip }, 'address allocated')`.
 * A pino logger; components take a child with their name bound.
 */
export type Logger = PinoLogger;

export interface LoggerOptions {
  /** Component name, bound as `component` on every line. */
  component: string;
  /** pino level; defaults to EGW_LOG_LEVEL or `info`. */
  level?: string;
  /** Where lines go: a file descriptor (default 2, stderr, so that stdout stays for command output). */
  fd?: number;
}

/** Makes a logger writing JSON lines to stderr (or the given fd). */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    { level: options.level ?? process.env['EGW_LOG_LEVEL'] ?? 'info', base: { component: options.component } },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
}

/** A logger that drops everything (for tests and quiet commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
