// What each kubectl-dm command does, against the Cluster interface (cluster.ts talks to the API
// server; the unit tests use an in-memory one). Requests the operator would refuse or ignore are
// refused here first, with the reason, so nothing is written that does nothing.
import { abortPatch, approvePatch, newRetryToken, normalizeRetryToken, retryPatch, suspendPatch } from '../api/annotations.ts';
import { TERMINAL_PHASES, type Step } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import type { Cluster } from './cluster.ts';
import { canRetry, isFinished, renderStatus } from './render.ts';

/** A request the migration's state does not allow; the message says why and what to do instead. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

const phaseOf = (m: DataMigration): string => m.status?.phase ?? 'Pending';
const isTerminal = (m: DataMigration): boolean => (TERMINAL_PHASES as readonly string[]).includes(phaseOf(m));
const generationOf = (m: DataMigration): number => m.metadata?.generation ?? 1;

export async function status(cluster: Cluster, name: string, now: Date = new Date()): Promise<{ text: string; migration: DataMigration }> {
  const migration = await cluster.getMigration(name);
  const [jobs, events] = await Promise.all([cluster.listJobs(name), cluster.listEvents(name)]);
  return { text: renderStatus({ migration, jobs, events, now }), migration };
}

export async function approve(cluster: Cluster, name: string): Promise<string> {
  const migration = await cluster.getMigration(name);
  if (isTerminal(migration)) throw new RefusedError(`${name} is ${phaseOf(migration)}: there is no cutover left to approve`);
  const approval = migration.spec.cutover?.approval;
  if (approval !== 'Manual') {
    throw new RefusedError(`${name} has ${migration.spec.cutover ? 'cutover.approval Automatic' : 'no cutover'}: there is nothing to approve`);
  }
  const generation = generationOf(migration);
  await cluster.patchMigration(name, approvePatch(generation));
  const capture = migration.spec.strategy?.incremental?.mode === 'ChangeCapture';
  const when = phaseOf(migration) !== 'AwaitingApproval' ? `the cutover proceeds when validation passes (now ${phaseOf(migration)})`
    : capture ? `the write fence goes up once the lag is under ${String(migration.spec.cutover?.maxLagSeconds ?? 5)} s` : 'the cutover proceeds now';
  return `approved generation ${generation} of ${name}: ${when}`;
}

export async function abort(cluster: Cluster, name: string): Promise<string> {
  const migration = await cluster.getMigration(name);
  if (isTerminal(migration)) throw new RefusedError(`${name} is ${phaseOf(migration)} already: there is nothing to abort`);
  await cluster.patchMigration(name, abortPatch(generationOf(migration)));
  return `abort requested for ${name} (was ${phaseOf(migration)}): it stops as Failed, reason Aborted; a switched Service is restored, the target is left as it is`;
}

export async function retry(cluster: Cluster, name: string, token: string = newRetryToken()): Promise<string> {
  const migration = await cluster.getMigration(name);
  const phase = phaseOf(migration);
  if (phase !== 'Failed') throw new RefusedError(`${name} is ${phase}: only a Failed migration can be retried`);
  if (!canRetry(migration)) {
    const reason = migration.status?.conditions?.find((c) => c.type === 'Ready')?.reason;
    throw new RefusedError(`${name} failed with reason ${reason ?? 'unknown'}: only a failed step Job or an abort can be retried; create a new DataMigration to migrate again`);
  }
  const normalized = normalizeRetryToken(token);
  if (normalized === undefined) throw new RefusedError(`retry token ${JSON.stringify(token)} has no letter or digit`);
  if ((migration.status?.runId ?? '').endsWith(`-r${normalized}`)) throw new RefusedError(`token ${normalized} was used by run ${migration.status?.runId ?? ''}: choose a new one`);
  await cluster.patchMigration(name, retryPatch(normalized));
  return `retry requested for ${name} with token ${normalized}: the failed step runs again as run <run>-r${normalized}`;
}

export async function setSuspend(cluster: Cluster, name: string, suspend: boolean): Promise<string> {
  const migration = await cluster.getMigration(name);
  if ((migration.spec.suspend === true) === suspend) return `${name} is ${suspend ? 'suspended' : 'not suspended'} already`;
  if (suspend && isTerminal(migration)) throw new RefusedError(`${name} is ${phaseOf(migration)}: there is nothing to suspend`);
  await cluster.patchMigration(name, suspendPatch(suspend));
  return suspend
    ? `suspended ${name}: no new step starts (a running step finishes); resume with kubectl dm resume ${name}`
    : `resumed ${name}: it continues where it stopped`;
}

/** The step whose log `logs` shows by default: the latest Job of the current run. */
export async function logs(cluster: Cluster, name: string, step?: Step, tail?: number): Promise<string> {
  const migration = await cluster.getMigration(name);
  const jobs = await cluster.listJobs(name);
  const run = migration.status?.runId;
  const ofRun = jobs.filter((job) => run === undefined || job.run === run);
  const candidates = (ofRun.length > 0 ? ofRun : jobs).filter((job) => step === undefined || job.step === step);
  const job = candidates.at(-1);
  if (!job) {
    throw new RefusedError(`${name} has no ${step ? `${step} ` : ''}Job${run ? ` in run ${run}` : ''}${jobs.length > 0 ? ` (Jobs: ${jobs.map((j) => `${j.step}/${j.run}`).join(', ')})` : ''}`);
  }
  const pods = await cluster.listJobPods(job.name);
  if (pods.length === 0) throw new RefusedError(`Job ${job.name} has no pod (it may have been deleted after ttlSecondsAfterFinished)`);
  const logsOfPods = await Promise.all(pods.map(async (pod) => ({ pod, log: await cluster.podLog(pod, tail) })));
  if (logsOfPods.length === 1) return logsOfPods[0]?.log ?? '';
  return logsOfPods.map(({ pod, log }) => `==> pod ${pod} <==\n${log}`).join('\n');
}

/** Whether a watched migration is done: it reached a terminal phase for the latest generation. */
export function watchDone(migration: DataMigration): boolean {
  return isFinished(migration) && migration.status?.observedGeneration === migration.metadata?.generation;
}
