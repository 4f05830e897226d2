// What admission lets through can run, and what cannot run is refused at admission (issue 14, 5),
// on the real kube-apiserver: a manifest with every field handed to Kubernetes at its limits is
// admitted and its step Jobs are admitted too, with nothing dropped on the way; names over the
// label limit and affinity that is not an affinity are refused; the start of a run cannot be
// removed through the status subresource (which the aggregated roles do not grant:
// test/e2e/packaging.test.ts).
// The hostile manifests themselves are in test/fixtures/invalid/ (47-69), which api.test.ts sends
// to the API server and test/unit/cli-lint.test.ts through dmctl lint.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { GROUP, PLURAL, STEPS, VERSION } from '../../src/api/constants.ts';
import { compareVersions } from '../../src/engine/migrations/files.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { buildStepJob } from '../../src/controller/job-builder.ts';
import { isLabelValue, isQualifiedName, LABEL_KEY_CASES, LABEL_VALUE_CASES } from '../support/label-rules.ts';
import { repoRoot } from '../support/platform.ts';
import { freshNamespace, kubectl, minimalManifest, testKubeConfig } from '../support/kube.ts';

const everything = join(repoRoot, 'test', 'fixtures', 'valid', 'job-template-everything.yaml');

const manifest = minimalManifest;

const readMigration = async (namespace: string, name: string): Promise<DataMigration> =>
  JSON.parse((await kubectl(['get', 'dm', name, '-o', 'json'], { namespace })).stdout) as DataMigration;

/** Every step Job of the stored migration, sent as the operator sends it (the client's serializer), in a server-side dry run. */
async function dryRunJobs(migration: DataMigration): Promise<k8s.V1Job[]> {
  const batch = testKubeConfig().makeApiClient(k8s.BatchV1Api);
  const image = migration.spec.jobTemplate?.image ?? 'registry.example.com/dataops/engine:1';
  return Promise.all(STEPS.map((step) => batch.createNamespacedJob({
    namespace: migration.metadata?.namespace ?? '',
    body: buildStepJob(migration, step, 'g1-r0abcdef', { image, command: ['node', '/app/dist/cli/main.js'] }),
    dryRun: 'All',
  })));
}

test('every field handed to Kubernetes, at its limits, is admitted as written, and the step Jobs built from it are admitted with it intact', async (t) => {
  const namespace = await freshNamespace(t, 'adm-everything');
  const text = await readFile(everything, 'utf8');
  const created = await kubectl(['create', '-f', '-'], { namespace, input: text });
  t.is(created.code, 0, created.stderr);
  const written = parse(text) as DataMigration;
  const stored = await readMigration(namespace, written.metadata?.name ?? '');
  t.is(stored.metadata?.name?.length, 63);
  // Nothing pruned: what was written is what the operator reads.
  t.deepEqual(stored.spec.jobTemplate?.affinity, written.spec.jobTemplate?.affinity);
  t.deepEqual(stored.spec.jobTemplate?.tolerations, written.spec.jobTemplate?.tolerations);
  t.deepEqual(stored.spec.jobTemplate?.labels, written.spec.jobTemplate?.labels);

  const jobs = await dryRunJobs(stored);
  t.is(jobs.length, STEPS.length);
  for (const job of jobs) {
    t.true((job.metadata?.name?.length ?? 64) <= 63, job.metadata?.name);
    t.is(job.metadata?.labels?.['dataops.dev/migration'], stored.metadata?.name);
    const pod = job.spec?.template.spec;
    t.deepEqual(JSON.parse(JSON.stringify(pod?.affinity)), written.spec.jobTemplate?.affinity, 'the affinity reaches the pod whole');
    t.is(pod?.tolerations?.length, 2);
    t.is(pod?.nodeSelector?.['kubernetes.io/os'], 'linux');
    t.is(job.spec?.template.metadata?.annotations?.['cluster-autoscaler.kubernetes.io/safe-to-evict'], 'false');
  }
});

