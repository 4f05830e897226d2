// Totals from ava's closing lines; ava prints none across several runs, and CI needs one.

export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Reads ava's closing lines ("3 tests passed", "1 test failed", "2 known failures", ...). */
export function parseAvaSummary(output: string, exitCode: number): Counts {
  const count = (pattern: RegExp): number => [...output.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
  // With any failure ava prints no "N tests passed" line, so passes are also counted per test.
  const passed = Math.max(count(/^\s*(\d+) tests? passed/gm), [...output.matchAll(/^\s*✔ (?!\[expected fail\])/gm)].length);
  let failed = count(/^\s*(\d+) tests? failed/gm) + count(/^\s*(\d+) hooks? failed/gm) + count(/^\s*(\d+) uncaught exceptions?/gm)
    + count(/^\s*(\d+) unhandled rejections?/gm) + count(/^\s*(\d+) tests? remained pending/gm);
  const skipped = count(/^\s*(\d+) tests? skipped/gm) + count(/^\s*(\d+) tests? todo/gm) + count(/^\s*(\d+) known failures?/gm);
  // A crash, a timeout or a file that ran no test is a failure even when ava counted none.
  if (exitCode !== 0 && failed === 0) failed = 1;
  return { passed, failed, skipped };
}
