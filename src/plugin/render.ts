// `kubectl dm status` as text: the DataMigration, its step Jobs and its latest Events in, lines
// out. Pure (the clock is a parameter), so every line is unit tested.
import { TERMINAL_PHASES } from '../api/constants.ts';
import type { Condition, DataMigration, Progress, StepJob, SyncStatus, ValidationStatus } from '../api/types.ts';
import { ledgerFromConditions } from '../controller/ledger.ts';
import { resumePoint } from '../controller/retry.ts';

/** What status shows of a step Job, read from the cluster. */
export interface JobView {
  name: string;
  step: string;
  run: string;
  createdAt?: Date;
  completedAt?: Date;
  active: number;
  succeeded: number;
  failed: number;
  /** The Job's Complete or Failed condition, if it finished. */
  finished?: { type: 'Complete' | 'Failed'; reason?: string; message?: string };
}

/** What status shows of an Event about the DataMigration. */
export interface EventView {
  time?: Date;
  type: string;
  reason: string;
  message: string;
}

export interface StatusInput {
  migration: DataMigration;
  jobs: readonly JobView[];
  events: readonly EventView[];
  now: Date;
}

const BAR_WIDTH = 30;
const MAX_EVENTS = 8;
const MAX_FAILED_CHECKS = 5;

/** 42 s, 6m40s, 2h05m, 3d04h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** 950, 12.3k, 4.1M, 2.0G. */
export function formatCount(value: number): string {
  const abs = Math.abs(value);
  if (abs < 1000) return String(Math.round(value));
  for (const [unit, size] of [['G', 1e9], ['M', 1e6], ['k', 1e3]] as const) {
    if (abs >= size) return `${(value / size).toFixed(1)}${unit}`;
  }
  return String(value);
}

/** [##########....................]  33% */
export function progressBar(percent: number, width = BAR_WIDTH): string {
  const clamped = Math.min(100, Math.max(0, percent));
  const filled = Math.round((clamped / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(clamped)).padStart(3)}%`;
}

/** "5m ago" for a time before now; "-" when unknown. */
function ago(time: Date | string | undefined, now: Date): string {
  if (time === undefined) return '-';
  const at = typeof time === 'string' ? new Date(time) : time;
  if (Number.isNaN(at.getTime())) return '-';
  return `${formatDuration((now.getTime() - at.getTime()) / 1000)} ago`;
}

/** One line of progress: the bar, tables, rows, rate and ETA, each only when known. */
export function progressLine(progress: Progress): string {
  const percent = progress.percent ?? (progress.rowsEstimated ? ((progress.rowsCopied ?? 0) / progress.rowsEstimated) * 100 : 0);
  const parts = [progressBar(percent)];
  if (progress.tablesTotal !== undefined) parts.push(`${progress.tablesDone ?? 0}/${progress.tablesTotal} tables`);
  if (progress.rowsCopied !== undefined) {
    parts.push(`${formatCount(progress.rowsCopied)}${progress.rowsEstimated ? ` of ~${formatCount(progress.rowsEstimated)}` : ''} rows`);
  }
  if (progress.rowsPerSecond !== undefined) parts.push(`${formatCount(progress.rowsPerSecond)} rows/s`);
  if (progress.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(progress.etaSeconds)}`);
  return parts.join('  ');
}

const condition = (conditions: readonly Condition[] | undefined, type: Condition['type']): Condition | undefined =>
  conditions?.find((c) => c.type === type);

/** What status records of one step: the step ledger's entry (status.steps), else the older status.jobs. */
interface Recorded {
  step: string;
  job?: string;
  state?: string;
  message?: string;
  reason?: string;
  requestedAt?: string;
  finishedAt?: string;
}

function recordedSteps(migration: DataMigration): Recorded[] {
  const status = migration.status ?? {};
  if (status.steps !== undefined) {
    return status.steps
      .filter((entry) => entry.step !== 'start' && (status.runId === undefined || entry.runId === status.runId))
      .map((entry) => ({
        step: entry.step,
        ...(entry.job !== undefined ? { job: entry.job } : {}),
        state: entry.outcome ?? (entry.requestedAt !== undefined ? 'Requested' : 'Pending'),
        ...(entry.message !== undefined ? { message: entry.message } : entry.reason !== undefined && entry.outcome !== 'Succeeded' ? { message: entry.reason } : {}),
        ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
        ...(entry.requestedAt !== undefined ? { requestedAt: entry.requestedAt } : {}),
        ...(entry.finishedAt !== undefined ? { finishedAt: entry.finishedAt } : {}),
      }));
  }
  return (status.jobs ?? []).map((job: StepJob) => ({ step: job.step, job: job.name, ...(job.state ? { state: job.state } : {}), ...(job.message ? { message: job.message } : {}) }));
}

