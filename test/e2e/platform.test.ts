// The test platform itself, end to end: the built kubectl talks to the real API server, the real
// Job controller drives pods that the node stand-in runs as local processes, and the garbage
// collector removes what an owner leaves behind.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { freshNamespace, kubectl, podLogs, testKubeConfig } from '../support/kube.ts';
import { waitFor } from '../support/process.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);

/** A Job whose single container runs `node -e script` (Node 24, as the project's CLI does). */
function nodeJob(name: string, script: string, extra: Partial<k8s.V1PodSpec> & { backoffLimit?: number; container?: Partial<k8s.V1Container> } = {}): k8s.V1Job {
  const { backoffLimit = 0, container = {}, ...podSpec } = extra;
  return {
    metadata: { name },
    spec: {
      backoffLimit,
      template: {
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'main', image: 'ignored-by-the-stand-in', command: [process.execPath, '-e', script], ...container }],
          ...podSpec,
        },
      },
    },
  };
}

async function jobFinished(namespace: string, name: string, timeoutMs = 90_000): Promise<{ condition: string; job: k8s.V1Job }> {
  return waitFor(`Job ${namespace}/${name} to finish`, async () => {
    const job = await batch.readNamespacedJob({ name, namespace });
    const done = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    return done ? { condition: done.type, job } : undefined;
  }, timeoutMs, 200);
}

async function jobPods(namespace: string, jobName: string): Promise<k8s.V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items;
}

test('the built kubectl lists namespaces and applies a CRD', async (t) => {
  const namespaces = await kubectl(['get', 'ns', '-o', 'name']);
  t.is(namespaces.code, 0, namespaces.stderr);
  t.true(namespaces.stdout.split('\n').includes('namespace/default'));
  const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.platform-test.dataops.dev}
spec:
  group: platform-test.dataops.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer}}}}}}
`;
  const applied = await kubectl(['apply', '-f', '-'], { input: crd });
  t.is(applied.code, 0, applied.stderr);
  const established = await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/widgets.platform-test.dataops.dev']);
  t.is(established.code, 0, established.stderr);
  const version = await kubectl(['version', '-o', 'json']);
  const { clientVersion, serverVersion } = JSON.parse(version.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } };
  t.is(clientVersion.gitVersion.split('.').slice(0, 2).join('.'), serverVersion.gitVersion.split('.').slice(0, 2).join('.'));
});

test('a Job whose command succeeds completes, with its termination message in the pod status', async (t) => {
  const namespace = await freshNamespace(t);
  await batch.createNamespacedJob({ namespace, body: nodeJob('ok', "require('fs').writeFileSync('/dev/termination-log', JSON.stringify({rows: 42})); console.log('copied')") });
  const { condition, job } = await jobFinished(namespace, 'ok');
  t.is(condition, 'Complete');
  t.is(job.status?.succeeded, 1);
  const [pod] = await jobPods(namespace, 'ok');
  const terminated = pod?.status?.containerStatuses?.[0]?.state?.terminated;
  t.is(terminated?.exitCode, 0);
  t.deepEqual(JSON.parse(terminated?.message ?? '{}'), { rows: 42 });
  t.is((await podLogs(namespace, pod?.metadata?.name ?? '')).trim(), 'copied');
});

test('a Job whose command exits 1 fails after backoffLimit+1 pods, with its log tail as the message', async (t) => {
  const namespace = await freshNamespace(t);
  await batch.createNamespacedJob({ namespace, body: nodeJob('broken', "console.error('connection refused'); process.exit(1)", {
    backoffLimit: 1, container: { terminationMessagePolicy: 'FallbackToLogsOnError' },
  }) });
  const { condition, job } = await jobFinished(namespace, 'broken');
  t.is(condition, 'Failed');
  t.is(job.status?.conditions?.find((c) => c.type === 'Failed')?.reason, 'BackoffLimitExceeded');
  const pods = await jobPods(namespace, 'broken');
  t.is(pods.length, 2);
  for (const pod of pods) {
    t.is(pod.status?.phase, 'Failed');
    const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
    t.is(terminated?.exitCode, 1);
    t.is(terminated?.message, 'connection refused');
  }
});

test('env from a Secret and a mounted ConfigMap reach the process', async (t) => {
  const namespace = await freshNamespace(t);
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'db' }, stringData: { url: 'postgres://app:s3cret@db/orders' } } });
  await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'schema' }, data: { 'V1__init.sql': 'CREATE TABLE t (id int);' } } });
  const script = "const fs = require('fs'); fs.writeFileSync('/dev/termination-log', JSON.stringify({ url: process.env.DB_URL, host: process.env.HOST_OF_URL, file: fs.readFileSync('/migrations/V1__init.sql', 'utf8'), cwd: process.cwd(), leaked: process.env.PG_URL ?? null }))";
  await batch.createNamespacedJob({ namespace, body: nodeJob('env', script, {
    container: {
      workingDir: '/tmp',
      env: [{ name: 'DB_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } }, { name: 'HOST_OF_URL', value: 'from $(DB_URL)' }],
      volumeMounts: [{ name: 'migrations', mountPath: '/migrations', readOnly: true }],
    },
    volumes: [{ name: 'migrations', configMap: { name: 'schema' } }],
  }) });
  const { condition } = await jobFinished(namespace, 'env');
  t.is(condition, 'Complete');
  const [pod] = await jobPods(namespace, 'env');
  const message = JSON.parse(pod?.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '{}') as Record<string, unknown>;
  t.deepEqual(message, {
    url: 'postgres://app:s3cret@db/orders', host: 'from postgres://app:s3cret@db/orders', file: 'CREATE TABLE t (id int);', cwd: '/tmp', leaked: null,
  });
});

test('a missing Secret keeps the pod waiting with CreateContainerConfigError until the Secret appears', async (t) => {
  const namespace = await freshNamespace(t);
  await batch.createNamespacedJob({ namespace, body: nodeJob('late', 'process.exit(0)', {
    container: { env: [{ name: 'DB_URL', valueFrom: { secretKeyRef: { name: 'late', key: 'url' } } }] },
  }) });
  const waiting = await waitFor('the pod to wait for its Secret', async () => {
    const [pod] = await jobPods(namespace, 'late');
    const state = pod?.status?.containerStatuses?.[0]?.state?.waiting;
    return state?.reason === 'CreateContainerConfigError' ? { state, phase: pod?.status?.phase } : undefined;
  });
  t.is(waiting.phase, 'Pending');
  t.regex(waiting.state.message ?? '', /secret "late" not found/);
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'late' }, stringData: { url: 'mysql://x' } } });
  const { condition } = await jobFinished(namespace, 'late');
  t.is(condition, 'Complete');
});

test('deleting an owner deletes the Job it owns (garbage collector)', async (t) => {
  const namespace = await freshNamespace(t);
  const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
  const job = nodeJob('owned', 'setTimeout(() => {}, 60000)');
  job.metadata = { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true }] };
  await batch.createNamespacedJob({ namespace, body: job });
  await waitFor('the owned Job to start a pod', async () => ((await jobPods(namespace, 'owned')).length > 0 ? true : undefined));
  await core.deleteNamespacedConfigMap({ name: 'owner', namespace });
  await waitFor('the garbage collector to delete the Job', async () =>
    batch.readNamespacedJob({ name: 'owned', namespace }).then(() => undefined, () => true), 60_000, 200);
  await waitFor('the Job pods to go', async () => ((await jobPods(namespace, 'owned')).length === 0 ? true : undefined), 60_000, 200);
  t.pass();
});
