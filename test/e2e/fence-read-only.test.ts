// The SourceReadOnly write fence through the real control plane: the operator runs the fence Job
// (the source database made read-only for new transactions, the application's sessions ended),
// then the catch-up and the switch, while a paced writer standing for the application writes until
// the fence refuses it (a refused or ended operation is not acknowledged; the writer goes on, its
// connections reopened as a pool would). After the switch the source stays read-only. And behind
// the fence a validation that fails: the unfence Job puts the setting back (unset), new sessions
// write again, the capture is released.
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { APPROVE_ANNOTATION, GROUP, PLURAL, REASONS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { compareRows, type Setup } from '../support/cdc-harness.ts';
import { captureSlots, checkWriterLog, createItems, databaseReadOnlySetting, newSessionCanWrite, readWeb, stageBlue, startFencedWriter, type FencedWriter } from '../support/capture-e2e.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { eventReasons, waitForMigration } from '../support/migrations.ts';
import { runOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { limitConcurrency } from '../support/slots.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
// Each drives a whole migration under a writer: two at a time on two cores.
const twoAtATime = limitConcurrency(2);

const ROWS = 20_000;
const OPS_PER_SECOND = 300;
const NAME = 'web-move';
const ENDED = ['Succeeded', 'Failed', 'RolledBack'];

interface Stage { namespace: string; source: string; target: string; setup: Setup; writer: FencedWriter }

async function stage(t: ExecutionContext, prefix: string): Promise<Stage> {
  const namespace = await freshNamespace(t, prefix);
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  const setup = await createItems('postgres', source, target, ROWS);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  // The Service only (its stand-in pods would be the ScaleDown fence's business).
  await stageBlue(namespace, NAME, 0);
  const writer = await startFencedWriter(source, OPS_PER_SECOND);
  t.teardown(async () => { await writer.writer.stop().catch(() => undefined); });
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name: NAME },
    spec: {
      // A PostgreSQL capture needs a REPLICATION role that owns the tables, the fence one that owns the database: it could write.
      source: { engine: 'postgres', secretRef: { name: 'source-db' }, acceptWritableRole: true },
      target: { engine: 'postgres', secretRef: { name: 'target-db' } },
      tables: [{ name: 'items' }],
      strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
      validation: { rowCount: true, checksum: { mode: 'Full' } },
      cutover: { service: 'web', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual', maxLagSeconds: 5, fence: { type: 'SourceReadOnly', timeoutSeconds: 60 } },
    },
  } });
  return { namespace, source, target, setup, writer };
}

