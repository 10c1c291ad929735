import type { CommandResult, RunOptions, Shell } from '../platform/shell.js';

/**
 * A {@link Shell} whose every command runs inside a named network namespace (`ip netns exec NAME …`).
 * Lets the drivers, which speak to "the current namespace", program a node or pod namespace made by
 * the topology helper or the lab, unchanged.
 */
export class NetnsShell implements Shell {
  constructor(
    private readonly inner: Shell,
    /** The namespace name as listed by `ip netns list`. */
    readonly namespace: string,
  ) {}

  run(argv: readonly string[], options?: RunOptions): Promise<CommandResult> {
    return this.inner.run(['ip', 'netns', 'exec', this.namespace, ...argv], options);
  }
}
