// Zero-downtime Trickle with change capture through the real control plane: the operator under the
// chart's ServiceAccount drives copy → sync (the change stream, its lag in status and the Lag
// column) → approval → the ScaleDown write fence on a blue Deployment → catch-up and validation
// behind the fence → the Service switch → the capture released, while a paced writer standing for
// the blue app inserts, updates (keys too) and deletes until the fence stops it. Every operation
// the writer saw acknowledged must be on the target, and nothing of the capture left on the source.
// Also: a fence that never holds (a blue pod stays) is lifted after fence.timeoutSeconds, and an
// operator restarted while the stream runs and again right behind the fence still ends once, right.
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { APPROVE_ANNOTATION, FENCE_RECORD_ANNOTATION, GROUP, PLURAL, REASONS, SWITCH_RECORD, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { compareRows, type Setup } from '../support/cdc-harness.ts';
import { captureSlots, checkWriterLog, createItems, deleteStandIns, readBlue, readWeb, stageBlue, startLoggedWriter, type LoggedWriter } from '../support/capture-e2e.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { freshNamespace, kubectl, testKubeConfig } from '../support/kube.ts';
import { eventReasons, readyOf, waitForMigration } from '../support/migrations.ts';
import { runOperator, type TestOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { limitConcurrency } from '../support/slots.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const batch = kc.makeApiClient(k8s.BatchV1Api);
// Each drives a whole migration under a writer: two at a time on two cores.
const twoAtATime = limitConcurrency(2);

const ROWS = 20_000;
const OPS_PER_SECOND = 300;
const NAME = 'web-move';

interface Stage { namespace: string; operator: TestOperator; source: string; target: string; setup: Setup; podNames: string[]; writer: LoggedWriter }

async function stage(t: ExecutionContext, prefix: string, engine: Engine, fence: Record<string, unknown>): Promise<Stage> {
  const namespace = await freshNamespace(t, prefix);
  const operator = await runOperator(t, namespace);
  const source = await freshDatabase(t, engine);
  const target = await freshTargetDatabase(t, 'postgres');
  const setup = await createItems(engine, source, target, ROWS);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  const { podNames } = await stageBlue(namespace, NAME);
  const writer = await startLoggedWriter(engine, source, OPS_PER_SECOND);
  t.teardown(async () => { await writer.writer.stop().catch(() => undefined); });
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name: NAME },
    spec: {
      // A PostgreSQL capture needs a REPLICATION role that owns the tables: it could write.
      source: { engine, secretRef: { name: 'source-db' }, acceptWritableRole: true },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
      tables: [{ name: 'items' }],
      strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
      validation: { rowCount: true, checksum: { mode: 'Full' } },
      cutover: { service: 'web', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual', maxLagSeconds: 5, fence },
    },
  } });
  return { namespace, operator, source, target, setup, podNames, writer };
}

/** AwaitingApproval with a lag report in status; the figures logged (and the Lag column). */
async function syncingWithLag(t: ExecutionContext, namespace: string): Promise<DataMigration> {
  const waiting = await waitForMigration(namespace, NAME, 'AwaitingApproval with a lag report',
    (m) => m.status?.phase === 'Failed' || (m.status?.phase === 'AwaitingApproval' && m.status.sync?.lag !== undefined), 120_000);
  t.is(waiting.status?.phase, 'AwaitingApproval', waiting.status?.message);
  const sync = waiting.status?.sync;
  t.log(`lag: ${sync?.lag ?? '?'} (lagMs ${String(sync?.lagMs)}, pendingBytes ${String(sync?.pendingBytes)}, ${String(sync?.transactions)} transactions, ${String(sync?.changes)} changes applied)`);
  const column = await kubectl(['get', 'dm', NAME], { namespace });
  t.log(column.stdout.trim());
  t.regex(column.stdout, /LAG/);
  return waiting;
}

