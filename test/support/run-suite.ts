// Test runner: `node test/support/run-suite.ts [unit] [integration] [e2e] [ava arguments, files]`.
// Starts what the chosen suites need once (see platform.ts), runs ava for each suite, tears
// everything down however the run ends, and closes with the plain line `N passed, N failed`
// (ava prints no such total across suites).
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAvaSummary, type Counts } from './ava-summary.ts';
import { startPlatform, repoRoot } from './platform.ts';
import { runExitCleanups } from './process.ts';

const SUITES = {
  unit: { databases: false, kubernetes: false },
  integration: { databases: true, kubernetes: false },
  e2e: { databases: true, kubernetes: true },
} as const;
type Suite = keyof typeof SUITES;

function runAva(suite: Suite, extraArgs: string[], env: Record<string, string>): Promise<Counts> {
  return new Promise((resolve, reject) => {
    const ava = join(repoRoot, 'node_modules', '.bin', 'ava');
    const child = spawn(ava, ['--config', `ava.${suite}.config.js`, ...extraArgs], {
      cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('close', (code) => { resolve(parseAvaSummary(output, code ?? 1)); });
  });
}

async function main(argv: string[]): Promise<number> {
  // Suite names choose suites; everything else (files, ava flags) goes to ava.
  const names = argv.filter((arg) => arg in SUITES) as Suite[];
  const avaArgs = argv.filter((arg) => !(arg in SUITES) && arg !== '--');
  const suites = names.length > 0 ? names : (Object.keys(SUITES) as Suite[]);
  const needs = {
    databases: suites.some((s) => SUITES[s].databases),
    kubernetes: suites.some((s) => SUITES[s].kubernetes),
  };
  const began = performance.now();
  // Every Node process the tests start (ava workers, operators, dmctl, step pods) shares one
  // compile cache: the sources are type-stripped and compiled once per run, not once per process.
  process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'dmo-node-compile-cache');
  const total: Counts = { passed: 0, failed: 0, skipped: 0 };
  const platform = needs.databases || needs.kubernetes ? await startPlatform(needs) : undefined;
  if (platform) console.log(`platform started: ${JSON.stringify(platform.startSeconds)} (seconds)`);
  try {
    for (const suite of suites) {
      console.log(`\n# ${suite} tests`);
      const counts = await runAva(suite, avaArgs, platform?.env ?? {});
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.skipped += counts.skipped;
    }
  } finally {
    await platform?.stop();
  }
  console.log(`\ntotal time ${Math.round((performance.now() - began) / 1000)} s`);
  console.log(`${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}`);
  // A skipped test checks nothing: CI treats it as a failure.
  return total.failed > 0 || (process.env.CI && total.skipped > 0) ? 1 : 0;
}

main(process.argv.slice(2)).then(
  async (code) => {
    await runExitCleanups();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    await runExitCleanups();
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
