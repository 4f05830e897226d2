#!/usr/bin/env -S node --max-semi-space-size=32 --liftoff-only
// dmctl: the engine on a laptop and in a Job.
//   dmctl plan -f manifest.yaml       what a run would do; writes nothing
//   dmctl run  -f manifest.yaml       schema, copy, (Trickle) sync, then validation
//   dmctl validate -f manifest.yaml   validation only (read only on both sides)
//   dmctl step schema|copy|sync|validate|rollback -f manifest.yaml   one step, as a Job runs it
//   dmctl step catchup|release -f manifest.yaml   ChangeCapture: catch up behind the write fence and validate; drop the capture
//   dmctl step fence|unfence -f manifest.yaml     ChangeCapture, fence type SourceReadOnly: make the source read-only; put its setting back
//   dmctl step copy --pod i/n -f manifest.yaml   pod i's share of a copy spread over n pods
//   dmctl lint -f manifest.yaml       what the API server would say of it (schema, defaults, CEL rules)
//   dmctl retire -f manifest.yaml     the migration is finished: its checkpoints go, its tables are the application's
//   dmctl cleanup -f manifest.yaml    no migration needs the target's bookkeeping any more: its dataops_* tables go
// Connection URLs come from --source-url/--target-url or DMO_SOURCE_URL/DMO_TARGET_URL (in a
// Job: env from the referenced Secrets). Progress goes to the terminal, or JSON lines with --json
// or when stdout is not a terminal. Exit codes: src/cli/exit-codes.ts (documented in the README).
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DataMigration } from '../api/types.ts';
import { redactSecrets, secretsOfUrls } from '../engine/db/redact.ts';
import type { TlsOptions } from '../engine/db/session.ts';
import { engineSettings } from '../engine/pipeline/settings.ts';
import { copyStep, planStep, PlanRefusedError, schemaStep, syncStep, type CopyStepResult, type StepContext } from '../engine/pipeline/steps.ts';
import { ValidationFailedError } from '../engine/pipeline/refused.ts';
import { parsePodShare, type PodShare } from '../engine/copy/units.ts';
import { cleanupStep, retireStep, rollbackStep, validateStep } from '../engine/pipeline/validate-steps.ts';
import { catchupStep, releaseStep, type ReleaseStepResult } from '../engine/pipeline/capture-steps.ts';
import { fenceStep, unfenceStep, type FenceStepResult } from '../engine/pipeline/fence-steps.ts';
import { validateOptionsOf } from '../engine/validate/validate.ts';
import { LOG_FORMATS, logFormatOf } from '../api/log-schema.ts';
import { CliError, EXIT, type ExitCode } from './exit-codes.ts';
import { ConnectionSettingsError, engineOfUrl } from '../engine/db/connection-options.ts';
import type { Engine } from '../engine/db/dialect.ts';
import { lintCommand } from './lint.ts';
import { loadManifest, parseManifest } from './manifest.ts';
import { boundedResult, writeTermination } from './termination.ts';
import { captureSyncOf, stepResult, validateResult } from './step-result.ts';
import { jsonReporter, progressTracker, terminalReporter, type Reporter } from './reporter.ts';

const USAGE = `usage: dmctl <plan|run|validate|lint|retire|cleanup|step schema|step copy|step sync|step validate|step fence|step catchup|step unfence|step release|step rollback> -f manifest.yaml [options]
  -f, --file <path>        manifest holding the DataMigration
      --name <name>        which DataMigration, when the file holds several
      --source-url <url>   source connection URL (default: $DMO_SOURCE_URL)
      --target-url <url>   target connection URL (default: $DMO_TARGET_URL)
      --migrations-dir <d> directory of V/U migration files (default: $DMO_MIGRATIONS_DIR)
      --json               JSON lines on stdout (the default when stdout is not a terminal)
      --skip-validation    run: schema and copy only
      --to-version <v>     step rollback: the schema version to return to (default: $DMO_ROLLBACK_TO_VERSION; empty: none)
      --pod <i>/<n>        step copy: copy pod i's share of n (default: $JOB_COMPLETION_INDEX of strategy.copyPods, else all)`;

const COMMANDS = ['plan', 'run', 'validate', 'retire', 'cleanup', 'step schema', 'step copy', 'step sync', 'step validate', 'step fence', 'step catchup', 'step unfence', 'step release', 'step rollback'];

