// kubectl-dm against the real kube-apiserver: `status` renders a real DataMigration with its
// labelled step Job and an Event about it, and approve, abort, retry, suspend and resume each
// change exactly the annotation or spec field the operator reads (asserted on the stored object).
// Most tests run no operator (the question is what the plugin writes); the last one runs it, with
// real databases, and drives migrations through the plugin alone: status, approve, abort, retry.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, APPROVE_ANNOTATION, GROUP, KIND, LABELS, MANAGED_BY, PLURAL, RETRY_ANNOTATION, STEPS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationStatus } from '../../src/api/types.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { freshNamespace, kubectlPath, testKubeConfig, testKubeconfigPath } from '../support/kube.ts';
import { runOperator } from '../support/operator.ts';
import { repoRoot } from '../support/platform.ts';
import { run, waitFor, type RunResult } from '../support/process.ts';
import { execSql, scalar } from '../support/sql.ts';

const PLUGIN = join(repoRoot, 'src', 'plugin', 'main.ts');
const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const events = kc.makeApiClient(k8s.EventsV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const object = (namespace: string) => ({ group: GROUP, version: VERSION, plural: PLURAL, namespace });

/** kubectl-dm as kubectl runs it: a child process, with KUBECONFIG pointing at the test control plane. */
function plugin(namespace: string, ...args: string[]): Promise<RunResult> {
  return run(process.execPath, [PLUGIN, ...args, '-n', namespace], { env: { ...process.env, KUBECONFIG: testKubeconfigPath() } });
}

async function create(namespace: string, name: string, spec: Partial<DataMigration['spec']> = {}): Promise<DataMigration> {
  return await custom.createNamespacedCustomObject({
    ...object(namespace),
    body: {
      apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name },
      spec: { source: { engine: 'mysql', secretRef: { name: 'src' }, acceptWritableRole: true }, target: { engine: 'postgres', secretRef: { name: 'dst' } }, tables: [{ name: 'orders' }], ...spec },
    },
  }) as DataMigration;
}

const get = async (namespace: string, name: string): Promise<DataMigration> => await custom.getNamespacedCustomObject({ ...object(namespace), name }) as DataMigration;

/** Writes status through the status subresource, as the operator does. */
async function setStatus(namespace: string, name: string, status: DataMigrationStatus): Promise<void> {
  await custom.patchNamespacedCustomObjectStatus({ ...object(namespace), name, body: { status } }, mergePatch);
}

const ready = (status: 'True' | 'False', reason: string, message: string) => ({
  type: 'Ready' as const, status, reason, message, lastTransitionTime: '2026-12-01T06:00:00Z',
});

test('status shows phase, steps with their Jobs, progress, validation, active selector and Events', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-status');
  const created = await create(namespace, 'orders', { cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' } });
  await setStatus(namespace, 'orders', {
    phase: 'Copying', observedGeneration: created.metadata?.generation ?? 1, runId: 'g1', startedAt: '2026-12-01T06:00:00Z',
    conditions: [ready('False', 'JobRunning', 'copying 1 table')],
    progress: { tablesTotal: 1, tablesDone: 0, rowsCopied: 4_100_000, rowsEstimated: 9_000_000, percent: 45, rowsPerSecond: 12_300, etaSeconds: 400, summary: '45%' },
    validation: { passed: false, summary: '1 passed, 1 failed', checks: [{ name: 'orders', kind: 'Checksum', passed: false, message: 'keys 7, 9 differ' }] },
    activeSelector: { track: 'blue' }, active: 'track=blue',
    jobs: [{ step: 'copy', name: 'orders-g1-copy', state: 'Running' }],
  });
  // A step Job as the operator labels it; suspended, so the controller manager starts no pod.
  await batch.createNamespacedJob({
    namespace,
    body: {
      metadata: { name: 'orders-g1-copy', labels: { [LABELS.migration]: 'orders', [LABELS.step]: 'copy', [LABELS.run]: 'g1', [LABELS.managedBy]: MANAGED_BY } },
      spec: { suspend: true, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'engine', image: 'busybox' }] } } },
    },
  });
  await events.createNamespacedEvent({
    namespace,
    body: {
      metadata: { name: 'orders.plugin1' }, eventTime: new Date().toISOString().replace('Z', '000Z') as unknown as Date, // the server wants microseconds
      reportingController: 'dataops.dev/datamigration-operator', reportingInstance: 'test', action: 'Copying', reason: 'Copying', type: 'Normal',
      note: 'copy Job orders-g1-copy started',
      regarding: { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name: 'orders', namespace, uid: created.metadata?.uid ?? '' },
    },
  });

  const result = await plugin(namespace, 'status', 'orders');
  t.is(result.code, 0, result.stderr);
  const out = result.stdout;
  t.regex(out, /^Phase:\s+Copying$/m);
  t.regex(out, /Ready:\s+False {2}JobRunning: copying 1 table/);
  t.regex(out, /copy\s+Pending\s+Job orders-g1-copy {2}pods 0 active, 0 succeeded, 0 failed/, out);
  t.regex(out, /Progress:\s+\[#{14}\.{16}\] {2}45% {2}0\/1 tables {2}4\.1M of ~9\.0M rows {2}12\.3k rows\/s {2}ETA 6m40s/);
  t.regex(out, /Validation: FAILED {2}1 passed, 1 failed\n {2}✖ Checksum orders: keys 7, 9 differ/);
  t.regex(out, /Active:\s+track=blue {2}\(Service shop, approval Manual\)/);
  t.regex(out, /Normal\s+Copying\s+copy Job orders-g1-copy started/);
});

