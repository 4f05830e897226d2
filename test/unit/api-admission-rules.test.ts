// The CRD's admission rules for what a DataMigration hands on to Kubernetes agree with the code
// they stand in for: version uniqueness with the engine's compareVersions, reserved pod keys with
// the operator's pod policy, label keys and values with Kubernetes' own rules (apimachinery's
// IsQualifiedName and IsValidLabelValue, restated in test/support/label-rules.ts). The rules are evaluated as dmctl lint
// evaluates them (cel-js); the e2e suite sends the catalogue's hostile manifests to the real API server.
import test from 'ava';
import { reservedKey as apiReservedKey } from '../../src/api/reserved-keys.ts';
import { reservedKey as policyReservedKey } from '../../src/controller/pod-policy.ts';
import { compareVersions } from '../../src/engine/migrations/files.ts';
import { lintObject } from '../../src/cli/lint.ts';
import { isLabelValue, isQualifiedName, LABEL_KEY_CASES, LABEL_VALUE_CASES } from '../support/label-rules.ts';

const base = (spec: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders' },
  spec: { source: { engine: 'mysql', secretRef: { name: 'src' } }, target: { engine: 'postgres', secretRef: { name: 'dst' } }, ...spec },
});
const errors = (spec: Record<string, unknown>): string[] => lintObject(base(spec)).errors;

test('selector keys are refused exactly when Kubernetes would refuse them as label keys', (t) => {
  for (const key of LABEL_KEY_CASES) {
    const found = errors({ cutover: { service: 'payments', fromSelector: { [key]: 'blue' }, toSelector: { track: 'green' } } });
    t.is(found.some((e) => e.includes('spec.cutover.fromSelector: every key must be a qualified name')), !isQualifiedName(key), JSON.stringify(key));
  }
});

test('selector values are refused exactly when Kubernetes would refuse them as label values', (t) => {
  for (const value of LABEL_VALUE_CASES) {
    const found = errors({ cutover: { service: 'payments', fromSelector: { track: 'blue-side' }, toSelector: { track: value } } });
    t.is(found.length > 0, !isLabelValue(value), `${JSON.stringify(value)}: ${found.join('; ')}`);
  }
});

test('the cutover Service is a DNS-1035 label: what Kubernetes accepts as a Service name, nothing else', (t) => {
  const cases: [string, boolean][] = [['payments', true], ['p', true], ['payments-v2', true], [`p${'a'.repeat(62)}`, true],
    ['../x', false], ['pay ments', false], ['Payments', false], ['2payments', false], ['payments-', false], ['pay.ments', false], [`p${'a'.repeat(63)}`, false], ['', false]];
  for (const [service, ok] of cases) {
    const found = errors({ cutover: { service, fromSelector: { track: 'blue' }, toSelector: { track: 'green' } } });
    t.is(found.length === 0, ok, `${JSON.stringify(service)}: ${found.join('; ')}`);
  }
});

test('inline migration versions are refused as duplicates exactly when the engine would see one version', (t) => {
  const versions = ['0', '00', '0.0', '1', '01', '1.0', '1_0', '1.0.0', '1.1', '1.01', '1_1', '1.10', '1.1.0', '10', '010', '2024_01_15', '2024.1.15', '2024.1.15.0', '2024.11.5', '9'.repeat(31), `0${'9'.repeat(31)}`.slice(0, 32), `1${'0'.repeat(31)}`, `${'0'.repeat(31)}1`];
  let duplicates = 0;
  for (const a of versions) {
    for (const b of versions) {
      if (a === b) continue;
      const found = errors({ schema: { migrations: [{ version: a, description: 'a', up: 'SELECT 1' }, { version: b, description: 'b', up: 'SELECT 1' }] } });
      const same = compareVersions(a, b) === 0;
      if (same) duplicates++;
      t.is(found.some((e) => e.includes('two migrations have the same version as numbers')), same, `${a} and ${b}: ${found.join('; ')}`);
    }
  }
  t.true(duplicates > 20, 'the cases include many equal pairs');
});

const POD_KEYS = [
  'team', 'example.com/team', 'app', 'app.kubernetes.io/name', 'kubernetes.io/os', 'k8s.io/x', 'batch.kubernetes.io/job-name', 'job-name', 'controller-uid',
  'dataops.dev/migration', 'x.dataops.dev/y', 'notdataops.dev/y', 'mykubernetes.io/x', 'container.apparmor.security.beta.kubernetes.io/engine',
  'seccomp.security.alpha.kubernetes.io/pod', 'cluster-autoscaler.kubernetes.io/safe-to-evict', 'sidecar.istio.io/inject', 'linkerd.io/inject',
  'vault.hashicorp.com/agent-inject', 'io.kubernetes.cri-o.userns-mode', 'io.containerd.x/y', 'run.oci.keep_original_groups', 'example.io.kubernetes.x/y',
];

test('reserved pod label and annotation keys: admission, the API\'s list and the operator\'s pod policy agree', (t) => {
  for (const field of ['labels', 'annotations'] as const) {
    for (const key of POD_KEYS) {
      const admitted = !errors({ jobTemplate: { [field]: { [key]: 'x' } } }).some((e) => e.includes('may not use reserved keys'));
      t.is(admitted, apiReservedKey(key, field) === undefined, `${field} ${key}`);
      t.is(admitted, policyReservedKey(key, field) === undefined, `${field} ${key} (pod policy)`);
    }
  }
  t.is(apiReservedKey('cluster-autoscaler.kubernetes.io/safe-to-evict', 'labels'), 'reserved for Kubernetes (the Job controller, app.kubernetes.io labels the operator sets, AppArmor and seccomp annotations that loosen a pod)');
  t.is(apiReservedKey('example.com/team', 'labels'), undefined);
});

test('affinity is checked as Kubernetes checks a Pod\'s: operators and values, topology keys, unknown fields', (t) => {
  const node = (expression: Record<string, unknown>): string[] => errors({ jobTemplate: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expression] }] } } } } });
  t.deepEqual(node({ key: 'zone', operator: 'In', values: ['a'] }), []);
  t.deepEqual(node({ key: 'zone', operator: 'Exists' }), []);
  t.deepEqual(node({ key: 'cpus', operator: 'Gt', values: ['3'] }), []);
  t.regex(node({ key: 'zone', operator: 'In' }).join(), /values must be non-empty/);
  t.regex(node({ key: 'zone', operator: 'Exists', values: ['a'] }).join(), /values must be empty/);
  t.regex(node({ key: 'cpus', operator: 'Lt', values: ['3', '4'] }).join(), /exactly one integer value/);
  t.regex(node({ key: 'zone', operator: 'Near', values: ['a'] }).join(), /Unsupported value: "Near"/);
  t.regex(node({ key: 'bad key', operator: 'Exists' }).join(), /key: Invalid value/);
  t.regex(errors({ jobTemplate: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: {} }] } } } }).join(), /topologyKey: Required value/);
  t.regex(errors({ jobTemplate: { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, preference: {} }] } } } }).join(), /weight: Invalid value: 101/);
  t.regex(errors({ jobTemplate: { affinity: { nodeAffinity: {}, garbage: true } } }).join(), /unknown field "spec\.jobTemplate\.affinity\.garbage"/);
  t.regex(errors({ jobTemplate: { affinity: {} } }).join(), /spec\.jobTemplate\.affinity: Invalid value: 0/);
});
