// Issue 14 attacked again, with cases of its own, by someone who may only create and edit
// DataMigrations (and perhaps Pods) in one namespace: consent that only looks like the name or
// comes from another namespace, a cutover edited after the switch, two migrations chaining one
// Service, Job names crafted to collide, a jobTemplate carrying pod fields the schema does not
// know, and step results and termination messages that are huge, hold control characters, a
// connection URL or fields status never takes. Each case asserts that it is refused with a reason
// or is harmless, and that nothing was created or patched that must not be.
import { Writable } from 'node:stream';
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { ABORT_ANNOTATION, API_VERSION, CUTOVER_BY_ANNOTATION, KIND, LABELS, MANAGED_BY, REASONS, STEPS, SWITCH_RECORD } from '../../src/api/constants.ts';
import { STATUS_LIMITS } from '../../src/api/datamigration-schema.ts';
import type { CutoverSpec, DataMigration, DataMigrationSpec, JobTemplateSpec } from '../../src/api/types.ts';
import { ClusterError } from '../../src/controller/cluster.ts';
import { buildStepJob, manifestProblem, MAX_ENV_STRING_BYTES, stepJobName, type EngineConfig } from '../../src/controller/job-builder.ts';
import { createLogger, registerSecret } from '../../src/controller/logger.ts';
import { createMetrics } from '../../src/controller/metrics.ts';
import { checkPodPolicy, reservedKey } from '../../src/controller/pod-policy.ts';
import { lintObject } from '../../src/cli/lint.ts';
import { Reconciler } from '../../src/controller/reconciler.ts';
import { MemoryCluster } from '../support/memory-cluster.ts';

const UID = '3b241101-e2bb-4255-8caf-4136c566a962';
const OTHER_UID = '9a1f6c8e-5b0d-4a47-9d2e-3f1c7b6a2e10';
const KEY = 'shop/orders';
const engine: EngineConfig = { image: 'engine:dev', command: ['dmctl'] };
const silent = createLogger('error', new Writable({ write: (_chunk, _encoding, done) => { done(); } }));
const T0 = new Date('2025-03-01T00:00:00Z');

function migrationOf(name: string, uid: string, spec: Partial<DataMigrationSpec> = {}, namespace = 'shop'): DataMigration {
  return {
    apiVersion: API_VERSION, kind: KIND,
    metadata: { name, namespace, uid, generation: 1 },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      strategy: { type: 'BigBang' }, ...spec,
    },
  };
}

/**
 * A cluster whose informer cache of Services can lag the store (staleService), and whose Job cache
 * holds, as the operator's informer does, only Jobs with the manager label.
 */
class LaggingCluster extends MemoryCluster {
  staleService: k8s.V1Service | undefined;
  override service(namespace: string, name: string): k8s.V1Service | undefined {
    return this.staleService ?? super.service(namespace, name);
  }
  override jobs(namespace: string): readonly k8s.V1Job[] {
    return super.jobs(namespace).filter((job) => job.metadata?.labels?.[LABELS.managedBy] === MANAGED_BY);
  }
}

function setUp(migrations: DataMigration[]): { cluster: LaggingCluster; reconciler: Reconciler; tick: (key?: string) => Promise<void> } {
  const cluster = new LaggingCluster();
  for (const namespace of ['shop', 'evil']) {
    cluster.secrets.set(`${namespace}/legacy-db`, { url: 'mysql://u:p@legacy/db' });
    cluster.secrets.set(`${namespace}/orders-pg`, { url: 'postgres://u:p@pg/db' });
  }
  for (const m of migrations) cluster.add(m);
  const clock = { now: T0 };
  const reconciler = new Reconciler({
    cluster, engine, logger: silent, metrics: createMetrics(), now: () => clock.now,
    readProgress: () => Promise.resolve({ progress: {}, rows: 0, at: clock.now.getTime() }),
  });
  const tick = async (key = KEY): Promise<void> => {
    clock.now = new Date(clock.now.getTime() + 1000);
    await reconciler.reconcile(key);
  };
  return { cluster, reconciler, tick };
}

const stored = (cluster: MemoryCluster, key = KEY): DataMigration => cluster.migrations.get(key) ?? (() => { throw new Error(`${key} is gone`); })();
const readyOf = (m: DataMigration) => m.status?.conditions?.find((c) => c.type === 'Ready');
const patches = (cluster: MemoryCluster): string[] => cluster.requests.filter((r) => r.startsWith('patchService'));
const edit = (cluster: MemoryCluster, key: string, change: (m: DataMigration) => void): void => {
  const m = stored(cluster, key);
  change(m);
  m.metadata ??= {};
  m.metadata.generation = (m.metadata.generation ?? 1) + 1;
  cluster.migrations.set(key, m);
};
const annotate = (annotations: Record<string, string>) => (m: DataMigration): void => {
  m.metadata ??= {};
  m.metadata.annotations = { ...m.metadata.annotations, ...annotations };
};
const terminated = (message: string, exitCode = 0): k8s.V1Pod => ({
  metadata: { name: 'p0' },
  status: { phase: exitCode === 0 ? 'Succeeded' : 'Failed', containerStatuses: [{ name: 'engine', image: 'engine:dev', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, message, finishedAt: T0 } } }] },
});
/** Every text the migration's status and Events hold. */
const said = (cluster: MemoryCluster, key = KEY): string => JSON.stringify(stored(cluster, key).status) + JSON.stringify(cluster.events);