test('status -w returns when the migration has ended: 0 on Succeeded, 1 on Failed', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-watch');
  const ok = await create(namespace, 'done');
  await setStatus(namespace, 'done', { phase: 'Succeeded', observedGeneration: ok.metadata?.generation ?? 1, conditions: [ready('True', 'Succeeded', 'done')] });
  const watched = await plugin(namespace, 'status', 'done', '-w');
  t.is(watched.code, 0, watched.stderr);
  t.regex(watched.stdout, /Phase:\s+Succeeded/);
  const bad = await create(namespace, 'broken');
  await setStatus(namespace, 'broken', {
    phase: 'Failed', observedGeneration: bad.metadata?.generation ?? 1, runId: 'g1', conditions: [ready('False', 'JobFailed', 'the copy Job failed')],
    steps: [{ step: 'copy', runId: 'g1', job: 'broken-g1-copy', outcome: 'Failed', reason: 'JobFailed', message: 'the copy Job failed' }],
  });
  const failed = await plugin(namespace, 'status', 'broken', '--watch');
  t.is(failed.code, 1);
  t.regex(failed.stdout, /Next:\s+after fixing the cause: kubectl dm retry broken/);
});

test('approve sets the approve annotation to the generation; refused without a Manual cutover', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-approve');
  const created = await create(namespace, 'manual', { cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' } });
  await setStatus(namespace, 'manual', { phase: 'AwaitingApproval', observedGeneration: created.metadata?.generation ?? 1, conditions: [ready('False', 'AwaitingApproval', 'validation passed')] });
  const result = await plugin(namespace, 'approve', 'manual');
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /approved generation 1 of manual: the cutover proceeds now/);
  t.is((await get(namespace, 'manual')).metadata?.annotations?.[APPROVE_ANNOTATION], String(created.metadata?.generation));

  await create(namespace, 'automatic');
  const refused = await plugin(namespace, 'approve', 'automatic');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /has no cutover: there is nothing to approve/);
  t.is((await get(namespace, 'automatic')).metadata?.annotations?.[APPROVE_ANNOTATION], undefined);
});

test('abort sets the abort annotation; refused on a finished migration', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-abort');
  const created = await create(namespace, 'running');
  await setStatus(namespace, 'running', { phase: 'Copying', observedGeneration: 1, runId: 'g1', conditions: [ready('False', 'JobRunning', 'copying')] });
  const result = await plugin(namespace, 'abort', 'running');
  t.is(result.code, 0, result.stderr);
  t.is((await get(namespace, 'running')).metadata?.annotations?.[ABORT_ANNOTATION], String(created.metadata?.generation));

  await create(namespace, 'finished');
  await setStatus(namespace, 'finished', { phase: 'Succeeded', observedGeneration: 1, conditions: [ready('True', 'Succeeded', 'done')] });
  const refused = await plugin(namespace, 'abort', 'finished');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /is Succeeded already/);
  t.is((await get(namespace, 'finished')).metadata?.annotations?.[ABORT_ANNOTATION], undefined);
});

