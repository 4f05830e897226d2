// A step whose pods fail is visible at once (issue 14), on the real kube-apiserver and Job
// controller with the node stand-in running the engine against real databases: a target Secret
// whose URL has a wrong password makes the copy's first pod fail, and within 10 s of that pod's
// finish Ready says StepPodFailed, naming the target and the server's refusal, while the Job's
// retries go on; one Warning Event per failed pod; no password in status, Events or the log.
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, REASONS, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { freshNamespace, testKubeConfig } from '../support/kube.ts';
import { runOperator, type TestOperator } from '../support/operator.ts';
import { waitFor } from '../support/process.ts';
import { getMigration, readyOf } from '../support/migrations.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function seed(engine: Engine, url: string): Promise<void> {
  const session = await openSession(url, { readOnly: false });
  try {
    await session.query(engine === 'postgres' ? 'CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL)' : 'CREATE TABLE orders (id bigint PRIMARY KEY, customer varchar(100) NOT NULL)');
    await session.query('INSERT INTO orders VALUES (1, \'a\'), (2, \'b\')');
  } finally {
    await session.close();
  }
}

interface Staged {
  namespace: string;
  operator: TestOperator;
  /** Every password in play: the wrong one in the target Secret and the servers' real ones. */
  passwords: string[];
}

/** A namespace with its operator, a seeded source, and a target Secret whose URL has a wrong password. */
async function stage(t: ExecutionContext, prefix: string, from: Engine, to: Engine): Promise<Staged> {
  const namespace = await freshNamespace(t, prefix);
  const operator = await runOperator(t, namespace);
  const source = await freshDatabase(t, from);
  await seed(from, source);
  const target = new URL(await freshTargetDatabase(t, to));
  const realPasswords = [new URL(source).password, target.password].map(decodeURIComponent);
  const wrong = `Wr0ng${randomBytes(8).toString('hex')}`;
  target.password = wrong;
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'source-db' }, stringData: { url: source } } });
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'target-db' }, stringData: { url: target.toString() } } });
  return { namespace, operator, passwords: [wrong, ...realPasswords] };
}

async function apply(namespace: string, name: string, from: Engine, to: Engine, backoffLimit: number): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: {
    apiVersion: `${GROUP}/${VERSION}`, kind: KIND, metadata: { name },
    spec: {
      // The test servers' admin user is a superuser: accepted (a read-only role is refused by default).
      source: { engine: from, secretRef: { name: 'source-db' }, acceptWritableRole: true },
      target: { engine: to, secretRef: { name: 'target-db' } },
      tables: [{ name: 'orders' }],
      jobTemplate: { backoffLimit },
    },
  } });
}

/** The failed pods the step Job controls, oldest first, with their engine container's finish time. */
async function failedPods(namespace: string, job: string): Promise<{ name: string; finishedAt: number; message: string }[]> {
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` })).items;
  return pods.filter((pod) => pod.status?.phase === 'Failed').map((pod) => {
    const terminated = pod.status?.containerStatuses?.find((c) => c.name === 'engine')?.state?.terminated;
    return { name: pod.metadata?.name ?? '', finishedAt: new Date(terminated?.finishedAt ?? 0).getTime(), message: terminated?.message ?? '' };
  }).sort((a, b) => a.finishedAt - b.finishedAt);
}

/**
 * Polls until Ready says StepPodFailed; returns the status then and when it was first seen. The
 * API server keeps finish times to the second, so the measured delay is at most 1 s too long.
 */
async function firstPodFailure(namespace: string, name: string): Promise<{ migration: DataMigration; seenAt: number }> {
  let last: DataMigration | undefined;
  try {
    return await waitFor(`${name}: Ready StepPodFailed`, async () => {
      last = await getMigration(namespace, name);
      return readyOf(last).reason === REASONS.StepPodFailed ? { migration: last, seenAt: Date.now() } : undefined;
    }, 120_000, 200);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? {})}`, { cause: error });
  }
}