const CUTOVER: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
const AT_CUTOVER = { runId: 'g1', steps: [
  { step: 'start' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2025-02-28T00:00:00Z' },
  { step: 'copy' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2025-02-28T00:00:00Z' },
  { step: 'validate' as const, runId: 'g1', outcome: 'Succeeded' as const, finishedAt: '2025-02-28T00:00:00Z' },
  { step: 'switch' as const, runId: 'g1' },
] };

function atCutover(name: string, uid: string, cutover: CutoverSpec = CUTOVER, namespace = 'shop'): DataMigration {
  const m = migrationOf(name, uid, { cutover }, namespace);
  m.metadata ??= {};
  m.metadata.finalizers = ['dataops.dev/cleanup'];
  m.status = structuredClone(AT_CUTOVER);
  return m;
}

// ---------------------------------------------------------------------------------------------
// The Service's consent

test('consent that only looks like the name (look-alike letters, invisible characters, other separators) never switches the Service', async (t) => {
  const lookAlikes = [
    'оrders', // Cyrillic о
    'orders\u200b', // zero-width space, which trim() keeps
    '\u2060orders', // word joiner
    'orders\u00ad', // soft hyphen
    'other，orders', // full-width comma: not a separator
    'other;orders',
    'other orders',
    'other\norders', // one line per name is not the syntax
    'orders\u0000',
    'ordérs',
    'orders/shop',
  ];
  for (const consent of lookAlikes) {
    const { cluster, tick } = setUp([atCutover('orders', UID)]);
    cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: consent } });
    await tick();
    t.deepEqual(patches(cluster), [], `consent ${JSON.stringify(consent)}`);
    t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { track: 'blue' });
    t.is(readyOf(stored(cluster))?.reason, REASONS.ServiceNotOptedIn, `consent ${JSON.stringify(consent)}`);
  }
  // Surrounding whitespace of any kind and empty list items name the migration exactly: harmless.
  for (const consent of ['\torders\n', 'orders,', '\u00a0orders', ' , orders , ']) {
    const { cluster, tick } = setUp([atCutover('orders', UID)]);
    cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: consent } });
    await tick();
    t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { track: 'green' }, `consent ${JSON.stringify(consent)}`);
  }
});

test('a Service of another namespace that consents to the name is never reached: the namesake in its own namespace waits for its own Service', async (t) => {
  const { cluster, tick } = setUp([atCutover('orders', UID, CUTOVER, 'evil')]);
  const victim = cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  const before = structuredClone(victim);
  await tick('evil/orders');
  t.deepEqual(patches(cluster), []);
  t.deepEqual(cluster.services.get('shop/orders-api'), before);
  t.is(readyOf(stored(cluster, 'evil/orders'))?.reason, REASONS.ServiceNotFound);
  // Its own namespace's Service of that name, without consent, is not switched either.
  cluster.addService('evil', 'orders-api', { selector: { track: 'blue' } });
  await tick('evil/orders');
  t.deepEqual(patches(cluster), []);
  t.is(readyOf(stored(cluster, 'evil/orders'))?.reason, REASONS.ServiceNotOptedIn);
  t.deepEqual(cluster.services.get('shop/orders-api'), before);
});

test('a toSelector that other consenting Services select too: only the Service the spec names is patched', async (t) => {
  const { cluster, tick } = setUp([atCutover('orders', UID)]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  const twin = structuredClone(cluster.addService('shop', 'orders-api-twin', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } }));
  const green = structuredClone(cluster.addService('shop', 'green', { selector: { track: 'green' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } }));
  await tick();
  t.deepEqual(patches(cluster), ['patchService orders-api track=green']);
  t.deepEqual(cluster.services.get('shop/orders-api-twin'), twin);
  t.deepEqual(cluster.services.get('shop/green'), green);
});

