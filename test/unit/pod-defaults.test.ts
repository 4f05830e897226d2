// The step pods' defaults from the operator's configuration (ENGINE_POD_DEFAULTS, the chart's
// engine.podDefaults): checked against the CRD's own jobTemplate schema at start, applied where a
// DataMigration's spec.jobTemplate is silent, and never about what the pods run or as whom.
import test from 'ava';
import type { DataMigration } from '../../src/api/types.ts';
import { buildStepJob, type EngineConfig } from '../../src/controller/job-builder.ts';
import { podDefaultsFromEnv, withPodDefaults } from '../../src/controller/pod-defaults.ts';

const DEFAULTS = JSON.stringify({
  resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } },
  nodeSelector: { pool: 'batch' }, tolerations: [{ key: 'batch', operator: 'Exists', effect: 'NoSchedule' }],
  priorityClassName: 'migrations', imagePullSecrets: [{ name: 'registry' }],
});

const migration = (jobTemplate?: DataMigration['spec']['jobTemplate']): DataMigration => ({
  apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop', uid: 'u1' },
  spec: { source: { engine: 'mysql', secretRef: { name: 's' } }, target: { engine: 'postgres', secretRef: { name: 't' } }, ...(jobTemplate ? { jobTemplate } : {}) },
});

test('a valid default is parsed; unset or empty means none', (t) => {
  t.deepEqual(podDefaultsFromEnv(undefined), { defaults: {}, errors: [] });
  t.deepEqual(podDefaultsFromEnv(''), { defaults: {}, errors: [] });
  const parsed = podDefaultsFromEnv(DEFAULTS);
  t.deepEqual(parsed.errors, []);
  t.deepEqual(parsed.defaults.nodeSelector, { pool: 'batch' });
});

test('what a spec could not say, or what is not a default, stops the operator at start with the reason', (t) => {
  t.regex(podDefaultsFromEnv('{nope').errors.join(), /ENGINE_POD_DEFAULTS is not JSON/);
  t.regex(podDefaultsFromEnv('[1]').errors.join(), /must be a JSON object/);
  t.regex(podDefaultsFromEnv('{"image":"evil:1","serviceAccountName":"admin"}').errors.join(), /image, serviceAccountName cannot be defaulted/);
  t.regex(podDefaultsFromEnv('{"resources":{"requests":{"cpu":"lots"}}}').errors.join(), /ENGINE_POD_DEFAULTS\.resources/);
  t.regex(podDefaultsFromEnv('{"tolerations":[{"effect":"Sometimes"}]}').errors.join(), /ENGINE_POD_DEFAULTS\.tolerations/);
  // The CRD's CEL rules too: a toleration without a key must use Exists (the API server refuses the Job otherwise).
  t.not(podDefaultsFromEnv('{"tolerations":[{"operator":"Equal"}]}').errors.length, 0);
  t.deepEqual(podDefaultsFromEnv('{"image":"evil:1"}').defaults, {}, 'nothing applies when anything is wrong');
});

test('the spec\'s field replaces the default whole; fields it leaves out take the default', (t) => {
  const { defaults } = podDefaultsFromEnv(DEFAULTS);
  const merged = withPodDefaults({ nodeSelector: { pool: 'fast' }, backoffLimit: 1 }, defaults);
  t.deepEqual(merged.nodeSelector, { pool: 'fast' }, 'not merged key by key: the spec says where');
  t.deepEqual(merged.resources, defaults.resources);
  t.is(merged.backoffLimit, 1);
  t.deepEqual(withPodDefaults(undefined, undefined), {});
});

test('the step Job carries the defaults where the spec is silent, and the spec where it speaks', (t) => {
  const engine: EngineConfig = { image: 'engine:1', command: ['dmctl'], podDefaults: podDefaultsFromEnv(DEFAULTS).defaults };
  const silent = buildStepJob(migration(), 'copy', 'g1', engine).spec?.template.spec;
  t.deepEqual(silent?.nodeSelector, { pool: 'batch' });
  t.is(silent?.priorityClassName, 'migrations');
  t.deepEqual(silent?.imagePullSecrets, [{ name: 'registry' }]);
  t.deepEqual(silent?.containers[0]?.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } });
  t.is(silent?.containers[0]?.image, 'engine:1');
  const speaking = buildStepJob(migration({ resources: { limits: { memory: '4Gi' } }, tolerations: [] }), 'copy', 'g1', engine).spec?.template.spec;
  t.deepEqual(speaking?.containers[0]?.resources, { limits: { memory: '4Gi' } });
  t.deepEqual(speaking?.tolerations, [], 'an empty list in the spec is the spec speaking');
  t.false(speaking?.automountServiceAccountToken ?? true, 'defaults lend no token');
});

test('the operator\'s LOG_FORMAT reaches the engine, so a step pod\'s lines read like the operator\'s', (t) => {
  const env = (engine: EngineConfig): string | undefined => buildStepJob(migration(), 'copy', 'g1', engine).spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'LOG_FORMAT')?.value;
  t.is(env({ image: 'engine:1', command: ['dmctl'], logFormat: 'text' }), 'text');
  t.is(env({ image: 'engine:1', command: ['dmctl'] }), undefined);
});