/** The state word of a step: from the cluster's Job when there is one, else from status. */
function jobState(job: JobView | undefined, recorded: Recorded | undefined): string {
  if (recorded?.state === 'Aborted' || recorded?.state === 'Rejected') return recorded.state;
  if (job?.finished) return job.finished.type === 'Complete' ? 'Succeeded' : 'Failed';
  if (job && job.active > 0) return 'Running';
  if (job) return 'Pending';
  return recorded?.state ?? 'Unknown';
}

const STATE_MARK: Record<string, string> = { Succeeded: '✔', Failed: '✖', Aborted: '✖', Rejected: '✖', Running: '▶', Pending: '…', Requested: '…' };
/**
 * Steps in the order they run (the ledger's, src/api/constants.ts LEDGER_STEPS, without start);
 * the Service actions (switch, restore) have no Job, and finish is how the run ended.
 */
const STEP_ORDER = ['schema', 'copy', 'sync', 'validate', 'switch', 'rollback', 'restore', 'finish'];
const SERVICE_STEPS = new Set(['switch', 'restore']);

const timeOf = (text: string | undefined): Date | undefined => {
  const ms = text === undefined ? Number.NaN : Date.parse(text);
  return Number.isNaN(ms) ? undefined : new Date(ms);
};

/** A Service step: the Service, when it was patched or cleared to go, and why it stopped. */
function serviceLine(mark: string, migration: DataMigration, entry: Recorded | undefined, state: string, now: Date): string {
  const requested = timeOf(entry?.requestedAt);
  const when = requested !== undefined ? `  patched ${ago(requested, now)}` : state === 'Pending' ? '  (cleared to go, not patched yet)' : '';
  return `${mark}Service ${migration.spec.cutover?.service ?? '-'}${when}${entry?.message && state !== 'Succeeded' ? `\n      ${entry.message}` : ''}`;
}

/** The run's end: Succeeded, or Failed with why (RolledBack, ValidationFailed, …). */
function finishLine(mark: string, entry: Recorded | undefined, now: Date): string {
  const finished = timeOf(entry?.finishedAt);
  const why = entry?.state === 'Succeeded' ? '' : entry?.reason ?? '';
  return `${mark}${why}${finished !== undefined ? `${why === '' ? '' : '  '}${ago(finished, now)}` : ''}`.trimEnd();
}

function stepLines(migration: DataMigration, jobs: readonly JobView[], now: Date): string[] {
  const run = migration.status?.runId;
  const recorded = recordedSteps(migration);
  const current = jobs.filter((job) => run === undefined || job.run === run);
  const steps = STEP_ORDER.filter((step) => current.some((j) => j.step === step) || recorded.some((r) => r.step === step));
  const lines = steps.map((step) => {
    const job = current.filter((j) => j.step === step).at(-1);
    const entry = recorded.find((r) => r.step === step);
    const state = jobState(job, entry);
    const mark = `  ${STATE_MARK[state] ?? '?'} ${step.padEnd(9)}${state.padEnd(10)}`;
    if (SERVICE_STEPS.has(step)) return serviceLine(mark, migration, entry, state, now);
    if (step === 'finish') return finishLine(mark, entry, now);
    const name = job?.name ?? entry?.job ?? '-';
    const pods = job ? `pods ${job.active} active, ${job.succeeded} succeeded, ${job.failed} failed` : 'Job not found';
    const took = job?.createdAt ? (job.completedAt ? `took ${formatDuration((job.completedAt.getTime() - job.createdAt.getTime()) / 1000)}` : `started ${ago(job.createdAt, now)}`) : '';
    const why = state === 'Failed' || state === 'Aborted' || state === 'Rejected' ? (entry?.message ?? job?.finished?.message) : undefined;
    const line = `${mark}Job ${name}  ${pods}${took ? `  ${took}` : ''}`;
    return why ? `${line}\n      ${why}` : line;
  });
  const older = jobs.length - current.length;
  if (older > 0) lines.push(`  (${older} Job${older === 1 ? '' : 's'} of earlier runs)`);
  return lines.length > 0 ? lines : ['  (no step has started)'];
}

/** ChangeCapture: the stream's lag, the fence, the release, each only when known. */
export function syncLine(sync: SyncStatus): string {
  const parts: string[] = [];
  if (sync.lag !== undefined) parts.push(`lag ${sync.lag}`);
  if (sync.pendingBytes !== undefined) parts.push(`${formatCount(sync.pendingBytes)} bytes pending`);
  if (sync.changes !== undefined) parts.push(`${formatCount(sync.changes)} changes applied`);
  if (sync.appliedPosition !== undefined) parts.push(`at ${sync.appliedPosition}`);
  if (sync.writeBlockedMs !== undefined) parts.push(`writes blocked ${(sync.writeBlockedMs / 1000).toFixed(1)} s`);
  else if (sync.fencedAt !== undefined) parts.push(`writes fenced since ${sync.fencedAt}`);
  if (sync.released !== undefined) parts.push(sync.released ? 'capture released' : 'capture NOT released (see Events)');
  return parts.length > 0 ? parts.join(' · ') : 'no report yet';
}