test('a finished migration whose spec.cutover is edited to name another consenting Service switches nothing more', async (t) => {
  const { cluster, tick } = setUp([atCutover('orders', UID)]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  const other = structuredClone(cluster.addService('shop', 'payments', { selector: { app: 'payments' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } }));
  await tick();
  await tick();
  t.is(stored(cluster).status?.phase, 'Succeeded');
  const switched = structuredClone(cluster.services.get('shop/orders-api'));
  edit(cluster, KEY, (m) => { m.spec.cutover = { service: 'payments', fromSelector: { app: 'payments' }, toSelector: { app: 'attacker' } }; });
  await tick();
  edit(cluster, KEY, annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick();
  t.is(stored(cluster).status?.phase, 'Succeeded');
  t.deepEqual(patches(cluster), ['patchService orders-api track=green'], 'the one switch, nothing after the edit');
  t.deepEqual(cluster.services.get('shop/payments'), other);
  t.deepEqual(cluster.services.get('shop/orders-api'), switched);
});

test('abort after spec.cutover was pointed at another Service (if that edit got past admission): that Service is never "restored"', async (t) => {
  const { cluster, tick } = setUp([atCutover('orders', UID, { ...CUTOVER, approval: 'Automatic' })]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } });
  // Another Service the attacker would like flipped "back": it selects the toSelector, and has no record of this migration.
  const bait = structuredClone(cluster.addService('shop', 'payments', { selector: { track: 'green' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders' } }));
  // The switch is sent; before its outcome is seen, the spec is edited and the migration aborted.
  await tick();
  t.deepEqual(patches(cluster), ['patchService orders-api track=green']);
  const status = stored(cluster).status;
  t.is(status?.phase, 'CuttingOver', 'the switch is sent, its outcome not yet seen');
  if (status?.phase === 'CuttingOver') {
    edit(cluster, KEY, (m) => {
      m.spec.cutover = { service: 'payments', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
      annotate({ [ABORT_ANNOTATION]: 'true' })(m);
    });
    await tick();
    await tick();
  }
  t.deepEqual(cluster.services.get('shop/payments'), bait, 'a Service this migration never switched is never "restored"');
  t.false(patches(cluster).some((p) => p.startsWith('patchService payments')));
  // What the switch did stays as it is (its record on it): the API server refuses this edit of
  // spec.cutover once the switch was asked for (test/e2e/attack-14b.test.ts), so that abort and
  // rollback always look at the Service the migration switched.
  t.is(cluster.services.get('shop/orders-api')?.metadata?.annotations?.[SWITCH_RECORD.uid], UID);
});

test('two migrations chaining one Service: the second switches from the first\'s toSelector; the first\'s abort then leaves it, the second\'s restores only its own step', async (t) => {
  const chained: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'green' }, toSelector: { track: 'canary' } };
  const { cluster, tick } = setUp([atCutover('orders', UID), atCutover('rival', OTHER_UID, chained)]);
  cluster.addService('shop', 'orders-api', { selector: { app: 'orders', track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders,rival' } });
  await tick();
  await tick('shop/rival');
  t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { app: 'orders', track: 'canary' });
  t.is(cluster.services.get('shop/orders-api')?.metadata?.annotations?.[SWITCH_RECORD.uid], OTHER_UID);
  const count = patches(cluster).length;
  // orders aborts (or rolls back): the Service carries rival's record, so orders leaves it.
  edit(cluster, KEY, annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick();
  await tick();
  t.is(patches(cluster).length, count, 'orders restores nothing it no longer owns');
  t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { app: 'orders', track: 'canary' });
  t.not(stored(cluster).status?.phase, 'RolledBack');
  // rival aborts: back to what rival found (orders' green), not to blue.
  edit(cluster, 'shop/rival', annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick('shop/rival');
  await tick('shop/rival');
  const rivalPhase = stored(cluster, 'shop/rival').status?.phase;
  if (rivalPhase === 'Succeeded') {
    t.pass('a Succeeded migration is not aborted: nothing to restore');
  } else {
    t.deepEqual(cluster.services.get('shop/orders-api')?.spec?.selector, { app: 'orders', track: 'green' });
  }
});

// ---------------------------------------------------------------------------------------------
// Job names

test('Job names never collide across migrations: crafted names, runs and retries give distinct names, each a valid label value', (t) => {
  const long = `a${'b'.repeat(62)}`;
  const cases: [string, string][] = [
    ['orders', 'g1'], ['orders-g1', 'g1'], ['orders', 'g1-g1'], ['orders-g1-rx', 'g1'], ['orders', 'g1-rx'], ['orders-g1', 'g1-rx'],
    ['orders-g1-copy', 'g1'], ['orders', 'g11'], ['orders-g1', 'g1-r1'], ['orders-g11', 'g1'], ['orders-g1-r1', 'g1'],
    [long, 'g1'], [long.slice(0, 62), 'g1'], [`${long.slice(0, 46)}-x`, 'g1'], [`${long.slice(0, 46)}-y`, 'g1'], [long, 'g1-rabcdefgh'], [long, 'g1-rabcdefgi'],
    [`${long.slice(0, 46)}-g1`, 'g1'], [long.slice(0, 46), 'g1-g1'],
  ];
  const seen = new Map<string, string>();
  for (const [migration, run] of cases) {
    for (const step of STEPS) {
      const name = stepJobName(migration, run, step);
      t.true(name.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name), name);
      const owner = `${migration} ${run} ${step}`;
      // A Job name is the migration's only if the operator's own run ids (g<n>, g<n>-r<token>) could form it.
      if (!/^g[0-9]+(-r[a-z0-9]{1,8})?$/.test(run)) continue;
      t.is(seen.get(name) ?? owner, owner, `${name}: ${owner} and ${seen.get(name) ?? ''}`);
      seen.set(name, owner);
    }
  }
});

test('a Job of someone else\'s that happens to bear a step\'s name (no manager label, so not in the operator\'s cache) is never deleted by an abort or a deletion', async (t) => {
  // The victim's Job: a name the attacker can make a step's (the migration "backup", generation 1),
  // created by someone the attacker is not, with nothing of the operator's on it.
  const { cluster, tick } = setUp([migrationOf('backup', UID)]);
  cluster.jobList.push({ metadata: { name: 'backup-g1-copy', namespace: 'shop', uid: 'victim-job', labels: { app: 'backup' } }, spec: { template: {} } });
  await tick('shop/backup');
  t.true(cluster.requests.includes('createJob backup-g1-copy'), 'the step asked for its Job and met the victim\'s (409)');
  edit(cluster, 'shop/backup', annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick('shop/backup');
  t.is(stored(cluster, 'shop/backup').status?.phase, 'Failed');
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.uid), ['victim-job'], 'the victim\'s Job is still there');
  t.false(cluster.requests.includes('deleteJob backup-g1-copy'), cluster.requests.join(', '));
  // Deleting the migration deletes the Jobs it controls: none.
  edit(cluster, 'shop/backup', (m) => {
    m.metadata ??= {};
    m.metadata.deletionTimestamp = new Date();
  });
  await tick('shop/backup');
  t.deepEqual(cluster.jobList.map((j) => j.metadata?.uid), ['victim-job']);
  t.false(cluster.requests.some((r) => r.startsWith('deleteJob')), cluster.requests.join(', '));
});

test('an abort still deletes the Job this operator created moments ago, before its cache shows it', async (t) => {
  const { cluster, tick } = setUp([migrationOf('orders', UID)]);
  await tick();
  t.true(cluster.requests.includes('createJob orders-g1-copy'));
  // The informer has not delivered the new Job yet (hidden from this cache without its manager label).
  const hidden = new Set(cluster.jobList.map((j) => j.metadata?.uid));
  for (const job of cluster.jobList) delete job.metadata?.labels?.[LABELS.managedBy];
  edit(cluster, KEY, annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick();
  t.true(cluster.requests.includes('deleteJob orders-g1-copy'), cluster.requests.join(', '));
  t.false(cluster.jobList.some((j) => hidden.has(j.metadata?.uid)));
  t.is(stored(cluster).status?.phase, 'Failed');
});

test('a spec the CRD admits but no step pod could start with (its manifest past the 128 KiB of one environment string) is refused before any Job, with the way out', async (t) => {
  const migrations = Array.from({ length: 3 }, (_, i) => ({ version: String(i + 1), description: `m${String(i)}`, up: `-- ${'x'.repeat(50_000)}\nSELECT 1`, down: 'SELECT 1' }));
  const big = migrationOf('orders', UID, { schema: { migrations } });
  t.true(manifestProblem(big) !== undefined);
  t.throws(() => buildStepJob(big, 'schema', 'g1', engine), { message: /DMO_MANIFEST, which would hold 15[0-9]{4} bytes/ });
  const { cluster, tick } = setUp([big]);
  await tick();
  await tick();
  t.deepEqual(cluster.jobList, []);
  const ready = readyOf(stored(cluster));
  t.is(ready?.reason, REASONS.InvalidSpec);
  t.regex(ready?.message ?? '', /spec\.schema\.configMapRef/);
  t.deepEqual(cluster.events.map((e) => e.reason), [REASONS.InvalidSpec]);
  // Just under the bound, the Job is built and its manifest fits.
  const fits = migrationOf('orders', UID, { schema: { migrations: [{ version: '1', description: 'm', up: `-- ${'x'.repeat(120_000)}\nSELECT 1` }] } });
  t.is(manifestProblem(fits), undefined);
  const env = buildStepJob(fits, 'schema', 'g1', engine).spec?.template.spec?.containers[0]?.env ?? [];
  t.true(env.every((e) => Buffer.byteLength(`${e.name}=${e.value ?? ''}`) + 1 <= MAX_ENV_STRING_BYTES));
});

// ---------------------------------------------------------------------------------------------
// Pod fields the schema does not know (a client that skipped pruning, or a future field)

test('a jobTemplate carrying pod fields the schema does not know never loosens the step pod', (t) => {
  const loose = {
    hostNetwork: true, hostPID: true, hostIPC: true, shareProcessNamespace: true, runtimeClassName: 'unconfined', hostUsers: true,
    securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ['SYS_ADMIN'] }, procMount: 'Unmasked', sysctls: [{ name: 'kernel.shm_rmid_forced', value: '0' }] },
    volumes: [{ name: 'host', hostPath: { path: '/' } }, { name: 'other', secret: { secretName: 'payments-db' } }],
    volumeMounts: [{ name: 'host', mountPath: '/host' }],
    env: [{ name: 'STOLEN', valueFrom: { secretKeyRef: { name: 'payments-db', key: 'password' } } }],
    envFrom: [{ secretRef: { name: 'payments-db' } }],
    initContainers: [{ name: 'x', image: 'evil:latest' }], containers: [{ name: 'x', image: 'evil:latest' }],
    command: ['sh', '-c', 'cat /host/etc/shadow'], args: ['--evil'],
    dnsPolicy: 'None', dnsConfig: { nameservers: ['6.6.6.6'] }, hostAliases: [{ ip: '6.6.6.6', hostnames: ['pg'] }],
    automountServiceAccountToken: true, serviceAccount: 'admin', nodeName: 'control-plane', schedulerName: 'evil', overhead: { cpu: '100' },
    resources: { limits: { memory: '1Gi' }, claims: [{ name: 'gpu' }] },
  };
  const m = migrationOf('orders', UID, { jobTemplate: loose as unknown as JobTemplateSpec });
  for (const step of STEPS) {
    const job = buildStepJob(m, step, 'g1', engine);
    const pod = job.spec?.template.spec;
    const container = pod?.containers[0];
    // The manifest the engine reads (DMO_MANIFEST) is text in an env value: everything else is the pod.
    const text = JSON.stringify(job, (key, value: unknown) => (key === 'env' && Array.isArray(value) ? value.filter((e: k8s.V1EnvVar) => e.name !== 'DMO_MANIFEST') : value));
    for (const word of ['hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'runtimeClassName', 'hostUsers', 'privileged', 'SYS_ADMIN', 'procMount', 'sysctls', 'hostPath',
      'payments-db', 'STOLEN', 'envFrom', 'initContainers', 'evil', 'dnsConfig', 'hostAliases', 'nodeName', 'schedulerName', 'overhead', 'claims', 'Unmasked', 'shadow']) {
      t.false(text.includes(word), `${step}: ${word} reached the Job`);
    }
    t.is(pod?.containers.length, 1);
    t.is(container?.image, 'engine:dev');
    t.false(pod?.automountServiceAccountToken);
    t.is(pod?.serviceAccountName, undefined);
    t.deepEqual(container?.resources, { limits: { memory: '1Gi' } }, 'limits and requests only');
    t.deepEqual(container?.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
  }
});

test('a Secret key that is a path goes nowhere but the key: the CA file\'s path and mount are the operator\'s', (t) => {
  const m = migrationOf('orders', UID, {
    source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' }, tls: { mode: 'verify-full', caSecretRef: { name: 'ca', key: '..data' } } },
    target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: '..' }, tls: { mode: 'verify-ca', caSecretRef: { name: 'ca', key: '.' } } },
  });
  const job = buildStepJob(m, 'copy', 'g1', engine);
  const pod = job.spec?.template.spec;
  for (const volume of pod?.volumes ?? []) {
    for (const item of volume.secret?.items ?? []) t.is(item.path, 'ca.crt');
  }
  t.deepEqual(pod?.containers[0]?.volumeMounts?.map((mount) => mount.mountPath), ['/scratch', '/etc/datamigration/ca/source', '/etc/datamigration/ca/target']);
  t.true(pod?.containers[0]?.volumeMounts?.every((mount) => mount.mountPath === '/scratch' || mount.readOnly === true));
});

test('a Secret key that no Secret can hold ("." or "..") waits as a missing key: no Job', async (t) => {
  const m = migrationOf('orders', UID, { target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: '..' } } });
  const { cluster, tick } = setUp([m]);
  await tick();
  t.deepEqual(cluster.jobList, []);
  t.is(readyOf(stored(cluster))?.reason, REASONS.SecretKeyNotFound);
});