async function approveOnceSyncing(t: ExecutionContext, namespace: string): Promise<void> {
  const waiting = await waitForMigration(namespace, NAME, 'AwaitingApproval with a lag report',
    (m) => m.status?.phase === 'Failed' || (m.status?.phase === 'AwaitingApproval' && m.status.sync?.lag !== undefined), 60_000);
  t.is(waiting.status?.phase, 'AwaitingApproval', waiting.status?.message);
  await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name: NAME, body: { metadata: { annotations: { [APPROVE_ANNOTATION]: 'true' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
}

/** The fence Job's own figures, from the ledger and its pod's termination message. */
async function fenceFigures(namespace: string, migration: DataMigration): Promise<string> {
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${NAME}-g1-fence` })).items;
  const message = pods.map((pod) => pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '').find((text) => text.includes('fenced')) ?? '(no result)';
  const steps = (migration.status?.steps ?? []).filter((entry) => ['fence', 'catchup', 'switch', 'unfence', 'release'].includes(entry.step));
  return `fence result ${message.slice(0, 300)}; ledger: ${steps.map((entry) => `${entry.step} ${entry.outcome ?? 'requested'}`).join(', ')}`;
}

/** Once the fence held: the writer's refusals have begun; it stops (nothing it wrote since was acknowledged). */
async function stopWriterBehindFence(t: ExecutionContext, s: Stage): Promise<{ operations: number; fencedAt: number }> {
  const fenced = await waitForMigration(s.namespace, NAME, 'the fence held', (m) => m.status?.sync?.fencedAt !== undefined || ENDED.includes(m.status?.phase ?? ''), 60_000);
  const fencedAt = Date.parse(fenced.status?.sync?.fencedAt ?? '');
  t.false(Number.isNaN(fencedAt), `fenced: ${fenced.status?.phase ?? '?'} ${fenced.status?.message ?? ''}`);
  await waitFor('the writer refused', () => Promise.resolve(s.writer.failures() > 0 ? true : undefined), 10_000, 50);
  const written = await s.writer.writer.stop();
  t.log(`writer: ${String(written.operations)} operations in ${written.seconds.toFixed(1)} s, ${String(s.writer.failures())} refused or ended, ${String(s.writer.log.length)} logged row outcomes, ${String(s.writer.acknowledgedSince(fencedAt))} acknowledged after the fence was recorded`);
  return { operations: written.operations, fencedAt };
}

test('SourceReadOnly fence, PostgreSQL → PostgreSQL under a writer: Succeeded, on green, 0 lost, the source left read-only, slot released', twoAtATime(async (t) => {
  const s = await stage(t, 'fro-ok');
  t.is(await databaseReadOnlySetting(s.source), undefined, 'not read-only before');
  await approveOnceSyncing(t, s.namespace);
  const written = await stopWriterBehindFence(t, s);
  const done = await waitForMigration(s.namespace, NAME, 'ended', (m) => ENDED.includes(m.status?.phase ?? ''), 60_000);
  t.log(await fenceFigures(s.namespace, done));
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.log(`writeBlockedMs: ${String(done.status?.sync?.writeBlockedMs)}`);
  t.true((done.status?.sync?.writeBlockedMs ?? -1) >= 0);
  t.deepEqual((await readWeb(s.namespace)).spec?.selector, { app: 'web', track: 'green' });
  t.true(written.operations > 300, 'the writer wrote throughout');
  const comparison = await compareRows(s.setup, 120);
  const logged = await checkWriterLog(s.target, s.writer.log);
  t.log(`compared ${String(comparison.rows)} rows: ${String(comparison.missing)} missing, ${String(comparison.stale)} stale, ${String(comparison.undeleted)} undeleted; writer's log: ${String(logged.live)} live, ${String(logged.gone)} gone, ${String(logged.ambiguous)} overlapping, ${String(logged.lost)} lost`);
  t.deepEqual({ missing: comparison.missing, stale: comparison.stale, undeleted: comparison.undeleted, examples: comparison.examples }, { missing: 0, stale: 0, undeleted: 0, examples: [] });
  t.deepEqual({ lost: logged.lost, examples: logged.examples }, { lost: 0, examples: [] });
  // After the switch the source stays read-only: the application's writes go to green now.
  t.is(await databaseReadOnlySetting(s.source), 'on');
  t.regex(String(await newSessionCanWrite(s.source)), /read-only transaction/);
  t.deepEqual(await waitFor('the slot dropped', async () => {
    const slots = await captureSlots(s.source);
    return slots.length === 0 ? slots : undefined;
  }, 30_000, 250), [], 'no slot left');
  // The release on a source left read-only: its ending, or its first failed attempt (the Job retries with a backoff).
  const release = await waitForMigration(s.namespace, NAME, 'the release ended or an attempt failed', (m) => m.status?.sync?.released !== undefined
    || (m.status?.jobs ?? []).some((job) => job.step === 'release' && (job.message ?? '').includes('failed')), 45_000);
  const releaseJob = (release.status?.jobs ?? []).find((job) => job.step === 'release');
  t.true(release.status?.sync?.released, `release: ${releaseJob?.message ?? release.status?.message ?? ''}`);
  t.is((release.status?.steps ?? []).find((entry) => entry.step === 'unfence'), undefined, 'no unfence after a switch');
}));

test('SourceReadOnly fence, validation behind it fails: the unfence Job restores the setting (unset), new sessions write again, slot released', twoAtATime(async (t) => {
  const s = await stage(t, 'fro-fail');
  // Once the sync's validation at a cut passed (a row planted before it fails the sync itself, exit 4),
  // while the migration waits for approval: a row only the target has (no writer's id), which the
  // stream never touches; the row count behind the fence fails.
  await waitForMigration(s.namespace, NAME, 'validated at a cut while syncing', (m) => m.status?.sync?.validatedPosition !== undefined, 120_000);
  const target = await openSession(s.target, { readOnly: false });
  try {
    await target.query("INSERT INTO items VALUES (1900000000, 'target only', 0, localtimestamp)");
  } finally {
    await target.close();
  }
  await approveOnceSyncing(t, s.namespace);
  const { fencedAt } = await stopWriterBehindFence(t, s);
  const done = await waitForMigration(s.namespace, NAME, 'ended', (m) => ENDED.includes(m.status?.phase ?? ''), 60_000);
  t.log(await fenceFigures(s.namespace, done));
  t.log(`${done.status?.phase ?? '?'}: ${done.status?.message ?? ''}`);
  t.true(['RolledBack', 'Failed'].includes(done.status?.phase ?? ''), done.status?.message);
  t.deepEqual((await readWeb(s.namespace)).spec?.selector, { app: 'web', track: 'blue' }, 'traffic stays on blue');
  const unfenced = await waitForMigration(s.namespace, NAME, 'the unfence Job ended', (m) => {
    const outcome = (m.status?.steps ?? []).find((entry) => entry.step === 'unfence')?.outcome;
    return outcome === 'Succeeded' || outcome === 'Failed';
  }, 30_000);
  const unfence = (unfenced.status?.steps ?? []).find((entry) => entry.step === 'unfence');
  t.is(unfence?.outcome, 'Succeeded', unfence?.message);
  // The rollback forgets the fence's record on the target: the unfence ran to its end before it was asked for.
  const rollback = (unfenced.status?.steps ?? []).find((entry) => entry.step === 'rollback');
  t.true(Date.parse(unfence?.finishedAt ?? '') <= Date.parse(rollback?.requestedAt ?? ''), `unfence finished ${unfence?.finishedAt ?? '?'}, rollback requested ${rollback?.requestedAt ?? '?'}`);
  t.is(await databaseReadOnlySetting(s.source), undefined, 'the setting is back to unset');
  t.is(await newSessionCanWrite(s.source), true);
  t.true((unfenced.status?.sync?.writeBlockedMs ?? -1) >= 0, 'writeBlockedMs: to the fence lifted');
  t.log(`writeBlockedMs: ${String(unfenced.status?.sync?.writeBlockedMs)}; unfenced ${String(Math.round((Date.parse(unfence?.finishedAt ?? '') - fencedAt) / 1000))} s after the fence`);
  const released = await waitForMigration(s.namespace, NAME, 'the capture released', (m) => m.status?.sync?.released !== undefined, 30_000);
  t.true(released.status?.sync?.released, released.status?.message);
  t.deepEqual(await captureSlots(s.source, { temporary: true }), [], 'no slot left');
  const reasons = await eventReasons(s.namespace, NAME);
  t.true(reasons.includes(REASONS.FenceLifted), reasons.join(', '));
}));
