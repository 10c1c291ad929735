import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deadRunPrefixes, RUN_TAGS, runPrefix, tagOf } from './support/run-prefix.js';

// The per-run names of the e2e suite: short enough for the layouts, and a sweep never takes a live run's.
describe('run prefixes', () => {
  it('fit the topology and lab layouts (2-8 characters) for every tag, up to the largest pid Linux allows', () => {
    for (const tag of RUN_TAGS) {
      for (const pid of [1, 300, 32768, 4194304]) expect(runPrefix(tag, pid)).toMatch(/^[a-z][a-z0-9]{1,7}$/);
      expect(tagOf(runPrefix(tag))).toBe(tag);
    }
    expect(runPrefix('deg')).toBe(`deg${process.pid.toString(36)}`);
  });

  it("lists only dead runs' prefixes: never this process's, never a live process's, never a foreign name", () => {
    // A pid that exists (our parent) and one that does not (searched downwards from the largest).
    const live = process.ppid;
    let dead = 4194303;
    while (existsSync(`/proc/${dead}`)) dead--;
    const names = [
      `${runPrefix('deg')}-n1`,
      `${runPrefix('deg', live)}-n1`,
      `${runPrefix('deg', dead)}-n1`,
      `${runPrefix('deg', dead)}-rt`,
      `${runPrefix('dfo', dead)}-n1`,
      'deg5-n1', // pid 5: below the allocator's floor, not a run's
      'degree', // no dash after the pid part
      'dpeg-n1',
    ];
    expect(deadRunPrefixes('deg', names)).toEqual([runPrefix('deg', dead)]);
  });
});