// ---------------------------------------------------------------------------------------------
// What a step leaves (its termination message) on the way to status

/** A migration whose copy Job exists (created by the first reconcile). */
async function copying(): Promise<{ cluster: MemoryCluster; tick: (key?: string) => Promise<void> }> {
  const { cluster, tick } = setUp([migrationOf('orders', UID)]);
  await tick();
  t0Check(cluster);
  return { cluster, tick };
}
function t0Check(cluster: MemoryCluster): void {
  if (!cluster.jobList.some((j) => j.metadata?.name === 'orders-g1-copy')) throw new Error(`no copy Job: ${cluster.requests.join(', ')}`);
}
/** A running Job with one failed pod (its retries go on). */
function failPod(cluster: MemoryCluster, name: string, message: string): void {
  const job = cluster.jobList.find((j) => j.metadata?.name === name);
  if (!job) throw new Error(`no Job ${name}`);
  job.status = { failed: 1, active: 1 };
  const pod = terminated(message, 1);
  pod.metadata = { name: `${name}-x1`, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata?.uid ?? '', controller: true }] };
  cluster.pods.set(name, [pod]);
}

const CONTROL = '\u001b]0;owned\u0007\u001b[2J\u001b[31mRED\u001b[0m\rover\u0000nul\u009b31m';
/** C0 controls but tab and newline, DEL and C1 controls: what a terminal obeys. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

test('a failed step\'s last words are bounded, scrubbed of URL passwords and known secrets, and carry no terminal control sequences, on the first failed pod and at the end', async (t) => {
  registerSecret('s3cr3t-token-of-payments');
  const words = `cannot connect to postgres (the target): postgres://app:hunter22@pg/db refused; token s3cr3t-token-of-payments; ${CONTROL}; ${'x'.repeat(1_000_000)}`;
  const { cluster, tick } = await copying();
  failPod(cluster, 'orders-g1-copy', words);
  await tick();
  const first = said(cluster);
  const firstText = collectText(stored(cluster).status) + cluster.events.map((e) => e.message).join('');
  t.is(readyOf(stored(cluster))?.reason, REASONS.StepPodFailed, first.slice(0, 400));
  cluster.finishJob('orders-g1-copy', 'Failed', [terminated(words, 1)]);
  await tick();
  t.is(stored(cluster).status?.phase, 'Failed');
  const allText = collectText(stored(cluster).status) + cluster.events.map((e) => e.message).join('');
  for (const [what, text] of [['first failed pod', firstText], ['final failure', allText]] as const) {
    t.false(text.includes('hunter22'), `${what}: a URL password in status or an Event`);
    t.false(text.includes('s3cr3t-token-of-payments'), `${what}: a known secret in status or an Event`);
    t.false(CONTROL_CHARACTER.test(text), `${what}: control characters`);
    t.true(text.includes('cannot connect to postgres (the target)'), `${what}: the engine's words are still there`);
    t.true(text.length < 200_000, `${what}: ${String(text.length)} characters`);
  }
  t.false(cluster.events.some((e) => e.reason === 'StatusRejected'));
});

/** Every string in a value, concatenated. */
function collectText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(collectText).join('');
  if (value !== null && typeof value === 'object') return Object.values(value).map(collectText).join('');
  return '';
}