test('a name of 63 characters is admitted and fits its Jobs\' labels; 64 and 253 are refused, naming the label; generateName always fits', async (t) => {
  const namespace = await freshNamespace(t, 'adm-names');
  const longest = `m${'x'.repeat(62)}`;
  t.is((await kubectl(['create', '-f', '-'], { namespace, input: manifest(longest) })).code, 0);
  const jobs = await dryRunJobs(await readMigration(namespace, longest));
  t.true(jobs.every((job) => job.metadata?.labels?.['dataops.dev/migration'] === longest));

  for (const name of [`m${'x'.repeat(63)}`, `m${'x'.repeat(252)}`]) {
    const refused = await kubectl(['create', '-f', '-'], { namespace, input: manifest(name) });
    t.not(refused.code, 0, `${String(name.length)} characters were admitted`);
    t.regex(refused.stderr, /a DataMigration's name may have at most 63 characters: it is the value of the dataops\.dev\/migration label/);
  }
  // The API server cuts generateName to 58 characters before adding 5: the name fits, the rule passes.
  const generated = await kubectl(['create', '-f', '-', '-o', 'name'], { namespace, input: manifest('x').replace('metadata: {name: x}', `metadata: {generateName: g${'x'.repeat(99)}}`) });
  t.is(generated.code, 0, generated.stderr);
  t.is(generated.stdout.trim().replace('datamigration.dataops.dev/', '').length, 63);
});

/** The API server's verdict on a DataMigration with this spec added (a server-side dry run): undefined when admitted, else its message. */
async function verdict(namespace: string, spec: Record<string, unknown>): Promise<string | undefined> {
  const custom = testKubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const body = parse(manifest('probe')) as { spec: Record<string, unknown> };
  try {
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body: { ...body, spec: { ...body.spec, ...spec } }, dryRun: 'All' });
    return undefined;
  } catch (error) {
    return error instanceof k8s.ApiException ? String(error.body) : String(error);
  }
}

test('the API server (RE2) refuses label keys, label values and equal versions exactly as Kubernetes\' rules and the engine do', async (t) => {
  const namespace = await freshNamespace(t, 'adm-rules');
  const cutover = (from: Record<string, string>, to: Record<string, string>): Record<string, unknown> => ({ cutover: { service: 'payments', fromSelector: from, toSelector: to } });
  await Promise.all(LABEL_KEY_CASES.map(async (key) => {
    const refused = await verdict(namespace, cutover({ [key]: 'blue' }, { track: 'green' }));
    t.is(refused?.includes('every key must be a qualified name') ?? false, !isQualifiedName(key), `key ${JSON.stringify(key)}: ${refused ?? 'admitted'}`);
  }));
  await Promise.all(LABEL_VALUE_CASES.map(async (value) => {
    const refused = await verdict(namespace, cutover({ track: 'blue-side' }, { track: value }));
    t.is(refused === undefined, isLabelValue(value), `value ${JSON.stringify(value)}: ${refused ?? 'admitted'}`);
  }));
  const pairs: [string, string][] = [['1', '1.0'], ['1', '01'], ['1_0', '1.0.0'], ['2024_01_15', '2024.1.15.0'], ['0', '0.0'], ['1.1', '1.10'], ['1.01', '1.1'], ['10', '1.0'], ['0.1', '1'], ['1.0.1', '1.1']];
  await Promise.all(pairs.map(async ([a, b]) => {
    const refused = await verdict(namespace, { schema: { migrations: [{ version: a, description: 'a', up: 'SELECT 1' }, { version: b, description: 'b', up: 'SELECT 1' }] } });
    t.is(refused?.includes('two migrations have the same version as numbers') ?? false, compareVersions(a, b) === 0, `${a} and ${b}: ${refused ?? 'admitted'}`);
  }));
});