async function approve(namespace: string): Promise<void> {
  await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: NAME, body: { metadata: { annotations: { [APPROVE_ANNOTATION]: 'true' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
}

/** Once the operator scaled web-blue to 0: the writer stops (its last acknowledged operation is before the fence). */
async function awaitScaledDown(t: ExecutionContext, s: Stage): Promise<{ operations: number; seconds: number }> {
  await waitFor('web-blue scaled to 0', async () => ((await readBlue(s.namespace)).spec?.replicas === 0 ? true : undefined), 60_000, 100);
  const written = await s.writer.writer.stop();
  t.log(`writer: ${String(written.operations)} operations in ${written.seconds.toFixed(1)} s (${String(Math.round(written.operations / written.seconds))}/s), ${String(s.writer.log.length)} logged row outcomes`);
  return written;
}

/** The ledger from the fence's request on, in seconds after it: where the write-blocked time went. */
function timeline(migration: DataMigration): string {
  const steps = migration.status?.steps ?? [];
  const start = Date.parse(steps.find((entry) => entry.step === 'fence')?.requestedAt ?? '');
  const at = (time: string | undefined): string => (time === undefined ? '-' : ((Date.parse(time) - start) / 1000).toFixed(1));
  return steps.filter((entry) => ['fence', 'sync', 'catchup', 'switch', 'finish'].includes(entry.step))
    .map((entry) => `${entry.step} ${at(entry.requestedAt)}→${at(entry.finishedAt)}`).join(', ');
}

/** The catch-up's own figures, from its pod's termination message (its result). */
async function catchupFigures(namespace: string): Promise<string> {
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${NAME}-g1-catchup` })).items;
  const message = pods.map((pod) => pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '').find((text) => text.includes('fencePosition')) ?? '';
  try {
    const result = JSON.parse(message) as { catchUpMs?: number; transactions?: number; validation?: { summary?: string } };
    return `catch-up: ${String(result.transactions)} transactions applied behind the fence in ${String(result.catchUpMs)} ms, then validation (${result.validation?.summary ?? '?'})`;
  } catch {
    return `catch-up result unreadable: ${message.slice(0, 200)}`;
  }
}

/** Succeeded, on green, every row and every logged operation on the target, the capture released. */
async function assertCutOver(t: ExecutionContext, s: Stage, written: { operations: number }): Promise<DataMigration> {
  const done = await waitForMigration(s.namespace, NAME, 'ended', (m) => ['Succeeded', 'Failed', 'RolledBack'].includes(m.status?.phase ?? ''), 120_000);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.log(`writeBlockedMs: ${String(done.status?.sync?.writeBlockedMs)}; behind the fence: ${timeline(done)}; ${await catchupFigures(s.namespace)}`);
  t.true((done.status?.sync?.writeBlockedMs ?? -1) >= 0);
  t.deepEqual((await readWeb(s.namespace)).spec?.selector, { app: 'web', track: 'green' });
  const comparison = await compareRows(s.setup, 120);
  const logged = await checkWriterLog(s.target, s.writer.log);
  t.log(`compared ${String(comparison.rows)} rows: ${String(comparison.missing)} missing, ${String(comparison.stale)} stale, ${String(comparison.undeleted)} undeleted; writer's log: ${String(logged.live)} live, ${String(logged.gone)} gone, ${String(logged.ambiguous)} overlapping, ${String(logged.lost)} lost`);
  t.true(written.operations > 300, 'the writer wrote throughout');
  t.deepEqual({ missing: comparison.missing, stale: comparison.stale, undeleted: comparison.undeleted, examples: comparison.examples }, { missing: 0, stale: 0, undeleted: 0, examples: [] });
  t.deepEqual({ lost: logged.lost, examples: logged.examples }, { lost: 0, examples: [] });
  const released = await waitForMigration(s.namespace, NAME, 'the capture released', (m) => m.status?.sync?.released !== undefined, 60_000);
  t.true(released.status?.sync?.released, released.status?.message);
  return released;
}

test('PostgreSQL → PostgreSQL under a writer: lag in status, approval, ScaleDown fence, catch-up, switch, 0 lost, slot released', twoAtATime(async (t) => {
  const s = await stage(t, 'cap-pg', 'postgres', { type: 'ScaleDown', deployment: 'web-blue', timeoutSeconds: 120 });
  await syncingWithLag(t, s.namespace);
  t.is((await readWeb(s.namespace)).spec?.selector?.track, 'blue', 'no switch before approval');
  t.deepEqual(await captureSlots(s.source).then((slots) => slots.length), 1, 'the slot is there while the stream runs');
  await approve(s.namespace);
  const written = await awaitScaledDown(t, s);
  await deleteStandIns(s.namespace, s.podNames);
  await assertCutOver(t, s, written);
  t.deepEqual(await captureSlots(s.source, { temporary: true }), [], 'no slot left');
  const blue = await readBlue(s.namespace);
  t.is(blue.spec?.replicas, 0, 'blue stays fenced after the switch');
  t.true((await eventReasons(s.namespace, NAME)).includes(REASONS.CaptureReleased));
}));

test('MariaDB → PostgreSQL under a writer: the binlog stream, ScaleDown fence, switch, 0 lost', twoAtATime(async (t) => {
  const s = await stage(t, 'cap-my', 'mysql', { type: 'ScaleDown', deployment: 'web-blue', timeoutSeconds: 120 });
  await syncingWithLag(t, s.namespace);
  await approve(s.namespace);
  const written = await awaitScaledDown(t, s);
  await deleteStandIns(s.namespace, s.podNames);
  await assertCutOver(t, s, written);
}));

test('a fence that does not hold within fence.timeoutSeconds is lifted: Failed (FenceLifted), blue back to 2, Service on blue, slot released', twoAtATime(async (t) => {
  const s = await stage(t, 'cap-lift', 'postgres', { type: 'ScaleDown', deployment: 'web-blue', timeoutSeconds: 10 });
  await syncingWithLag(t, s.namespace);
  await approve(s.namespace);
  await awaitScaledDown(t, s);
  // One blue pod stays: the fence never holds.
  await deleteStandIns(s.namespace, s.podNames.slice(1));
  const failed = await waitForMigration(s.namespace, NAME, 'ended', (m) => ['Succeeded', 'Failed', 'RolledBack'].includes(m.status?.phase ?? ''), 90_000);
  t.is(failed.status?.phase, 'Failed', failed.status?.message);
  t.is(readyOf(failed).reason, REASONS.FenceLifted);
  t.log(failed.status?.message ?? '');
  const blue = await waitFor('web-blue scaled back', async () => {
    const deployment = await readBlue(s.namespace);
    return deployment.spec?.replicas === 2 && deployment.metadata?.annotations?.[FENCE_RECORD_ANNOTATION] === undefined ? deployment : undefined;
  }, 30_000, 200);
  t.is(blue.spec?.replicas, 2);
  t.deepEqual((await readWeb(s.namespace)).spec?.selector, { app: 'web', track: 'blue' });
  const released = await waitForMigration(s.namespace, NAME, 'the capture released', (m) => m.status?.sync?.released !== undefined, 60_000);
  t.true(released.status?.sync?.released, released.status?.message);
  t.deepEqual(await captureSlots(s.source, { temporary: true }), [], 'no slot left');
  t.true((await eventReasons(s.namespace, NAME)).includes(REASONS.FenceLifted));
  // The run ended: nothing of it still streams into the target (the sync pod held the slot).
  const running = await waitFor('no Job of the run still running', async () => {
    const jobs = (await batch.listNamespacedJob({ namespace: s.namespace })).items;
    return jobs.every((job) => (job.status?.active ?? 0) === 0) ? jobs : undefined;
  }, 30_000, 500).catch(async () => (await batch.listNamespacedJob({ namespace: s.namespace })).items);
  t.deepEqual(running.filter((job) => (job.status?.active ?? 0) > 0).map((job) => job.metadata?.name), []);
  t.log(`Jobs: ${running.map((job) => `${job.metadata?.name ?? ''} active ${String(job.status?.active ?? 0)} failed ${String(job.status?.failed ?? 0)} succeeded ${String(job.status?.succeeded ?? 0)}`).join('; ')}`);
}));

test('an operator restarted while the stream runs and again right behind the fence: Succeeded once, 0 lost, one switch', twoAtATime(async (t) => {
  const s = await stage(t, 'cap-restart', 'postgres', { type: 'ScaleDown', deployment: 'web-blue', timeoutSeconds: 120 });
  const before = await syncingWithLag(t, s.namespace);
  await s.operator.restart();
  // The new replica reads the stream's lag itself: a report newer than the last one reaches status.
  const sampled = Date.parse(before.status?.sync?.sampledAt ?? '');
  const after = await waitForMigration(s.namespace, NAME, 'a newer lag report', (m) => Date.parse(m.status?.sync?.sampledAt ?? '') > sampled, 30_000);
  t.is(after.status?.phase, 'AwaitingApproval', after.status?.message);
  await approve(s.namespace);
  const written = await awaitScaledDown(t, s);
  await deleteStandIns(s.namespace, s.podNames);
  await waitForMigration(s.namespace, NAME, 'the fence held', (m) => m.status?.sync?.fencedAt !== undefined || m.status?.phase !== 'CuttingOver', 60_000);
  await s.operator.restart();
  const done = await assertCutOver(t, s, written);
  t.deepEqual(await captureSlots(s.source, { temporary: true }), [], 'no slot left');
  const logs = s.operator.logs();
  t.is(logs.split('patched Service selector').length - 1, 1, 'one switch');
  t.is(logs.split('\n').filter((line) => line.includes('scaled Deployment (write fence)') && line.includes('"replicas":0')).length, 1, 'one fence');
  const web = await readWeb(s.namespace);
  t.is(web.metadata?.annotations?.[SWITCH_RECORD.uid], done.metadata?.uid);
  t.is((await eventReasons(s.namespace, NAME)).filter((reason) => reason === REASONS.ServiceSwitched).length, 1);
}));