test('a copy result dressed as status (phase, conditions, startedAt, activeSelector) writes only what a copy result holds', async (t) => {
  const { cluster, tick } = await copying();
  const forged = {
    phase: 'Succeeded', conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'done', lastTransitionTime: '2020-01-01T00:00:00Z' }],
    startedAt: '2020-01-01T00:00:00Z', activeSelector: { app: 'attacker' }, runId: 'g9', steps: [{ step: 'finish', runId: 'g1', outcome: 'Succeeded' }],
    tables: [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 3, phase: 'Succeeded' }], rowsThisRun: 3,
  };
  cluster.finishJob('orders-g1-copy', 'Complete', [terminated(JSON.stringify(forged))]);
  await tick();
  const status = stored(cluster).status;
  t.is(status?.phase, 'Validating');
  t.is(status?.runId, 'g1');
  t.is(status?.activeSelector, undefined);
  t.not(status?.startedAt, '2020-01-01T00:00:00Z');
  t.false(status?.steps?.some((s) => s.step === 'finish'));
  t.deepEqual(status?.tables, [{ name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 3 }]);
});

test('copy results status could not hold (long names, wrong states, negative or huge counts, duplicates, huge keys) fail the step with a bounded reason or are bounded: status is never refused', async (t) => {
  const huge = 'k'.repeat(300_000);
  const results: [string, unknown][] = [
    ['a name past 128 characters', { tables: [{ name: 't'.repeat(5000), state: 'Copied', rowsCopied: 1 }] }],
    ['a state status has no word for', { tables: [{ name: 'orders', state: 'Hacked', rowsCopied: 1 }] }],
    ['a negative count', { tables: [{ name: 'orders', state: 'Copied', rowsCopied: -5 }] }],
    ['a count past 2^53', { tables: [{ name: 'orders', state: 'Copied', rowsCopied: 1e300 }] }],
    ['the same table twice', { tables: [{ name: 'orders', state: 'Copied', rowsCopied: 1 }, { name: 'orders', state: 'Failed', message: 'm'.repeat(100_000) }] }],
    ['a zero-date key of 300 000 characters', { tables: [{ name: 'orders', state: 'Copied', rowsCopied: 1 }], zeroDates: { [huge]: 'x', [`${huge}2`]: -1, [`${huge}3`]: 1 } }],
    ['10 000 warnings of 100 000 characters', { tables: [{ name: 'orders', state: 'Copied', rowsCopied: 1 }], warnings: Array.from({ length: 10 }, (_, i) => `${String(i)}${'w'.repeat(100_000)}`) }],
    ['not JSON, 1 MB', `{"tables": [${'9'.repeat(1_000_000)}`],
    ['a JSON list', [{ name: 'orders' }]],
    ['a table name with control characters', { tables: [{ name: `orders${CONTROL}`.slice(0, 100), state: 'Copied', rowsCopied: 1 }] }],
  ];
  for (const [what, result] of results) {
    const { cluster, tick } = await copying();
    cluster.finishJob('orders-g1-copy', 'Complete', [terminated(typeof result === 'string' ? result : JSON.stringify(result))]);
    await tick();
    const m = stored(cluster);
    t.false(cluster.events.some((e) => e.reason === 'StatusRejected'), `${what}: status refused`);
    t.true(['Validating', 'Failed'].includes(m.status?.phase ?? ''), `${what}: ${m.status?.phase ?? ''} ${JSON.stringify(readyOf(m)).slice(0, 300)}`);
    t.true(JSON.stringify(m.status).length < 400_000, `${what}: status of ${String(JSON.stringify(m.status).length)} characters`);
    if (m.status?.phase === 'Failed') t.regex(readyOf(m)?.message ?? '', /copy/, what);
    if (m.status?.phase === 'Failed') t.deepEqual(cluster.jobList.map((j) => j.metadata?.name), ['orders-g1-copy'], `${what}: no Job started on a result that could not be read`);
    t.false(CONTROL_CHARACTER.test(collectText(m.status)), `${what}: control characters in status`);
  }
});