test('affinity is the real schema even for a client without strict field validation: unknown fields never reach the pod, an affinity of nothing is refused', async (t) => {
  const namespace = await freshNamespace(t, 'adm-affinity');
  const lax = ['create', '--validate=false', '-f', '-'];
  const onlyGarbage = await kubectl(lax, { namespace, input: manifest('only-garbage', '  jobTemplate: {affinity: {nodeAfinity: {zone: a}}}\n') });
  t.not(onlyGarbage.code, 0, 'an affinity that was all unknown fields was admitted as {}');
  t.regex(onlyGarbage.stderr, /spec\.jobTemplate\.affinity: Invalid value/);

  const wrongType = await kubectl(lax, { namespace, input: manifest('wrong-type', '  jobTemplate: {affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: 7}]}}}\n') });
  t.not(wrongType.code, 0);
  t.regex(wrongType.stderr, /topologyKey: Invalid value: "integer"/);

  const missingKey = await kubectl(['create', '-f', '-'], { namespace, input: manifest('no-topology', '  jobTemplate: {affinity: {podAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {app: pg}}}]}}}\n') });
  t.not(missingKey.code, 0);
  t.regex(missingKey.stderr, /topologyKey: Required value/);

  const gt = await kubectl(['create', '-f', '-'], { namespace, input: manifest('gt-text', '  jobTemplate: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: cpus, operator: Gt, values: [many]}]}]}}}}\n') });
  t.not(gt.code, 0);
  t.regex(gt.stderr, /operator Gt and Lt take exactly one integer value/);
});

test('status.startedAt cannot be removed or moved through the status subresource, so what the start froze stays frozen', async (t) => {
  const namespace = await freshNamespace(t, 'adm-started');
  t.is((await kubectl(['create', '-f', '-'], { namespace, input: manifest('frozen') })).code, 0);
  const status = (args: string[]): ReturnType<typeof kubectl> => kubectl([...args, '--subresource=status'], { namespace });
  const started = '2026-11-25T06:00:00Z';
  t.is((await status(['patch', 'dm', 'frozen', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Copying', startedAt: started } })])).code, 0);

  const message = /status\.startedAt cannot be removed or changed once set/;
  const attempts: [string, string[], string?][] = [
    ['merge patch to null', ['patch', 'dm', 'frozen', '--type=merge', '-p', '{"status":{"startedAt":null}}']],
    ['JSON patch removing it', ['patch', 'dm', 'frozen', '--type=json', '-p', '[{"op":"remove","path":"/status/startedAt"}]']],
    ['JSON patch removing status', ['patch', 'dm', 'frozen', '--type=json', '-p', '[{"op":"remove","path":"/status"}]']],
    ['a later start', ['patch', 'dm', 'frozen', '--type=merge', '-p', '{"status":{"startedAt":"2030-01-01T00:00:00Z"}}']],
  ];
  const current = await readMigration(namespace, 'frozen');
  const withoutStatus = { ...current, status: undefined };
  attempts.push(['PUT without status', ['replace', '-f', '-'], JSON.stringify(withoutStatus)]);
  for (const [what, args, input] of attempts) {
    const result = await kubectl([...args, '--subresource=status'], { namespace, ...(input === undefined ? {} : { input }) });
    t.not(result.code, 0, `${what} was accepted`);
    t.regex(result.stderr, message, what);
  }
  t.is((await readMigration(namespace, 'frozen')).status?.startedAt, started);
  // The freeze it keys holds, and status stays writable for what the operator writes.
  const tables = await kubectl(['patch', 'dm', 'frozen', '--type=merge', '-p', '{"spec":{"tables":[{"name":"orders","where":"id > 1"}]}}'], { namespace });
  t.regex(tables.stderr, /cannot change once the migration has started/);
  t.is((await status(['patch', 'dm', 'frozen', '--type=merge', '-p', '{"status":{"phase":"Validating","message":"validating"}}'])).code, 0);
});
