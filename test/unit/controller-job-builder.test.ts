// The step Job built from a DataMigration: deterministic names, ownership, Secrets as env, the
// schema ConfigMap, secure defaults and the user's jobTemplate.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { buildStepJob, stepJobName } from '../../src/controller/job-builder.ts';

const engine = { image: 'ghcr.io/example/datamigration-operator:1.0.0', command: ['node', '/app/dist/cli/main.js'], serviceAccountName: 'dmo-engine' };

const migration: DataMigration = {
  apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
  metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation: 2 },
  spec: {
    source: { engine: 'mysql', secretRef: { name: 'legacy', key: 'dsn' } },
    target: { engine: 'postgres', secretRef: { name: 'new' }, tls: { mode: 'verify-full', caSecretRef: { name: 'pg-ca' } } },
    schema: { configMapRef: { name: 'orders-schema' } },
    jobTemplate: { backoffLimit: 1, activeDeadlineSeconds: 3600, nodeSelector: { pool: 'batch' }, labels: { team: 'data' }, resources: { limits: { memory: '512Mi' } } },
  },
};

test('names are deterministic, at most 63 characters and distinct when shortened', (t) => {
  t.is(stepJobName('orders', 'g2', 'copy'), 'orders-g2-copy');
  const long = 'a'.repeat(60);
  const one = stepJobName(long, 'g2', 'copy');
  const two = stepJobName(`${long}b`, 'g2', 'copy');
  t.true(one.length <= 63 && two.length <= 63);
  t.not(one, two);
  t.true(one.endsWith('-g2-copy'));
  t.is(stepJobName(long, 'g2', 'copy'), one);
});

test('the Job is owned by the migration, labelled, and runs the engine step with URLs from the Secrets', (t) => {
  const job = buildStepJob(migration, 'schema', 'g2', engine);
  t.is(job.metadata?.name, 'orders-g2-schema');
  t.deepEqual(job.metadata?.ownerReferences?.[0], { apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', name: 'orders', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', controller: true, blockOwnerDeletion: true });
  t.is(job.metadata?.labels?.['dataops.dev/step'], 'schema');
  t.is(job.metadata?.labels?.['dataops.dev/run'], 'g2');
  const container = job.spec?.template.spec?.containers[0];
  t.deepEqual(container?.command, ['node', '/app/dist/cli/main.js', 'step', 'schema']);
  const env = new Map(container?.env?.map((e) => [e.name, e]));
  t.deepEqual(env.get('DMO_SOURCE_URL')?.valueFrom?.secretKeyRef, { name: 'legacy', key: 'dsn' });
  t.deepEqual(env.get('DMO_TARGET_URL')?.valueFrom?.secretKeyRef, { name: 'new', key: 'url' });
  t.is(env.get('DMO_MIGRATIONS_DIR')?.value, '/migrations');
  t.is(env.get('DMO_TARGET_CA_FILE')?.value, '/etc/datamigration/ca/target/ca.crt');
  t.false(JSON.stringify(job).includes('password'));
  const manifest = JSON.parse(env.get('DMO_MANIFEST')?.value ?? '{}') as DataMigration;
  t.deepEqual(manifest.spec, migration.spec);
  t.true(job.spec?.template.spec?.volumes?.some((v) => v.configMap?.name === 'orders-schema'));
});

test('secure defaults: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no API token', (t) => {
  const job = buildStepJob(migration, 'copy', 'g2', engine);
  const pod = job.spec?.template.spec;
  t.is(pod?.automountServiceAccountToken, false);
  t.is(pod?.serviceAccountName, 'dmo-engine');
  t.true(pod?.securityContext?.runAsNonRoot);
  t.is(pod?.securityContext?.seccompProfile?.type, 'RuntimeDefault');
  const security = pod?.containers[0]?.securityContext;
  t.true(security?.readOnlyRootFilesystem);
  t.false(security?.allowPrivilegeEscalation);
  t.deepEqual(security?.capabilities?.drop, ['ALL']);
  t.true(pod?.volumes?.some((v) => v.name === 'scratch' && v.emptyDir !== undefined));
  t.deepEqual(pod?.containers[0]?.volumeMounts?.find((m) => m.name === 'scratch')?.mountPath, '/scratch');
  t.false(pod?.volumes?.some((v) => v.configMap !== undefined), 'only schema and rollback mount the migrations');
  t.is(pod?.restartPolicy, 'Never');
});