test('a validation result with thousands of checks and huge figures fits status, failures first', async (t) => {
  const { cluster, tick } = setUp([migrationOf('orders', UID, { validation: {} })]);
  await tick();
  cluster.finishJob('orders-g1-copy', 'Complete', [terminated(JSON.stringify({ tables: [{ name: 'orders', state: 'Copied', rowsCopied: 1 }], rowsThisRun: 1 }))]);
  await tick();
  t.is(stored(cluster).status?.phase, 'Validating');
  const checks = Array.from({ length: 5000 }, (_, i) => ({ name: `${'n'.repeat(1000)}${String(i)}`, kind: 'Rule', passed: i !== 4321, source: 's'.repeat(10_000), target: String(i), message: 'm'.repeat(10_000) }));
  cluster.finishJob('orders-g1-validate', 'Complete', [terminated(JSON.stringify({ passed: true, summary: 'S'.repeat(100_000), checks, tables: [{ name: 'orders', rowsSource: 1, rowsTarget: 1, message: 'M'.repeat(100_000) }] }))]);
  await tick();
  const m = stored(cluster);
  t.false(cluster.events.some((e) => e.reason === 'StatusRejected'));
  t.true((m.status?.validation?.checks?.length ?? 0) <= STATUS_LIMITS.checks);
  t.true(m.status?.validation?.truncated);
  t.false(m.status?.validation?.checks?.[0]?.passed, 'the failed check comes first');
  t.true(JSON.stringify(m.status).length < 1_000_000);
});