const OPTIONS = {
  file: { type: 'string', short: 'f' },
  name: { type: 'string' },
  'source-url': { type: 'string' },
  'target-url': { type: 'string' },
  'migrations-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  'skip-validation': { type: 'boolean', default: false },
  'to-version': { type: 'string' },
  pod: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** TLS for one side from the manifest; the CA PEM from a file named by the environment (the Job mounts it). */
function tlsFor(endpoint: DataMigration['spec']['source'], caFileVariable: string): TlsOptions | undefined {
  if (!endpoint.tls) return undefined;
  const caFile = process.env[caFileVariable];
  return { mode: endpoint.tls.mode, ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}) };
}

/**
 * A side's connection: its URL (from the flag or the variable) with the spec's TLS. A URL of
 * another engine than the spec names is bad input (exit 2), said without the URL: the run would
 * otherwise fail later, or plan with the wrong dialect.
 */
function endpoint(url: string | undefined, flag: string, variable: string, tls: TlsOptions | undefined, engine: Engine): StepContext['source'] {
  const side = flag.replace('-url', '');
  if (!url) throw new CliError(`no ${side} connection URL: pass --${flag} or set ${variable}`, EXIT.usage);
  let named: Engine;
  try {
    named = engineOfUrl(url);
  } catch (error) {
    throw new CliError(`the ${side} connection URL: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
  if (named !== engine) throw new CliError(`spec.${side}.engine is ${engine}, but the ${side} connection URL (--${flag} or ${variable}) is a ${named} URL: fix one of them`, EXIT.usage);
  return { url, ...(tls ? { tls } : {}) };
}

/**
 * Which share of the copy this process takes: --pod i/n; in an Indexed Job the index Kubernetes
 * sets (JOB_COMPLETION_INDEX) of the manifest's strategy.copyPods; otherwise all of it.
 */
export function podShareOf(command: string, flag: string | undefined, completionIndex: string | undefined, copyPods: number): PodShare | undefined {
  if (flag !== undefined) {
    if (command !== 'step copy') throw new CliError(`--pod is for step copy only\n${USAGE}`, EXIT.usage);
    const share = parsePodShare(flag);
    if (!share) throw new CliError(`--pod ${flag}: expected i/n with 0 <= i < n`, EXIT.usage);
    return share;
  }
  if (command !== 'step copy' || completionIndex === undefined || completionIndex === '') return undefined;
  const share = parsePodShare(`${completionIndex}/${String(copyPods)}`);
  if (!share) throw new CliError(`JOB_COMPLETION_INDEX ${completionIndex} is not a pod of strategy.copyPods ${String(copyPods)}`, EXIT.usage);
  return share;
}

async function runStep<T>(reporter: Reporter, step: string, fn: () => Promise<T>, describe: (result: T) => string): Promise<T> {
  reporter.emit({ event: 'step', step, state: 'started' });
  const result = await fn();
  reporter.emit({ event: 'step', step, state: 'succeeded', message: describe(result) });
  return result;
}

export async function main(argv: string[], signal: AbortSignal): Promise<ExitCode> {
  if (argv[0] === 'lint') return lintCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`, EXIT.usage);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const command = positionals.join(' ');
  if (!COMMANDS.includes(command)) throw new CliError(`unknown command "${command}"\n${USAGE}`, EXIT.usage);
  if (!values.file && !process.env.DMO_MANIFEST) throw new CliError(`-f manifest.yaml is required\n${USAGE}`, EXIT.usage);

  // In a Job the operator passes the manifest in DMO_MANIFEST (JSON) rather than as a file.
  const migration = values.file ? await loadManifest(values.file, values.name) : parseManifest(process.env.DMO_MANIFEST ?? '', 'DMO_MANIFEST');
  const logFormat = logFormatOf(process.env.LOG_FORMAT);
  if (logFormat === undefined) throw new CliError(`LOG_FORMAT "${process.env.LOG_FORMAT ?? ''}" is not one of ${LOG_FORMATS.join(', ')}`, EXIT.usage);
  const reporter = values.json || !process.stdout.isTTY
    ? jsonReporter(undefined, { namespace: migration.metadata?.namespace ?? 'default', name: migration.metadata?.name ?? '' }, logFormat)
    : terminalReporter();
  const migrationsDir = values['migrations-dir'] ?? process.env.DMO_MIGRATIONS_DIR;
  const settings = engineSettings(migration);
  const pod = podShareOf(command, values.pod, process.env.JOB_COMPLETION_INDEX, settings.copyPods);
  const minRowsToShard = Number(process.env.DMO_MIN_ROWS_TO_SHARD ?? '');
  const context: StepContext = {
    notice: (message) => { reporter.emit({ event: 'note', message }); },
    source: endpoint(values['source-url'] ?? process.env.DMO_SOURCE_URL, 'source-url', 'DMO_SOURCE_URL', tlsFor(migration.spec.source, 'DMO_SOURCE_CA_FILE'), migration.spec.source.engine),
    target: endpoint(values['target-url'] ?? process.env.DMO_TARGET_URL, 'target-url', 'DMO_TARGET_URL', tlsFor(migration.spec.target, 'DMO_TARGET_CA_FILE'), migration.spec.target.engine),
    settings: {
      ...settings,
      ...(process.env.DMO_MYSQL_BULK === 'insert' ? { mysqlBulk: 'insert' as const } : {}),
      ...(Number.isSafeInteger(minRowsToShard) && minRowsToShard > 0 ? { minRowsToShard } : {}),
    },
    signal,
    ...(pod ? { pod } : {}),
    ...(migrationsDir ? { migrationsDir } : {}),
  };

  try {
    if (command === 'plan') {
      const result = await planStep(context);
      reporter.emit({ event: 'plan', plan: describePlan(result) });
      reporter.say(formatPlan(result));
      for (const warning of result.plan.warnings) reporter.emit({ event: 'warning', message: warning });
      if (result.plan.errors.length > 0) throw new PlanRefusedError(result.plan.errors);
      return EXIT.ok;
    }
    const results: Record<string, unknown> = {};
    if (command === 'run' && context.settings.incremental?.mode === 'ChangeCapture') {
      // Nothing would end the stream but Ctrl-C, and the validation after it would see a source still written.
      throw new CliError('`dmctl run` does not run strategy.incremental.mode ChangeCapture: the change stream runs until writes to the source are fenced, '
        + 'which the operator does at the cutover. By hand: `step copy`, `step sync` (stop it with Ctrl-C once the writers have stopped), `step catchup`, `step release`', EXIT.usage);
    }
    if (command === 'run' || command === 'step schema') {
      const schema = await runStep(reporter, 'schema', () => schemaStep(context), (r) => `version ${r.versionBefore ?? 'none'} → ${r.version ?? 'none'}, ${String(r.applied.length)} migration(s) applied, ${String(r.createdTables.length)} table(s) created`);
      for (const warning of schema.warnings) reporter.emit({ event: 'warning', message: warning });
      results.schema = schema;
    }
    if (command === 'run' || command === 'step copy') {
      const copy = await runStep(reporter, 'copy', () => copyStep(context, progressTracker(reporter)), describeCopy);
      for (const [column, count] of Object.entries(copy.zeroDates)) reporter.emit({ event: 'warning', message: `${column}: ${String(count)} zero date(s) stored as NULL` });
      results.copy = copy;
    }
    let exitCode: ExitCode = EXIT.ok;
    if ((command === 'run' && context.settings.incremental) || command === 'step sync') {
      results.sync = await runStep(reporter, 'sync', () => syncStep(context, validateOptionsOf(migration.spec.validation)), describeSync);
      // ChangeCapture runs until SIGTERM/SIGINT, then stops cleanly and says where it got to. It exits
      // as interrupted all the same: a sync Job whose pod was stopped by anything but the operator
      // (which deletes the Job at the fence) must run again, never count as done.
      if (context.settings.incremental?.mode === 'ChangeCapture' && signal.aborted) exitCode = EXIT.interrupted;
    }
    if (command === 'step fence') {
      results.fence = await runStep(reporter, 'fence', () => fenceStep(context),
        (r) => `the source is read-only (before: ${r.previous}); ${String(r.sessionsEnded)} session(s) ended`);
      for (const note of (results.fence as FenceStepResult).notes) reporter.emit({ event: 'warning', message: note });
    }
    if (command === 'step unfence') {
      results.unfence = await runStep(reporter, 'unfence', () => unfenceStep(context),
        (r) => (r.restored === 'nothing recorded' ? 'no fence recorded: nothing to restore'
          : `the source's read-only setting is back to ${r.restored}; ${String(r.sessionsEnded)} session(s) opened read-only during the fence ended`));
    }
    if (command === 'step catchup') {
      const catchup = await runStep(reporter, 'catchup', () => catchupStep(context, validateOptionsOf(migration.spec.validation)),
        (r) => `caught up to ${r.fencePosition} in ${String(r.catchUpMs)} ms (${String(r.transactions)} transaction(s)); ${r.validation.summary}`);
      results.catchup = catchup;
      if (!catchup.validation.passed) {
        reporter.emit({ event: 'warning', message: `validation failed: ${catchup.validation.summary}` });
        exitCode = EXIT.validationFailed;
      }
    }
    if (command === 'step release') {
      const release = await runStep(reporter, 'release', () => releaseStep(context), describeRelease);
      results.release = release;
      for (const problem of release.problems) reporter.emit({ event: 'warning', message: problem });
      // The result is written all the same: the operator shows what is left and how to drop it.
      if (!release.released) exitCode = EXIT.failed;
    }
    if ((command === 'run' && !values['skip-validation']) || command === 'validate' || command === 'step validate') {
      const report = await runStep(reporter, 'validate', () => validateStep(context, validateOptionsOf(migration.spec.validation)), (r) => r.summary);
      results.validation = report;
      if (!report.passed) {
        reporter.emit({ event: 'warning', message: `validation failed: ${report.summary}` });
        exitCode = EXIT.validationFailed;
      }
    }
    // A run that passed validation is finished (Trickle: not until the cutover, as reruns sync on).
    if ((command === 'run' && !values['skip-validation'] && !context.settings.incremental && exitCode === EXIT.ok) || command === 'retire') {
      results.retire = await runStep(reporter, 'retire', () => retireStep(context), (r) => `finished: ${String(r.checkpoints)} checkpoint(s) retired; the tables it created are the application's now`);
    }
    if (command === 'cleanup') {
      results.cleanup = await runStep(reporter, 'cleanup', () => cleanupStep(context), (r) => (r.dropped.length > 0 ? `dropped ${r.dropped.join(', ')}` : 'no bookkeeping tables to drop'));
    }
    if (command === 'step rollback') {
      const toVersion = values['to-version'] ?? process.env.DMO_ROLLBACK_TO_VERSION ?? '';
      results.rollback = await runStep(reporter, 'rollback', () => rollbackStep(context, {
        versionBefore: toVersion === '' ? null : toVersion, action: migration.spec.rollback?.schemaAction ?? 'DownMigrations',
      }), (r) => `${r.action}: version ${r.versionBefore ?? 'none'} → ${r.version ?? 'none'}${r.droppedTables.length ? `, dropped ${r.droppedTables.join(', ')}` : ''}${r.droppedTypes.length ? `, dropped types ${r.droppedTypes.join(', ')}` : ''}`);
    }
    reporter.emit({ event: 'result', result: results });
    if (command.startsWith('step ')) writeTermination(boundedResult(stepResult(command, results)));
    return exitCode;
  } catch (error) {
    if (error instanceof PlanRefusedError) throw new CliError(error.message, EXIT.planRefused);
    // The sync's validation at a cut: its report is the operator's verdict (a rollback), as the validate step's is.
    if (error instanceof ValidationFailedError) throw new CliError(error.message, EXIT.validationFailed, { termination: boundedResult(validateResult(error.report)) });
    // A URL parameter that contradicts spec.*.tls (or sets what the engine decides): bad input, nothing was opened.
    if (error instanceof ConnectionSettingsError) throw new CliError(error.message, EXIT.usage);
    if (signal.aborted) throw new CliError('interrupted; run the same command again to resume', EXIT.interrupted);
    throw error;
  } finally {
    reporter.close();
  }
}

function describeSync(result: Awaited<ReturnType<typeof syncStep>>): string {
  const capture = captureSyncOf(result);
  if (capture) return `followed the source's changes: ${String(capture.transactions)} transaction(s), ${String(capture.changes)} change(s) applied up to ${capture.appliedPosition}; stopped`;
  // Deletes are looked for only once caught up: a run that is not says so rather than "0 deleted".
  const deleted = result.caughtUp ? `, ${String(result.rowsDeleted ?? 0)} deleted row(s) removed` : ', not caught up yet (deletes not looked for)';
  return `${String(result.rowsSynced)} changed rows in ${String(result.rounds)} round(s)${result.caughtUp ? ', caught up' : ''}${deleted}${result.notes?.length ? `; ${result.notes.join('; ')}` : ''}`;
}

function describeRelease(result: ReleaseStepResult): string {
  if (!result.released) return `the capture is not released: ${result.problems.join('; ')}`;
  const dropped = [result.slotDropped ? 'replication slot' : '', result.publicationDropped ? 'publication' : ''].filter(Boolean);
  return dropped.length > 0 ? `dropped the ${dropped.join(' and ')}` : 'nothing of the capture left on the source';
}

function describeCopy(result: CopyStepResult): string {
  const share = result.pod.count > 1 ? `pod ${String(result.pod.index)} of ${String(result.pod.count)}: ` : '';
  const post = { ran: `, ${String(result.postCopyStatements)} post-copy statement(s)`, pending: ', post-copy work left to the last pod', elsewhere: ', post-copy work run by another pod' }[result.postCopy];
  return `${share}${String(result.rowsThisRun)} rows copied this run, ${String(result.tables.length)} table(s) done${post}`;
}

function describePlan(result: Awaited<ReturnType<typeof planStep>>): unknown {
  return {
    schemaVersion: result.schemaVersion,
    pendingMigrations: result.pendingMigrations,
    estimatedRows: result.plan.estimatedRows,
    tables: result.plan.tables.map((t) => ({
      source: t.spec.name, target: t.spec.target ?? t.spec.name, estimatedRows: t.source.estimatedRows,
      key: t.copy?.key ?? t.spec.key ?? t.source.primaryKey, create: t.ddl?.create ?? [], typeMapping: t.typeMapping,
    })),
    warnings: result.plan.warnings,
    errors: result.plan.errors,
  };
}

function formatPlan(result: Awaited<ReturnType<typeof planStep>>): string {
  const lines = [`schema version: ${result.schemaVersion ?? 'none'}; pending migrations: ${result.pendingMigrations.join(', ') || 'none'}`];
  for (const t of result.plan.tables) {
    lines.push(`table ${t.spec.name} → ${t.spec.target ?? t.spec.name}: ~${String(t.source.estimatedRows)} rows${t.ddl ? ' (created)' : ''}`);
    for (const m of t.typeMapping) lines.push(`  ${m.column}: ${m.source} → ${m.target}`);
    for (const statement of t.ddl?.create ?? []) lines.push(`  ${statement.replaceAll('\n', '\n  ')}`);
  }
  // Refusals are printed once, by the error the refused plan ends with.
  return lines.join('\n');
}

/** Runs the CLI: exit code from the outcome, secrets scrubbed from anything printed. */
async function cli(): Promise<void> {
  const controller = new AbortController();
  // First signal: stop between batches (a rerun resumes); a second one exits at once.
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      if (controller.signal.aborted) process.exit(EXIT.interrupted);
      controller.abort(new Error(`stopped by ${name}`));
    });
  }
  const secrets = secretsOfUrls([process.env.DMO_SOURCE_URL, process.env.DMO_TARGET_URL, ...process.argv].filter((u): u is string => typeof u === 'string' && u.includes('://')));
  try {
    process.exitCode = await main(process.argv.slice(2), controller.signal);
  } catch (error) {
    const exitCode = error instanceof CliError ? error.exitCode : EXIT.failed;
    const message = redactSecrets(error instanceof Error ? error.message : String(error), secrets);
    const reporter = process.argv.includes('--json') || !process.stdout.isTTY ? jsonReporter() : terminalReporter();
    reporter.emit({ event: 'error', message, exitCode });
    writeTermination(error instanceof CliError && error.termination !== undefined ? error.termination : message);
    process.exitCode = exitCode;
  }
}

// Run when executed (node src/cli/main.ts, or the dmctl bin link), not when imported by a test.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await cli();
