// helm and kustomize, built by scripts/build-tools.sh into a cache directory keyed by the
// versions it pins; e2e tests find them here.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './platform.ts';
import { run } from './process.ts';

export const chartDir = join(repoRoot, 'charts', 'datamigration-operator');

/** The directory scripts/build-tools.sh builds helm and kustomize into, for the versions it pins. */
export function toolsDir(): string {
  const script = readFileSync(join(repoRoot, 'scripts', 'build-tools.sh'), 'utf8');
  const version = (name: string): string => {
    const value = new RegExp(`^${name}=(\\S+)`, 'm').exec(script)?.[1];
    if (!value) throw new Error(`scripts/build-tools.sh pins no ${name}`);
    return value;
  };
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'datamigration-operator', `tools-helm-${version('helm_version')}-kustomize-${version('kustomize_version')}`);
}

export function tool(name: 'helm' | 'kustomize'): string {
  const path = join(toolsDir(), name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`bash scripts/build-tools.sh\` (npm run setup does)`);
  return path;
}

/** Runs a command in the repository; its stdout, or an error with everything it printed. */
export async function checked(command: string, args: string[], input?: string): Promise<string> {
  const result = await run(command, args, { cwd: repoRoot, ...(input === undefined ? {} : { input }) });
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** `helm template` of the chart, with --set values. */
export const helmTemplate = (release: string, namespace: string, set: string[] = []): Promise<string> =>
  checked(tool('helm'), ['template', release, chartDir, '--namespace', namespace, '--include-crds', ...set.flatMap((s) => ['--set', s])]);