// ---------------------------------------------------------------------------------------------
// Events

test('a refused spec, reconciled many times and edited back and forth, says one Event per change, none per reconcile', async (t) => {
  const { cluster, tick } = setUp([migrationOf('orders', UID, { jobTemplate: { image: 'evil:1' } })]);
  for (let i = 0; i < 20; i++) await tick();
  t.is(cluster.events.length, 1, cluster.events.map((e) => e.reason).join(', '));
  for (let i = 0; i < 5; i++) {
    edit(cluster, KEY, (m) => { m.spec.jobTemplate = { image: `evil:${String(i + 2)}` }; });
    for (let j = 0; j < 5; j++) await tick();
  }
  t.true(cluster.events.length <= 6, `${String(cluster.events.length)} Events`);
  t.deepEqual(cluster.jobList, []);
});

// ---------------------------------------------------------------------------------------------
// Admission (the CRD's rules as dmctl lint evaluates them; test/e2e/attack-14b.test.ts sends the
// same to the real API server)

const manifest = (spec: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders' },
  spec: { source: { engine: 'mysql', secretRef: { name: 'src' } }, target: { engine: 'postgres', secretRef: { name: 'dst' } }, ...spec },
});
const lintErrors = (spec: Record<string, unknown>): string[] => lintObject(manifest(spec)).errors;

/** Pod metadata keys that hand the pod cloud credentials, other networks or injected containers. */
const LENDING_KEYS = [
  'iam.amazonaws.com/role', 'eks.amazonaws.com/role-arn', 'appmesh.k8s.aws/sidecarInjectorWebhook', 'consul.hashicorp.com/connect-inject', 'consul.hashicorp.com/connect-service', 'azure.workload.identity/use', 'azure.workload.identity/proxy-sidecar-port', 'k8s.v1.cni.cncf.io/networks', 'v1.multus-cni.io/default-network',
  'cni.projectcalico.org/ipAddrs', 'cni.projectcalico.org/ipv4pools', 'dapr.io/enabled', 'dapr.io/app-id', 'sidecar.opentelemetry.io/inject', 'instrumentation.opentelemetry.io/inject-java',
];

test('pod labels and annotations that hand the pod cloud credentials, other networks or injected containers are reserved: admission and the pod policy refuse them, naming why', (t) => {
  for (const key of LENDING_KEYS) {
    for (const field of ['labels', 'annotations'] as const) {
      t.truthy(reservedKey(key, field), `${field} ${key}`);
      t.true(lintErrors({ jobTemplate: { [field]: { [key]: 'true' } } }).some((e) => e.includes('may not use reserved keys')), `${field} ${key} admitted`);
    }
  }
  const refusal = checkPodPolicy(migrationOf('orders', UID, { jobTemplate: { annotations: { 'iam.amazonaws.com/role': 'admin' } } }), engine);
  t.is(refusal?.reason, REASONS.ReservedKey);
  t.regex(refusal?.message ?? '', /iam\.amazonaws\.com\/role.*AWS credentials/);
  // Look-alikes of those domains stay free.
  for (const key of ['example.com/iam.amazonaws.com', 'notdapr.io/enabled', 'dapr.io.example.com/x', 'notamazonaws.com/x', 'k8s.aws.example/x', 'team']) t.is(reservedKey(key, 'annotations'), undefined, key);
});

test('admission refuses what no Job could carry: a Secret key no Secret holds, a Job TTL past int32 or too short to read the outcome, a negative quantity', (t) => {
  const keyRefused = (key: string): boolean => lintErrors({ target: { engine: 'postgres', secretRef: { name: 'dst', key } } }).length > 0;
  for (const key of ['.', '..', '..data', '...', '../x', 'a/b', '']) t.true(keyRefused(key), `key ${JSON.stringify(key)} admitted`);
  for (const key of ['url', '.url', 'url..', 'a.b', '-', '_', 'tls.crt', '.-']) t.false(keyRefused(key), `key ${JSON.stringify(key)} refused`);
  const caRefused = lintErrors({ target: { engine: 'postgres', secretRef: { name: 'dst' }, tls: { mode: 'verify-ca', caSecretRef: { name: 'ca', key: '..' } } } });
  t.true(caRefused.length > 0);

  for (const ttl of [300, 2_147_483_647]) t.deepEqual(lintErrors({ jobTemplate: { ttlSecondsAfterFinished: ttl } }), [], `TTL ${String(ttl)}`);
  // Past int32 the Job API refuses every step Job; under a few minutes the Job goes before its
  // outcome is read, and the step is asked for again and again (0: a Job per reconcile, for ever).
  for (const ttl of [2_147_483_648, 0, 299]) t.true(lintErrors({ jobTemplate: { ttlSecondsAfterFinished: ttl } }).length > 0, `TTL ${String(ttl)} admitted`);

  for (const quantity of ['-1', '-0.5', -1, '-1Gi']) {
    t.true(lintErrors({ jobTemplate: { resources: { requests: { cpu: quantity } } } }).length > 0, `requests ${JSON.stringify(quantity)} admitted`);
  }
  for (const quantity of ['+1', '0', 0, 2, '500m', '1e3', '1Gi', '1E-3']) {
    t.deepEqual(lintErrors({ jobTemplate: { resources: { limits: { memory: quantity } } } }), [], `limits ${JSON.stringify(quantity)} refused`);
  }
});

