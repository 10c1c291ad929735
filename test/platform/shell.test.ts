import { describe, expect, it } from 'vitest';
import { ExecShell } from '../../src/platform/shell.js';
import type { EgwError} from '../../src/platform/errors.js';
import { isEgwError } from '../../src/platform/errors.js';

describe('ExecShell', () => {
  const shell = new ExecShell();

  it('passes argv verbatim and feeds stdin', async () => {
    const r = await shell.run(['sh', '-c', 'printf "%s|" "$0" "$1"; cat', 'a b', '$HOME'], { input: 'in' });
    expect(r.stdout).toBe('a b|$HOME|in');
    expect(r.exitCode).toBe(0);
  });

  it('throws CommandFailed with stderr on a non-zero exit', async () => {
    const err: unknown = await shell.run(['sh', '-c', 'echo nope >&2; exit 3']).catch((e: unknown) => e);
    expect(isEgwError(err, 'CommandFailed')).toBe(true);
    expect((err as EgwError).message).toContain('nope');
  });

  it('returns the exit code when failure is allowed', async () => {
    const r = await shell.run(['sh', '-c', 'exit 4'], { allowFailure: true });
    expect(r.exitCode).toBe(4);
  });

  it('kills a command that runs too long', async () => {
    const err: unknown = await shell.run(['sleep', '5'], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(isEgwError(err, 'Timeout')).toBe(true);
  });

  it('says which program is missing', async () => {
    const err: unknown = await shell.run(['egw-no-such-program']).catch((e: unknown) => e);
    expect((err as EgwError).message).toContain('egw-no-such-program');
  });
});