test('retry sets a new token and removes the abort annotation; refused unless a step failed', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-retry');
  await create(namespace, 'failed');
  await custom.patchNamespacedCustomObject({ ...object(namespace), name: 'failed', body: { metadata: { annotations: { [ABORT_ANNOTATION]: 'true' } } } }, mergePatch);
  await setStatus(namespace, 'failed', {
    phase: 'Failed', observedGeneration: 1, runId: 'g1', conditions: [ready('False', 'Aborted', 'aborted')],
    steps: [{ step: 'copy', runId: 'g1', job: 'failed-g1-copy', outcome: 'Aborted', reason: 'Aborted' }],
  });
  const first = await plugin(namespace, 'retry', 'failed');
  t.is(first.code, 0, first.stderr);
  const annotations = (await get(namespace, 'failed')).metadata?.annotations ?? {};
  t.regex(annotations[RETRY_ANNOTATION] ?? '', /^[a-z0-9]{8}$/);
  t.is(annotations[ABORT_ANNOTATION], undefined, 'a set abort annotation would refuse the retry');

  // A chosen token is normalised as the operator reads it; one already used by the run is refused.
  await setStatus(namespace, 'failed', { runId: 'g1-rfix2' });
  const used = await plugin(namespace, 'retry', 'failed', '--token', 'Fix-2');
  t.is(used.code, 1);
  t.regex(used.stderr, /token fix2 was used by run g1-rfix2/);
  const chosen = await plugin(namespace, 'retry', 'failed', '--token', 'Fix-3');
  t.is(chosen.code, 0, chosen.stderr);
  t.is((await get(namespace, 'failed')).metadata?.annotations?.[RETRY_ANNOTATION], 'fix3');

  await create(namespace, 'rolled-back');
  await setStatus(namespace, 'rolled-back', { phase: 'RolledBack', observedGeneration: 1, conditions: [ready('False', 'RolledBack', 'validation failed')] });
  const refused = await plugin(namespace, 'retry', 'rolled-back');
  t.is(refused.code, 1);
  t.regex(refused.stderr, /only a Failed migration can be retried/);
  t.is((await get(namespace, 'rolled-back')).metadata?.annotations?.[RETRY_ANNOTATION], undefined);
});

test('suspend and resume set spec.suspend', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-suspend');
  await create(namespace, 'paused');
  const suspended = await plugin(namespace, 'suspend', 'paused');
  t.is(suspended.code, 0, suspended.stderr);
  t.is((await get(namespace, 'paused')).spec.suspend, true);
  const again = await plugin(namespace, 'suspend', 'paused');
  t.regex(again.stdout, /suspended already/);
  const resumed = await plugin(namespace, 'resume', 'paused');
  t.is(resumed.code, 0, resumed.stderr);
  t.is((await get(namespace, 'paused')).spec.suspend, false);
});

test('kubectl finds the plugin on the PATH: kubectl dm status', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-kubectl');
  await create(namespace, 'found');
  const bin = mkdtempSync(join(tmpdir(), 'kubectl-dm-'));
  t.teardown(() => { rmSync(bin, { recursive: true, force: true }); });
  // As npm links the package's bin: an executable named kubectl-dm (here running the sources).
  writeFileSync(join(bin, 'kubectl-dm'), `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN}" "$@"\n`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, KUBECONFIG: testKubeconfigPath() };
  const listed = await run(kubectlPath(), ['plugin', 'list', '--name-only'], { env });
  t.regex(listed.stdout, /^kubectl-dm$/m, listed.stdout + listed.stderr);
  const result = await run(kubectlPath(), ['dm', 'status', 'found', '-n', namespace], { env });
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`^Name:\\s+${namespace}/found$`, 'm'));
});

test('a missing DataMigration and bad usage are clear errors', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-errors');
  const missing = await plugin(namespace, 'status', 'nowhere');
  t.is(missing.code, 1);
  t.regex(missing.stderr, /kubectl dm status nowhere: .*not found/);
  const usage = await plugin(namespace, 'logs', 'x', '--step', 'everything');
  t.is(usage.code, 2);
  t.regex(usage.stderr, new RegExp(`--step everything: expected one of ${STEPS.join(', ')}`));
});