test('admission: a cutover that could reach past its Service (another namespace, an empty or unchanged side) is refused', (t) => {
  const cutover = (service: string, from: Record<string, string>, to: Record<string, string>): string[] => lintErrors({ cutover: { service, fromSelector: from, toSelector: to } });
  for (const service of ['kube-system/payments', 'payments.kube-system', 'payments.kube-system.svc', 'payments.kube-system.svc.cluster.local', '*', 'payments,kube-dns']) {
    t.true(cutover(service, { track: 'blue' }, { track: 'green' }).length > 0, `service ${service}`);
  }
  t.true(cutover('payments', {}, { app: 'attacker' }).length > 0, 'an empty fromSelector (contained in every selector)');
  t.true(cutover('payments', { app: 'payments' }, {}).length > 0, 'an empty toSelector');
  t.true(cutover('payments', { a: '1', b: '2' }, { b: '2', a: '1' }).some((e) => e.includes('must differ')), 'the same side in another order');
});

test('a restore racing another migration\'s switch: decided on the Service as it was, refused at the old version (409), then left to the switch that landed', async (t) => {
  const chained: CutoverSpec = { service: 'orders-api', fromSelector: { track: 'green' }, toSelector: { track: 'canary' } };
  const { cluster, tick } = setUp([atCutover('orders', UID), atCutover('rival', OTHER_UID, chained)]);
  cluster.addService('shop', 'orders-api', { selector: { track: 'blue' }, annotations: { [CUTOVER_BY_ANNOTATION]: 'orders,rival' } });
  await tick();
  const switchedByOrders = structuredClone(cluster.services.get('shop/orders-api'));
  // orders is aborted while rival switches: orders decides on the Service it switched (its cache
  // has not seen rival's patch yet), rival's patch lands first.
  edit(cluster, KEY, annotate({ [ABORT_ANNOTATION]: 'true' }));
  await tick('shop/rival');
  const switchedByRival = structuredClone(cluster.services.get('shop/orders-api'));
  t.is(switchedByRival?.metadata?.annotations?.[SWITCH_RECORD.uid], OTHER_UID);
  cluster.staleService = switchedByOrders;
  // The restore is sent at the version orders saw; the store has moved on.
  const error = await t.throwsAsync(tick(), { instanceOf: ClusterError });
  t.is(error.code, 409);
  cluster.staleService = undefined;
  // orders cannot see its own switch (the record is rival's): it waits the 30 s an abort right after
  // the switch waits, then stops without touching the Service.
  for (let i = 0; i < 40 && stored(cluster).status?.phase !== 'Failed'; i++) await tick();
  t.deepEqual(cluster.services.get('shop/orders-api'), switchedByRival, 'rival\'s switch and record stay');
  t.is(stored(cluster).status?.phase, 'Failed');
  t.is(readyOf(stored(cluster))?.reason, REASONS.Aborted);
  t.is(patches(cluster).length, 3, 'orders\' switch, rival\'s, and orders\' refused restore: nothing after');
});

test('a refusal naming everything a spec got wrong at once still fits status: bounded message, one Event, no Job', async (t) => {
  const annotations = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`${'a'.repeat(200)}.${String(i)}.dapr.io/${'n'.repeat(60)}${String(i).padStart(3, '0')}`, 'x'.repeat(4096)]));
  const labels = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`${'b'.repeat(200)}.${String(i)}.k8s.io/${'l'.repeat(60)}${String(i).padStart(3, '0')}`, 'v'.repeat(63)]));
  const jobTemplate: JobTemplateSpec = { image: `registry.example.com/${'r'.repeat(400)}:${'t'.repeat(100)}`, serviceAccountName: `${'s'.repeat(252)}x`, annotations, labels };
  const { cluster, tick } = setUp([migrationOf('orders', UID, { jobTemplate })]);
  await tick();
  await tick();
  const m = stored(cluster);
  t.is(readyOf(m)?.reason, REASONS.ImageNotAllowed);
  t.true((m.status?.message?.length ?? 0) <= STATUS_LIMITS.message);
  t.true((readyOf(m)?.message.length ?? 0) <= 4096);
  t.deepEqual(cluster.events.map((e) => e.reason), [REASONS.ImageNotAllowed]);
  t.deepEqual(cluster.jobList, []);
  t.false(cluster.events.some((e) => e.reason === 'StatusRejected'));
});