function validationLines(validation: ValidationStatus): string[] {
  const verdict = validation.passed === undefined ? 'unknown' : validation.passed ? 'passed' : 'FAILED';
  const lines = [`Validation: ${verdict}${validation.summary ? `  ${validation.summary}` : ''}`];
  const failed = (validation.checks ?? []).filter((check) => !check.passed);
  for (const check of failed.slice(0, MAX_FAILED_CHECKS)) {
    const figures = check.source !== undefined || check.target !== undefined ? ` (source ${check.source ?? '-'}, target ${check.target ?? '-'}${check.expected !== undefined ? `, expected ${check.expected}` : ''})` : '';
    lines.push(`  ✖ ${check.kind} ${check.name}${figures}${check.message ? `: ${check.message}` : ''}`);
  }
  if (failed.length > MAX_FAILED_CHECKS) lines.push(`  ... and ${failed.length - MAX_FAILED_CHECKS} more failed checks`);
  if (validation.truncated) lines.push('  (more checks ran than status lists: see the validate Job\'s log)');
  return lines;
}

/**
 * Whether the operator would start a retry, decided by the operator's own rule (ledger.ts): from
 * the step ledger, or for a status written before the ledger, from the ledger its conditions imply.
 */
export function canRetry(migration: DataMigration): boolean {
  const status = migration.status ?? {};
  if (status.phase !== 'Failed') return false;
  const steps = status.steps ?? ledgerFromConditions(status, status.runId ?? '');
  return !('refused' in resumePoint(migration.spec, { ...status, steps }));
}

/** What a person can do next, from the phase. */
function hint(migration: DataMigration): string | undefined {
  const name = migration.metadata?.name ?? 'NAME';
  const phase = migration.status?.phase;
  if (migration.spec.suspend === true) return `suspended: kubectl dm resume ${name}`;
  if (phase === 'AwaitingApproval') return `waiting for approval: kubectl dm approve ${name} (or kubectl dm abort ${name})`;
  if (phase === 'Failed' && canRetry(migration)) return `after fixing the cause: kubectl dm retry ${name}`;
  return undefined;
}

export function isFinished(migration: DataMigration): boolean {
  const phase = migration.status?.phase;
  return phase !== undefined && TERMINAL_PHASES.includes(phase);
}

/** The whole status view. */
export function renderStatus({ migration, jobs, events, now }: StatusInput): string {
  const status = migration.status ?? {};
  const ready = condition(status.conditions, 'Ready');
  const out: string[] = [];
  const field = (label: string, value: string): void => { out.push(`${`${label}:`.padEnd(12)}${value}`); };
  field('Name', `${migration.metadata?.namespace ?? ''}/${migration.metadata?.name ?? ''}`);
  field('Phase', `${status.phase ?? '(not observed yet)'}${migration.spec.suspend === true ? '  (suspended)' : ''}`);
  if (ready) field('Ready', `${ready.status}  ${ready.reason}: ${ready.message}`);
  else if (status.message) field('Message', status.message);
  const generation = migration.metadata?.generation;
  if (generation !== undefined && status.observedGeneration !== generation) {
    field('Observed', `generation ${status.observedGeneration ?? '-'} of ${generation} (the operator has not seen the latest spec yet)`);
  }
  field('Strategy', `${migration.spec.strategy?.type ?? 'BigBang'}  ${migration.spec.source.engine} → ${migration.spec.target.engine}`);
  if (status.runId) field('Run', `${status.runId}  started ${ago(status.startedAt, now)}${status.completedAt ? `, ended ${ago(status.completedAt, now)}` : ''}`);
  out.push('', 'Steps:', ...stepLines(migration, jobs, now));
  if (status.progress) out.push('', `Progress:   ${progressLine(status.progress)}`);
  if (status.sync) out.push('', `Sync:       ${syncLine(status.sync)}`);
  if (status.validation) out.push('', ...validationLines(status.validation));
  if (migration.spec.cutover) {
    const active = status.active ?? (status.activeSelector ? Object.entries(status.activeSelector).map(([k, v]) => `${k}=${v}`).join(',') : '-');
    out.push('', `Active:     ${active}  (Service ${migration.spec.cutover.service}, approval ${migration.spec.cutover.approval ?? 'Automatic'})`);
  }
  const next = hint(migration);
  if (next) out.push('', `Next:       ${next}`);
  out.push('', 'Events:');
  const latest = [...events].sort((a, b) => (a.time?.getTime() ?? 0) - (b.time?.getTime() ?? 0)).slice(-MAX_EVENTS);
  if (latest.length === 0) out.push('  (none)');
  for (const event of latest) out.push(`  ${ago(event.time, now).padEnd(12)}${event.type.padEnd(8)}${event.reason.padEnd(18)}${event.message}`);
  return `${out.join('\n')}\n`;
}