const eventsOf = async (namespace: string, name: string): Promise<k8s.EventsV1Event[]> =>
  (await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` })).items;

function assertNoPassword(t: ExecutionContext, passwords: readonly string[], where: string, text: string): void {
  for (const password of passwords) t.false(text.includes(password), `a password in ${where}`);
}

test('a wrong target password (PostgreSQL): status names the target and the error within 10 s of the first failed pod; one Event per failed pod; no password anywhere', async (t) => {
  const { namespace, operator, passwords } = await stage(t, 'spf-pg', 'postgres', 'postgres');
  await apply(namespace, 'wrongpw', 'postgres', 'postgres', 2);
  const { migration, seenAt } = await firstPodFailure(namespace, 'wrongpw');
  const [first] = await failedPods(namespace, 'wrongpw-g1-copy');
  if (first === undefined) return t.fail('StepPodFailed without a failed pod');
  t.true(seenAt - first.finishedAt <= 10_000, `said ${String(seenAt - first.finishedAt)} ms after the first failed pod finished`);
  t.log(`said ${String(seenAt - first.finishedAt)} ms after the first failed pod finished (its finish time rounded down to the second)`);
  const ready = readyOf(migration);
  t.regex(ready.message ?? '', /^The copy Job wrongpw-g1-copy: attempt 1 of 3 failed on the target \(pod wrongpw-g1-copy-\w+, exit \d+\): /);
  t.regex(ready.message ?? '', /cannot connect to postgres \(the target\): password authentication failed for user/);
  t.is(migration.status?.phase, 'Copying', 'the retries go on');
  t.like(migration.status?.conditions?.find((c) => c.type === 'Reconciling'), { status: 'True', reason: REASONS.StepPodFailed });
  t.like(migration.status?.conditions?.find((c) => c.type === 'Stalled'), { status: 'False' });
  t.truthy(await batch.readNamespacedJob({ namespace, name: 'wrongpw-g1-copy' }), 'the Job is not deleted');

  // The retries run out (backoff 10 s, then 20 s): the step fails, naming the target.
  const failed = await waitFor('wrongpw Failed', async () => {
    const m = await getMigration(namespace, 'wrongpw');
    return m.status?.phase === 'Failed' ? m : undefined;
  }, 150_000, 500);
  t.is(readyOf(failed).reason, REASONS.JobFailed);
  t.regex(readyOf(failed).message ?? '', /\(the target\): password authentication failed/);
  await sleep(2000); // Events are written without waiting: give the last one time to land.
  const pods = await failedPods(namespace, 'wrongpw-g1-copy');
  t.is(pods.length, 3);
  const said = await eventsOf(namespace, 'wrongpw');
  const podEvents = said.filter((e) => e.reason === REASONS.StepPodFailed);
  // One per failed pod: the last one may be seen only once the Job has failed (then JobFailed says it).
  t.true(podEvents.length >= pods.length - 1 && podEvents.length <= pods.length, `${String(podEvents.length)} StepPodFailed Events for ${String(pods.length)} failed pods`);
  t.log(podEvents.map((e) => e.note ?? '').join('\n'));
  const attempts = podEvents.map((e) => /attempt (\d+) of 3/.exec(e.note ?? '')?.[1]);
  t.deepEqual([...new Set(attempts)].length, attempts.length, `each failed pod said once: ${JSON.stringify(attempts)}`);
  t.true(podEvents.every((e) => e.type === 'Warning' && /on the target/.test(e.note ?? '')));
  t.is(said.filter((e) => e.reason === REASONS.JobFailed).length, 1);
  assertNoPassword(t, passwords, 'status', JSON.stringify(failed.status));
  assertNoPassword(t, passwords, 'Events', JSON.stringify(said));
  assertNoPassword(t, passwords, 'the operator log', operator.logs());
  assertNoPassword(t, passwords, 'the pods\' termination messages', JSON.stringify(pods));
});

test('a wrong target password (MariaDB): status names the target and the server\'s refusal within 10 s of the first failed pod', async (t) => {
  const { namespace, operator, passwords } = await stage(t, 'spf-my', 'postgres', 'mysql');
  await apply(namespace, 'wrongmy', 'postgres', 'mysql', 1);
  const { migration, seenAt } = await firstPodFailure(namespace, 'wrongmy');
  const [first] = await failedPods(namespace, 'wrongmy-g1-copy');
  if (first === undefined) return t.fail('StepPodFailed without a failed pod');
  t.true(seenAt - first.finishedAt <= 10_000, `said ${String(seenAt - first.finishedAt)} ms after the first failed pod finished`);
  t.regex(readyOf(migration).message ?? '', /attempt 1 of 2 failed on the target .*cannot connect to mysql \(the target\): Access denied for user/);
  assertNoPassword(t, passwords, 'status', JSON.stringify(migration.status));
  assertNoPassword(t, passwords, 'Events', JSON.stringify(await eventsOf(namespace, 'wrongmy')));
  assertNoPassword(t, passwords, 'the operator log', operator.logs());
});
