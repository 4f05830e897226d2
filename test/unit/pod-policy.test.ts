// The operator's pod policy (src/controller/pod-policy.ts, image-reference.ts), attacked: foreign
// images dressed as allowed ones, tokens of accounts nobody allowed, reserved label and annotation
// keys, and the CEL rule that refuses the same keys at admission.
import test from 'ava';
import { Environment } from '@marcbachmann/cel-js';
import { REASONS } from '../../src/api/constants.ts';
import type { DataMigration, JobTemplateSpec } from '../../src/api/types.ts';
import { imageMatches, parseAllowedImage, parseImageReference } from '../../src/controller/image-reference.ts';
import { buildStepJob, NEVER_READY_GATE, type EngineConfig } from '../../src/controller/job-builder.ts';
import { RESERVED_KEY_PATTERN, reservedKey, reservedKeysRule } from '../../src/api/reserved-keys.ts';
import { checkPodPolicy, imageProblem, podIdentity, podPolicyFromEnv, PodPolicyError, type PodPolicyConfig } from '../../src/controller/pod-policy.ts';

const ENGINE = 'ghcr.io/acme/datamigration-operator:1.4.0';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}`;

const engine: EngineConfig = { image: ENGINE, command: ['dmctl'] };

function migration(jobTemplate: JobTemplateSpec | undefined): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', uid: '0f8fad5b-d9cb-469f-a165-70867728950e', generation: 1 },
    spec: {
      source: { engine: 'mysql', secretRef: { name: 'legacy-db', key: 'url' } },
      target: { engine: 'postgres', secretRef: { name: 'orders-pg', key: 'url' } },
      ...(jobTemplate !== undefined ? { jobTemplate } : {}),
    },
  };
}

const allows = (entry: string, image: string): boolean => {
  const allowed = parseAllowedImage(entry);
  const reference = parseImageReference(image);
  if (allowed === undefined) throw new Error(`entry ${entry} did not parse`);
  return reference !== undefined && imageMatches(reference, allowed);
};

test('image references are normalised as runtimes normalise them', (t) => {
  t.deepEqual(parseImageReference('postgres'), { repository: 'docker.io/library/postgres', tag: 'latest' });
  t.deepEqual(parseImageReference('docker.io/library/postgres:latest'), parseImageReference('postgres'));
  t.deepEqual(parseImageReference('index.docker.io/acme/dmo:1'), { repository: 'docker.io/acme/dmo', tag: '1' });
  t.deepEqual(parseImageReference('localhost:5000/dmo'), { repository: 'localhost:5000/dmo', tag: 'latest' }, 'a port is not a tag');
  t.deepEqual(parseImageReference(`ghcr.io/acme/dmo:1@${DIGEST}`), { repository: 'ghcr.io/acme/dmo', tag: '1', digest: DIGEST });
  for (const hostile of ['', ' ', 'ghcr.io/acme/dmo:1 ', 'ghcr.io/acme/../dmo', 'ghcr.io/Acme/dmo', 'ghcr.io/acme/dmo:', 'ghcr.io/acme/dmo@sha256:abc',
    `ghcr.io/acme/dmo@md5:${'a'.repeat(32)}`, `a@b@${DIGEST}`, 'ghcr.io//dmo', 'x'.repeat(513), 'ghcr.io/acme/dmo:1\nevil', '-dmo', 'dmo:-1']) {
    t.is(parseImageReference(hostile), undefined, JSON.stringify(hostile));
  }
});

test('allow-list entries: an exact image, a repository, a prefix; nothing that looks like one is stretched', (t) => {
  // A repository: any tag or digest of exactly that repository.
  t.true(allows('ghcr.io/acme/dmo', 'ghcr.io/acme/dmo:2.0'));
  t.true(allows('ghcr.io/acme/dmo', `ghcr.io/acme/dmo@${DIGEST}`));
  t.true(allows('ghcr.io/acme/dmo', 'ghcr.io/acme/dmo'));
  t.false(allows('ghcr.io/acme/dmo', 'ghcr.io/acme/dmo-evil:1'), 'not a longer name');
  t.false(allows('ghcr.io/acme/dmo', 'ghcr.io/acme/dmo/evil:1'), 'not a sub-repository');
  t.false(allows('ghcr.io/acme/dmo', 'ghcr.io.evil.com/acme/dmo:1'));
  t.true(allows('postgres', 'docker.io/library/postgres:16'), 'Docker Hub names normalised on both sides');
  // An exact tag: that tag only, and never with a digest (the digest decides what runs).
  t.true(allows('ghcr.io/acme/dmo:1.4.0', 'ghcr.io/acme/dmo:1.4.0'));
  t.false(allows('ghcr.io/acme/dmo:1.4.0', 'ghcr.io/acme/dmo:1.4.1'));
  t.false(allows('ghcr.io/acme/dmo:1.4.0', `ghcr.io/acme/dmo:1.4.0@${DIGEST}`), 'a tag entry does not vouch for a digest');
  t.false(allows('ghcr.io/acme/dmo:latest', 'ghcr.io/acme/dmo:latest2'));
  t.true(allows('ghcr.io/acme/dmo:latest', 'ghcr.io/acme/dmo'), 'no tag is latest');
  // An exact digest: that digest in that repository, whatever tag decorates it.
  t.true(allows(`ghcr.io/acme/dmo@${DIGEST}`, `ghcr.io/acme/dmo:anything@${DIGEST}`));
  t.false(allows(`ghcr.io/acme/dmo@${DIGEST}`, `ghcr.io/acme/dmo@${OTHER_DIGEST}`));
  t.false(allows(`ghcr.io/acme/dmo@${DIGEST}`, 'ghcr.io/acme/dmo:1.4.0'));
  t.false(allows(`ghcr.io/acme/dmo@${DIGEST}`, `ghcr.io/evil/dmo@${DIGEST}`));
  // A prefix: repositories under it, on that registry and port only.
  t.true(allows('registry.internal/dataops/', 'registry.internal/dataops/dmo:1'));
  t.true(allows('registry.internal/dataops/', 'registry.internal/dataops/team/dmo:1'));
  t.false(allows('registry.internal/dataops/', 'registry.internal/dataops-evil/dmo:1'));
  t.false(allows('registry.internal/dataops/', 'registry.internal/dataops'));
  t.true(allows('registry.internal/', 'registry.internal/anything/at/all:1'));
  t.false(allows('registry.internal/', 'registry.internal:5000/dmo:1'), 'another port is another registry');
  t.false(allows('registry.internal/', 'registry.internal.evil.com/dmo:1'));
  t.true(allows('acme/', 'acme/dmo:1'), 'a Docker Hub namespace');
  t.false(allows('acme/', 'postgres'), 'acme/ is not library/');
  for (const invalid of ['', '/', 'ghcr.io/acme/dmo:', 'ghcr.io/Acme/', 'ghcr.io/acme/dmo@sha256:x', 'has space/', 'a..b/']) {
    t.is(parseAllowedImage(invalid), undefined, JSON.stringify(invalid));
  }
});

test('by default only the operator\'s engine image runs; the refusal says what is allowed', (t) => {
  t.is(imageProblem(ENGINE, engine), undefined);
  t.is(imageProblem('ghcr.io/acme/datamigration-operator:1.4.0', engine), undefined);
  const foreign = imageProblem('evil.example/miner:1', engine) ?? '';
  t.regex(foreign, /spec\.jobTemplate\.image "evil\.example\/miner:1" is not allowed/);
  t.regex(foreign, /engine image "ghcr\.io\/acme\/datamigration-operator:1\.4\.0" \(its configuration allows no other\)/);
  t.truthy(imageProblem('ghcr.io/acme/datamigration-operator:1.4.1', engine), 'another tag of the engine is another image');
  t.truthy(imageProblem(`ghcr.io/acme/datamigration-operator:1.4.0@${DIGEST}`, engine), 'the engine tag with a foreign digest');
  t.regex(imageProblem('no spaces allowed', engine) ?? '', /not a valid image reference/);
  const pinned: PodPolicyConfig = { image: `ghcr.io/acme/dmo@${DIGEST}` };
  t.is(imageProblem(`ghcr.io/acme/dmo:1.4.0@${DIGEST}`, pinned), undefined, 'the engine digest with a tag');
  t.truthy(imageProblem('ghcr.io/acme/dmo:1.4.0', pinned), 'a tag cannot be checked against a digest');
  const configured: PodPolicyConfig = { image: ENGINE, allowedImages: ['registry.internal/dataops/', ...Array.from({ length: 10 }, (_, i) => `r${String(i)}.example/x`)] };
  t.is(imageProblem('registry.internal/dataops/dmo:2', configured), undefined);
  t.regex(imageProblem('evil.example/x:1', configured) ?? '', /"registry\.internal\/dataops\/", .* and 3 more/);
});

test('a ServiceAccount token is mounted only for an account the configuration allows', (t) => {
  const config: PodPolicyConfig = { image: ENGINE, serviceAccountName: 'dmo-engine', allowedServiceAccounts: ['cloud-iam', 'shop/migrator'] };
  t.deepEqual(podIdentity(undefined, 'shop', config), { serviceAccountName: 'dmo-engine', automountToken: false });
  t.deepEqual(podIdentity({}, 'shop', { image: ENGINE }), { automountToken: false }, 'the namespace default, no token');
  t.deepEqual(podIdentity({ serviceAccountName: 'cloud-iam' }, 'any', config), { serviceAccountName: 'cloud-iam', automountToken: true });
  t.deepEqual(podIdentity({ serviceAccountName: 'migrator' }, 'shop', config), { serviceAccountName: 'migrator', automountToken: true });
  t.deepEqual(podIdentity({ serviceAccountName: 'dmo-engine' }, 'shop', config), { serviceAccountName: 'dmo-engine', automountToken: false }, 'the default named: still no token');
  const elsewhere = podIdentity({ serviceAccountName: 'migrator' }, 'payments', config);
  t.regex(typeof elsewhere === 'string' ? elsewhere : '', /"migrator" is not allowed: the operator's configuration allows "cloud-iam", "shop\/migrator" besides its default "dmo-engine"/);
  const admin = podIdentity({ serviceAccountName: 'cluster-admin-sa' }, 'shop', { image: ENGINE });
  t.regex(typeof admin === 'string' ? admin : '', /allows no ServiceAccount\. Remove it to run as the namespace's default account with no token/);
});

const RESERVED = [
  'dataops.dev/step', 'dataops.dev/migration', 'x.dataops.dev/anything', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/name', 'batch.kubernetes.io/job-name',
  'batch.kubernetes.io/controller-uid', 'controller-uid', 'job-name', 'kubernetes.io/hostname', 'k8s.io/x', 'node.k8s.io/x',
  'container.apparmor.security.beta.kubernetes.io/engine', 'seccomp.security.alpha.kubernetes.io/pod', 'pod-security.kubernetes.io/enforce',
  'kubectl.kubernetes.io/default-container', 'io.kubernetes.cri-o.Devices', 'io.kubernetes.cri-o.userns-mode', 'io.containerd.x', 'io.katacontainers.config.hypervisor.kernel',
  'run.oci.keep_original_groups', 'sidecar.istio.io/proxyImage', 'sidecar.istio.io/userVolume', 'config.linkerd.io/proxy-image', 'vault.hashicorp.com/role',
];
const FREE = ['team', 'example.com/owner', 'kubernetes.io.example.com/x', 'notkubernetes.io/x', 'dataops.dev.example/x', 'xdataops.dev/x', 'job-name-x', 'my-controller-uid',
  'example.com/io.kubernetes.cri-o.Devices', 'Job-Name', 'dataops.dev', 'kubernetes.io'];

test('reserved keys: the operator\'s, Kubernetes\', the Job controller\'s, runtimes\' and injectors\'; the refusal names each', (t) => {
  for (const key of RESERVED) t.truthy(reservedKey(key, 'labels'), key);
  for (const key of FREE) t.is(reservedKey(key, 'labels'), undefined, key);
  t.is(reservedKey('cluster-autoscaler.kubernetes.io/safe-to-evict', 'annotations'), undefined, 'loosens nothing');
  t.truthy(reservedKey('cluster-autoscaler.kubernetes.io/safe-to-evict', 'labels'));
  const refusal = checkPodPolicy(migration({
    labels: { team: 'data', 'app.kubernetes.io/name': 'payments' },
    annotations: { 'container.apparmor.security.beta.kubernetes.io/engine': 'unconfined', note: 'x' },
  }), engine);
  t.is(refusal?.reason, REASONS.ReservedKey);
  t.regex(refusal?.message ?? '', /spec\.jobTemplate\.labels key "app\.kubernetes\.io\/name"/);
  t.regex(refusal?.message ?? '', /spec\.jobTemplate\.annotations key "container\.apparmor\.security\.beta\.kubernetes\.io\/engine" \(reserved for Kubernetes.*AppArmor/);
  t.false((refusal?.message ?? '').includes('"team"'));
  const many = checkPodPolicy(migration({ labels: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`dataops.dev/k${String(i)}`, 'v'])) }), engine);
  t.regex(many?.message ?? '', /; and 4 more\. Remove them$/);
});

test('the CRD\'s CEL rule refuses exactly the keys the operator refuses', (t) => {
  const cel = new Environment().registerVariable('self', 'dyn');
  for (const field of ['labels', 'annotations'] as const) {
    const { rule } = reservedKeysRule(field);
    for (const key of [...RESERVED, ...FREE, 'cluster-autoscaler.kubernetes.io/safe-to-evict']) {
      const admitted = cel.evaluate(rule, { self: { [key]: 'v' } }) as boolean;
      t.is(admitted, reservedKey(key, field) === undefined, `${field}: ${key}`);
    }
    t.true(cel.evaluate(rule, { self: {} }) as boolean);
  }
  t.true(new RegExp(RESERVED_KEY_PATTERN).test('batch.kubernetes.io/job-name'), 'the pattern is a JavaScript regular expression too');
});

test('every rule broken is said; the reason is the first', (t) => {
  const refusal = checkPodPolicy(migration({ image: 'evil:1', serviceAccountName: 'admin', labels: { 'dataops.dev/run': 'g9' } }), engine);
  t.is(refusal?.reason, REASONS.ImageNotAllowed);
  t.regex(refusal?.message ?? '', /image "evil:1".*serviceAccountName "admin".*reserved key/);
  t.is(checkPodPolicy(migration({ serviceAccountName: 'admin' }), engine)?.reason, REASONS.ServiceAccountNotAllowed);
  t.is(checkPodPolicy(migration(undefined), engine), undefined);
  t.is(checkPodPolicy(migration({ image: ENGINE, labels: { team: 'data' }, annotations: { 'cluster-autoscaler.kubernetes.io/safe-to-evict': 'false' } }), engine), undefined);
});

test('a Job the policy refuses is never built; every built pod says whether it mounts a token and is never Ready', (t) => {
  for (const template of [{ image: 'evil:1' }, { serviceAccountName: 'admin' }, { annotations: { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' } }]) {
    const error = t.throws(() => buildStepJob(migration(template), 'validate', 'g1', engine), { instanceOf: PodPolicyError });
    t.truthy(error.refusal.reason);
  }
  const plain = buildStepJob(migration(undefined), 'copy', 'g1', engine).spec?.template.spec;
  t.is(plain?.automountServiceAccountToken, false, 'said explicitly, not left to defaults');
  t.is(plain?.serviceAccountName, undefined);
  t.deepEqual(plain?.readinessGates, [{ conditionType: NEVER_READY_GATE }], 'no label can make it a Service endpoint');
  const allowed = buildStepJob(migration({ serviceAccountName: 'cloud-iam' }), 'copy', 'g1', { ...engine, allowedServiceAccounts: ['cloud-iam'] }).spec?.template.spec;
  t.is(allowed?.automountServiceAccountToken, true);
  const fallback = buildStepJob(migration({ serviceAccountName: 'dmo-engine' }), 'copy', 'g1', { ...engine, serviceAccountName: 'dmo-engine' }).spec?.template.spec;
  t.is(fallback?.automountServiceAccountToken, false);
  t.is(fallback?.serviceAccountName, 'dmo-engine');
});

test('the operator\'s configuration is read from its environment, and a wrong entry is refused at start', (t) => {
  t.deepEqual(podPolicyFromEnv({}), { allowedImages: [], allowedServiceAccounts: [], errors: [] });
  t.deepEqual(podPolicyFromEnv({ ENGINE_ALLOWED_IMAGES: ' registry.internal/dataops/, ghcr.io/acme/dmo ,,', ENGINE_ALLOWED_SERVICE_ACCOUNTS: 'cloud-iam,shop/migrator' }), {
    allowedImages: ['registry.internal/dataops/', 'ghcr.io/acme/dmo'], allowedServiceAccounts: ['cloud-iam', 'shop/migrator'], errors: [],
  });
  const wrong = podPolicyFromEnv({ ENGINE_ALLOWED_IMAGES: 'ghcr.io/Acme/dmo', ENGINE_ALLOWED_SERVICE_ACCOUNTS: 'system:serviceaccount:shop:x,a/b/c,Admin' });
  t.is(wrong.errors.length, 4, wrong.errors.join('\n'));
  t.regex(wrong.errors[0] ?? '', /ENGINE_ALLOWED_IMAGES: "ghcr\.io\/Acme\/dmo"/);
});