test('jobTemplate overrides apply', (t) => {
  const job = buildStepJob(migration, 'validate', 'g2', engine);
  t.is(job.spec?.backoffLimit, 1);
  t.is(job.spec?.activeDeadlineSeconds, 3600);
  t.deepEqual(job.spec?.template.spec?.nodeSelector, { pool: 'batch' });
  t.is(job.spec?.template.metadata?.labels?.team, 'data');
  t.is(job.spec?.template.metadata?.labels?.['dataops.dev/step'], 'validate', 'the operator\'s labels win over the template\'s');
  t.deepEqual(job.spec?.template.spec?.containers[0]?.resources, { limits: { memory: '512Mi' } });
  // What the operator's configuration allows (test/unit/pod-policy.test.ts has the refusals).
  const allowing = { ...engine, allowedImages: ['mine'], allowedServiceAccounts: ['cloud-iam'] };
  const custom = buildStepJob({ ...migration, spec: { ...migration.spec, jobTemplate: { serviceAccountName: 'cloud-iam', image: 'mine:1' } } }, 'copy', 'g2', allowing);
  t.is(custom.spec?.template.spec?.serviceAccountName, 'cloud-iam');
  t.true(custom.spec?.template.spec?.automountServiceAccountToken);
  t.is(custom.spec?.template.spec?.containers[0]?.image, 'mine:1');
});

test('copyPods > 1: the copy Job is an Indexed Job, one completion per pod, each index retried on its own', (t) => {
  const spread: DataMigration = { ...migration, spec: { ...migration.spec, strategy: { type: 'BigBang', parallelism: 2, copyPods: 3 } } };
  const job = buildStepJob(spread, 'copy', 'g2', engine);
  t.is(job.spec?.completionMode, 'Indexed');
  t.is(job.spec?.completions, 3);
  t.is(job.spec?.parallelism, 3);
  t.is(job.spec?.backoffLimitPerIndex, 1, 'jobTemplate.backoffLimit, per index');
  t.is(job.spec?.maxFailedIndexes, 0, 'an index out of retries fails the Job');
  t.is(job.spec?.backoffLimit, undefined, 'the API server defaults it with backoffLimitPerIndex');
  t.deepEqual(job.spec?.podFailurePolicy, buildStepJob(migration, 'copy', 'g2', engine).spec?.podFailurePolicy, 'exit codes 2, 3, 4 still fail the Job at once');
  // The pods run the same command; dmctl learns its index from JOB_COMPLETION_INDEX, which Kubernetes sets.
  const container = job.spec?.template.spec?.containers[0];
  t.deepEqual(container?.command, ['node', '/app/dist/cli/main.js', 'step', 'copy']);
  t.false(container?.env?.some((e) => e.name === 'JOB_COMPLETION_INDEX'));

  for (const step of ['schema', 'sync', 'validate', 'rollback'] as const) {
    const other = buildStepJob(spread, step, 'g2', engine).spec;
    t.is(other?.completionMode, undefined, `${step} runs in one pod`);
    t.is(other?.backoffLimit, 1);
  }
  const single = buildStepJob({ ...spread, spec: { ...spread.spec, strategy: { type: 'BigBang', copyPods: 1 } } }, 'copy', 'g2', engine).spec;
  t.is(single?.completionMode, undefined, 'copyPods 1: the Job is as before');
  t.is(single?.completions, undefined);
  t.is(single?.backoffLimit, 1);
});

test('every step Job has a deadline: 24 h for the copy, 6 h for the others, unless jobTemplate sets one', (t) => {
  const plain: DataMigration = { ...migration, spec: { ...migration.spec, jobTemplate: {} } };
  t.is(buildStepJob(plain, 'copy', 'g2', engine).spec?.activeDeadlineSeconds, 86_400);
  for (const step of ['schema', 'sync', 'validate', 'rollback'] as const) t.is(buildStepJob(plain, step, 'g2', engine).spec?.activeDeadlineSeconds, 21_600, step);
  t.is(buildStepJob(migration, 'copy', 'g2', engine).spec?.activeDeadlineSeconds, 3600, 'jobTemplate overrides it');
  t.is(buildStepJob(migration, 'validate', 'g2', engine).spec?.activeDeadlineSeconds, 3600);
});

test('a pod the cluster disrupts (eviction, preemption, a drain) is retried without using up backoffLimit', (t) => {
  const rules = buildStepJob(migration, 'copy', 'g2', engine).spec?.podFailurePolicy?.rules ?? [];
  t.deepEqual(rules.filter((rule) => rule.action === 'Ignore'), [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }]);
  // The verdicts that do not change with a retry still fail the Job at once, and come first.
  t.is(rules[0]?.action, 'FailJob');
});

test('ChangeCapture\'s sync Job runs until the cutover: no deadline, and a pod stopped by a signal does not use up backoffLimit', (t) => {
  const capture: DataMigration = { ...migration, spec: { ...migration.spec, strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } },
    cutover: { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' }, fence: { type: 'External' } } } };
  const sync = buildStepJob(capture, 'sync', 'g2', engine).spec;
  t.is(sync?.activeDeadlineSeconds, undefined, 'not even jobTemplate\'s: approval may take days');
  t.true(sync?.podFailurePolicy?.rules.some((rule) => rule.action === 'Ignore' && rule.onExitCodes?.values.includes(130)));
  for (const step of ['copy', 'catchup', 'release'] as const) {
    const other = buildStepJob(capture, step, 'g2', engine).spec;
    t.not(other?.activeDeadlineSeconds, undefined, `${step} keeps its deadline`);
    t.false(other?.podFailurePolicy?.rules.some((rule) => rule.onExitCodes?.values.includes(130)), `${step}: an interrupted pod counts`);
  }
});