// ---- with the operator: the plugin's requests on real migrations ---------------------------

async function waitForPhase(namespace: string, name: string, phases: string[], timeoutMs = 180_000): Promise<DataMigration> {
  let last: DataMigration | undefined;
  try {
    return await waitFor(`DataMigration ${name} in ${phases.join('/')}`, async () => {
      last = await get(namespace, name);
      return phases.includes(last.status?.phase ?? '') && last.status?.observedGeneration === last.metadata?.generation ? last : undefined;
    }, timeoutMs, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? {})}`, { cause: error });
  }
}

test('with the operator: status and approve take a Manual migration to Succeeded; abort and retry round-trip another', async (t) => {
  const namespace = await freshNamespace(t, 'plugin-live');
  await runOperator(t, namespace);
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, [
    'CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL)',
    "INSERT INTO orders SELECT g, 'customer ' || g FROM generate_series(1, 2000) g",
  ]);
  await execSql(target, ['CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL)']);
  for (const [name, url] of [['source-db', source], ['target-db', target]] as const) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url } } });
  }
  await core.createNamespacedService({ namespace, body: { metadata: { name: 'shop', annotations: { 'dataops.dev/cutover-by': 'manual' } }, spec: { selector: { app: 'shop', track: 'blue' }, ports: [{ port: 80 }] } } });
  const endpoints = { source: { engine: 'postgres' as const, secretRef: { name: 'source-db' }, acceptWritableRole: true }, target: { engine: 'postgres' as const, secretRef: { name: 'target-db' } } };

  await custom.createNamespacedCustomObject({ ...object(namespace), body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name: 'manual' },
    spec: { ...endpoints, tables: [{ name: 'orders' }], cutover: { service: 'shop', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, approval: 'Manual' } },
  } });
  await waitForPhase(namespace, 'manual', ['AwaitingApproval', 'Failed']);
  const waiting = await plugin(namespace, 'status', 'manual');
  t.is(waiting.code, 0, waiting.stderr);
  t.regex(waiting.stdout, /^Phase:\s+AwaitingApproval$/m, waiting.stdout);
  t.regex(waiting.stdout, /✔ copy\s+Succeeded Job \S+/, waiting.stdout);
  t.regex(waiting.stdout, /Validation: passed/);
  t.regex(waiting.stdout, /Next:\s+waiting for approval: kubectl dm approve manual/);
  t.is((await plugin(namespace, 'approve', 'manual')).code, 0);
  const watched = await plugin(namespace, 'status', 'manual', '-w');
  t.is(watched.code, 0, watched.stdout + watched.stderr);
  t.regex(watched.stdout, /Phase:\s+Succeeded/);
  t.deepEqual((await core.readNamespacedService({ name: 'shop', namespace })).spec?.selector, { app: 'shop', track: 'green' });

  // Held before its first step (suspended), aborted, then retried: it runs from the start and succeeds.
  await execSql(target, ['CREATE TABLE orders_copy (id bigint PRIMARY KEY, customer text NOT NULL)']);
  await custom.createNamespacedCustomObject({ ...object(namespace), body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name: 'again' },
    spec: { ...endpoints, tables: [{ name: 'orders', target: 'orders_copy' }], suspend: true },
  } });
  await waitFor('the suspended migration to be observed', async () => ((await get(namespace, 'again')).status?.observedGeneration === 1 ? true : undefined), 60_000, 250);
  t.is((await plugin(namespace, 'abort', 'again')).code, 0);
  const aborted = await waitForPhase(namespace, 'again', ['Failed']);
  t.is(aborted.status?.conditions?.find((c) => c.type === 'Ready')?.reason, 'Aborted');
  t.is((await plugin(namespace, 'resume', 'again')).code, 0);
  const retried = await plugin(namespace, 'retry', 'again');
  t.is(retried.code, 0, retried.stderr);
  const done = await waitForPhase(namespace, 'again', ['Succeeded', 'RolledBack'], 180_000);
  t.is(done.status?.phase, 'Succeeded', done.status?.message);
  t.regex(done.status?.runId ?? '', /-r[a-z0-9]{8}$/, 'the retry ran under the plugin\'s token');
  t.is(await scalar(target, 'SELECT count(*) FROM orders_copy'), '2000');
});
