// The packaging on the real control plane: `helm lint` is clean; `helm template` in cluster-wide
// and single-namespace modes and `kustomize build config/default` apply server-side; the applied
// RBAC grants the operator's ServiceAccount what it needs and nothing more (asked of the API
// server with `kubectl auth can-i --as`), and the namespaces' default ServiceAccount, which the
// engine Jobs run as, none of it; the kustomize
// build and the chart with default values hold the same objects; the aggregated view/edit roles
// reach people bound to view and edit; `helm upgrade` updates the CRD and uninstall keeps it;
// shellcheck passes on scripts/.
// helm and kustomize come from scripts/build-tools.sh (cached by version; test/support/tools.ts).
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/platform.ts';
import { freshNamespace, kubectl, testKubeconfigPath } from '../support/kube.ts';
import { run } from '../support/process.ts';
import { chartDir, checked, helmTemplate, tool } from '../support/tools.ts';

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Namespace']);

const parseManifests = (text: string): Manifest[] =>
  parseAllDocuments(text).map((doc) => doc.toJS() as Manifest | null).filter((m): m is Manifest => m !== null);

/** Server-side apply; returns the `kind/name` lines kubectl printed. */
async function apply(t: ExecutionContext, manifests: string): Promise<string[]> {
  const result = await kubectl(['apply', '--server-side', '--field-manager=packaging-test', '-o', 'name', '-f', '-'], { input: manifests });
  t.is(result.code, 0, result.stderr);
  return result.stdout.trim().split('\n').filter(Boolean);
}

/** Deletes the cluster-scoped objects of a manifest set when the test ends (never the CRD, which every test shares). */
function deleteClusterScopedAfter(t: ExecutionContext, manifests: Manifest[]): void {
  const names = manifests.filter((m) => CLUSTER_SCOPED.has(m.kind) && m.kind !== 'CustomResourceDefinition')
    .map((m) => `${m.kind.toLowerCase()}.${m.apiVersion.includes('/') ? m.apiVersion.split('/')[0] ?? '' : ''}/${m.metadata.name}`.replace('./', '/'));
  t.teardown(async () => {
    if (names.length > 0) await kubectl(['delete', '--ignore-not-found', '--wait=false', ...names]);
  });
}

/** `kubectl auth can-i` as a ServiceAccount: the API server's RBAC authorizer answers. */
async function can(serviceAccount: string, verb: string, resource: string, namespace?: string): Promise<boolean> {
  const [base, subresource] = resource.split('/');
  const result = await kubectl(['auth', 'can-i', verb, base ?? resource, ...(subresource ? [`--subresource=${subresource}`] : []),
    `--as=system:serviceaccount:${serviceAccount}`, ...(namespace ? ['--namespace', namespace] : ['--all-namespaces'])]);
  if (result.stdout.trim() !== 'yes' && result.stdout.trim() !== 'no') throw new Error(`kubectl auth can-i: ${result.stderr}`);
  return result.stdout.trim() === 'yes';
}

// What the operator needs (every rule of the contract, sampled per resource) and what it must not have.
const OPERATOR_CAN: [string, string][] = [
  ['watch', 'datamigrations.dataops.dev'], ['patch', 'datamigrations.dataops.dev'], ['update', 'datamigrations.dataops.dev/status'],
  ['update', 'datamigrations.dataops.dev/finalizers'], ['create', 'jobs.batch'], ['delete', 'jobs.batch'], ['list', 'pods'],
  ['get', 'secrets'], ['get', 'configmaps'], ['patch', 'services'], ['get', 'deployments.apps'], ['patch', 'deployments.apps'], ['create', 'events.events.k8s.io'],
];
// test/e2e/rbac-exact.test.ts proves the whole contract from the audit log; these sample it across the install modes.
const OPERATOR_CANNOT: [string, string][] = [
  ['list', 'secrets'], ['watch', 'secrets'], ['create', 'secrets'], ['create', 'datamigrations.dataops.dev'],
  ['delete', 'datamigrations.dataops.dev'], ['update', 'datamigrations.dataops.dev'], ['patch', 'datamigrations.dataops.dev/status'],
  ['update', 'jobs.batch'], ['delete', 'pods'], ['create', 'pods'], ['watch', 'pods'], ['get', 'pods/log'],
  ['create', 'pods/exec'], ['update', 'services'], ['delete', 'services'], ['update', 'deployments.apps'], ['delete', 'deployments.apps'], ['watch', 'deployments.apps'],
  ['list', 'configmaps'], ['update', 'configmaps'], ['create', 'events'], ['patch', 'events.events.k8s.io'],
  ['create', 'serviceaccounts'], ['create', 'rolebindings.rbac.authorization.k8s.io'],
];

async function assertOperatorAccess(t: ExecutionContext, account: string, namespace: string | undefined, label: string): Promise<void> {
  const answers = await Promise.all([
    ...OPERATOR_CAN.map(async ([verb, resource]) => [verb, resource, true, await can(account, verb, resource, namespace)] as const),
    ...OPERATOR_CANNOT.map(async ([verb, resource]) => [verb, resource, false, await can(account, verb, resource, namespace)] as const),
  ]);
  for (const [verb, resource, expected, actual] of answers) t.is(actual, expected, `${label}: ${account} ${expected ? 'can' : 'cannot'} ${verb} ${resource}`);
}

async function assertLeaderElectionAccess(t: ExecutionContext, account: string, leaseNamespace: string, elsewhere: string): Promise<void> {
  for (const verb of ['get', 'create', 'patch']) t.true(await can(account, verb, 'leases.coordination.k8s.io', leaseNamespace), `${verb} leases in ${leaseNamespace}`);
  for (const verb of ['update', 'delete']) t.false(await can(account, verb, 'leases.coordination.k8s.io', leaseNamespace), `no ${verb} on leases`);
  t.false(await can(account, 'create', 'leases.coordination.k8s.io', elsewhere), 'leases only in the operator\'s namespace');
}

/**
 * The engine Jobs run as their namespace's `default` ServiceAccount (no token mounted; see
 * src/controller/job-builder.ts): installing the operator must grant it none of the operator's permissions.
 */
async function assertEngineHasNoAccess(t: ExecutionContext, namespace: string): Promise<void> {
  const account = `${namespace}:default`;
  const answers = await Promise.all([...OPERATOR_CAN, ['create', 'leases.coordination.k8s.io'] as [string, string]]
    .map(async ([verb, resource]) => [verb, resource, await can(account, verb, resource, namespace)] as const));
  for (const [verb, resource, allowed] of answers) t.false(allowed, `${account} (the engine Jobs) cannot ${verb} ${resource}`);
}

const NO_ENGINE_OBJECTS = (manifests: Manifest[]): string[] =>
  manifests.filter((m) => /engine/i.test(m.metadata.name) || m.metadata.labels?.['app.kubernetes.io/component'] === 'engine').map((m) => `${m.kind}/${m.metadata.name}`);

const envOf = (manifests: Manifest[]): Record<string, unknown> => {
  const deployment = manifests.find((m) => m.kind === 'Deployment') as { spec: { template: { spec: { containers: { env: { name: string; value?: string; valueFrom?: unknown }[] }[] } } } } | undefined;
  return Object.fromEntries((deployment?.spec.template.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
};

test('helm lint is clean with default values and with every option on', async (t) => {
  const variants = [[], ['watchNamespaces={apps,billing}', 'replicaCount=3', 'networkPolicy.enabled=true', 'metrics.serviceMonitor.enabled=true',
    'networkPolicy.databaseEgress[0].ports[0].port=5433', 'image.digest=sha256:' + '0'.repeat(64), 'leaderElection.enabled=false',
    'metrics.prometheusRule.enabled=true', 'metrics.grafanaDashboard.enabled=true', 'crds.keep=false'], ['crds.enabled=false', 'rbac.aggregateToDefaultRoles=false']];
  for (const set of variants) {
    const result = await run(tool('helm'), ['lint', '--strict', chartDir, ...set.flatMap((s) => ['--set', s])], { cwd: repoRoot });
    t.is(result.code, 0, result.stdout + result.stderr);
    t.regex(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    t.notRegex(result.stdout, /\[(WARNING|ERROR)\]/, result.stdout);
  }
  const invalid = await run(tool('helm'), ['lint', chartDir, '--set', 'logLevel=loud'], { cwd: repoRoot });
  t.not(invalid.code, 0, 'values.schema.json rejects an unknown log level');
});

test('cluster-wide: helm template applies server-side; ClusterRole grants exactly the operator\'s verbs', async (t) => {
  const namespace = await freshNamespace(t, 'pkg-cluster');
  const other = await freshNamespace(t, 'pkg-other');
  const release = `cw-${randomBytes(3).toString('hex')}`;
  const text = await helmTemplate(release, namespace);
  const manifests = parseManifests(text);
  deleteClusterScopedAfter(t, manifests);
  const fullname = `${release}-datamigration-operator`;
  t.deepEqual(manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort(), [
    `ClusterRole/${fullname}`, `ClusterRole/${fullname}-edit`, `ClusterRole/${fullname}-view`, `ClusterRoleBinding/${fullname}`, 'CustomResourceDefinition/datamigrations.dataops.dev',
    `Deployment/${fullname}`, `Role/${fullname}-leader-election`, `RoleBinding/${fullname}-leader-election`,
    `Service/${fullname}-metrics`, `ServiceAccount/${fullname}`,
  ]);
  t.deepEqual(NO_ENGINE_OBJECTS(manifests), [], 'no engine ServiceAccount, Role or binding');
  const env = envOf(manifests);
  t.is(env.WATCH_NAMESPACE, '');
  t.is(env.ENGINE_IMAGE, 'datamigration-operator:0.1.0', 'the engine runs the operator\'s image');
  t.false('ENGINE_SERVICE_ACCOUNT' in env, 'the engine Jobs use their namespace\'s default ServiceAccount');

  const applied = await apply(t, text);
  t.is(applied.length, manifests.length, applied.join(', '));
  const account = `${namespace}:${fullname}`;
  await assertOperatorAccess(t, account, other, 'another namespace');
  await assertOperatorAccess(t, account, undefined, 'all namespaces');
  await assertLeaderElectionAccess(t, account, namespace, other);
  await assertEngineHasNoAccess(t, namespace);
  await assertEngineHasNoAccess(t, other);
  const rollout = await kubectl(['get', 'deployment', fullname, '-o', 'jsonpath={.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem}'], { namespace });
  t.is(rollout.stdout, 'true');
});

test('single-namespace: a Role in the watched namespace only, nothing cluster-scoped; PDB and NetworkPolicy apply', async (t) => {
  const namespace = await freshNamespace(t, 'pkg-single');
  const other = await freshNamespace(t, 'pkg-elsewhere');
  const release = `sn-${randomBytes(3).toString('hex')}`;
  const text = await helmTemplate(release, namespace, [`watchNamespaces={${namespace}}`, 'replicaCount=2', 'networkPolicy.enabled=true']);
  const manifests = parseManifests(text);
  deleteClusterScopedAfter(t, manifests);
  const fullname = `${release}-datamigration-operator`;
  t.deepEqual(manifests.filter((m) => CLUSTER_SCOPED.has(m.kind)).map((m) => `${m.kind}/${m.metadata.name}`).sort(),
    [`ClusterRole/${fullname}-edit`, `ClusterRole/${fullname}-view`, 'CustomResourceDefinition/datamigrations.dataops.dev'],
    'only the CRD and the aggregated view/edit roles (which grant the operator nothing) are cluster-scoped');
  t.deepEqual(manifests.map((m) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`).sort(), [
    `ClusterRole//${fullname}-edit`, `ClusterRole//${fullname}-view`, 'CustomResourceDefinition//datamigrations.dataops.dev', `Deployment/${namespace}/${fullname}`, `NetworkPolicy/${namespace}/${fullname}`,
    `PodDisruptionBudget/${namespace}/${fullname}`, `Role/${namespace}/${fullname}`, `Role/${namespace}/${fullname}-leader-election`,
    `RoleBinding/${namespace}/${fullname}`, `RoleBinding/${namespace}/${fullname}-leader-election`, `Service/${namespace}/${fullname}-metrics`,
    `ServiceAccount/${namespace}/${fullname}`,
  ].sort());
  t.deepEqual(NO_ENGINE_OBJECTS(manifests), [], 'no engine ServiceAccount, Role or binding');
  t.is(envOf(manifests).WATCH_NAMESPACE, namespace);
  t.false('ENGINE_SERVICE_ACCOUNT' in envOf(manifests));
  // The NetworkPolicy keeps DNS and the API server, and lets the operator reach the databases
  // (it reads copy progress from the engine's checkpoint table).
  const policy = manifests.find((m) => m.kind === 'NetworkPolicy') as { spec: { egress: { ports?: { port: number | string; protocol: string }[] }[] } } | undefined;
  const egressPorts = (policy?.spec.egress ?? []).flatMap((rule) => (rule.ports ?? []).map((p) => `${p.protocol}/${p.port}`));
  for (const port of ['UDP/53', 'TCP/53', 'TCP/443', 'TCP/6443', 'TCP/5432', 'TCP/3306']) t.true(egressPorts.includes(port), `egress to ${port}: ${egressPorts.join(', ')}`);

  const applied = await apply(t, text);
  t.is(applied.length, manifests.length, applied.join(', '));
  const account = `${namespace}:${fullname}`;
  await assertOperatorAccess(t, account, namespace, 'the watched namespace');
  for (const [verb, resource] of OPERATOR_CAN) t.false(await can(account, verb, resource, other), `no ${verb} ${resource} outside the watched namespace`);
  t.false(await can(account, 'list', 'datamigrations.dataops.dev'), 'no cluster-wide list');
  await assertLeaderElectionAccess(t, account, namespace, other);
  await assertEngineHasNoAccess(t, namespace);
  await assertEngineHasNoAccess(t, other);
  const pdb = await kubectl(['get', 'pdb', fullname, '-o', 'jsonpath={.spec.minAvailable}'], { namespace });
  t.is(pdb.stdout, '1');
});

test('kustomize build config/default applies server-side and holds the same objects as the chart\'s defaults', async (t) => {
  const built = await checked(tool('kustomize'), ['build', join(repoRoot, 'config', 'default')]);
  const kustomized = parseManifests(built);
  const namespace = kustomized.find((m) => m.kind === 'Namespace')?.metadata.name;
  if (!namespace) throw new Error('config/default has no Namespace');
  const charted = parseManifests(await helmTemplate('datamigration-operator', namespace));

  // Helm's own labels aside, each object of the chart is in the kustomize build, equal field for field.
  const key = (m: Manifest): string => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
  const withoutHelmLabels = (m: Manifest): Manifest => {
    const copy = structuredClone(m);
    if (copy.metadata.labels) {
      delete copy.metadata.labels['helm.sh/chart'];
      delete copy.metadata.labels['app.kubernetes.io/managed-by'];
    }
    // crds.keep: Helm's own instruction, meaningless to kustomize.
    const annotations = (copy.metadata as { annotations?: Record<string, string> }).annotations;
    if (annotations) {
      delete annotations['helm.sh/resource-policy'];
      if (Object.keys(annotations).length === 0) delete (copy.metadata as { annotations?: unknown }).annotations;
    }
    return copy;
  };
  const fromKustomize = new Map(kustomized.map((m) => [key(m), m]));
  t.deepEqual([...fromKustomize.keys()].filter((k) => !k.startsWith('Namespace/')).sort(), charted.map(key).sort());
  for (const object of charted.map(withoutHelmLabels)) {
    const other = fromKustomize.get(key(object));
    t.true(isDeepStrictEqual(object, other), `${key(object)} differs:\nhelm: ${JSON.stringify(object)}\nkustomize: ${JSON.stringify(other)}`);
  }

  t.teardown(async () => {
    await kubectl(['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']);
  });
  deleteClusterScopedAfter(t, kustomized);
  const applied = await apply(t, built);
  t.is(applied.length, kustomized.length, applied.join(', '));
  const account = `${namespace}:datamigration-operator`;
  await assertOperatorAccess(t, account, undefined, 'all namespaces');
  t.deepEqual(NO_ENGINE_OBJECTS(kustomized), [], 'no engine ServiceAccount, Role or binding');
  await assertEngineHasNoAccess(t, namespace);
});

test('shellcheck passes on every script', async (t) => {
  const shellcheck = '/usr/bin/shellcheck';
  if (!existsSync(shellcheck)) throw new Error('shellcheck is missing: run `bash scripts/build-tools.sh` (it installs the Debian package)');
  const scripts = readdirSync(join(repoRoot, 'scripts')).filter((name) => name.endsWith('.sh')).sort().map((name) => join('scripts', name));
  t.true(scripts.includes(join('scripts', 'kind-e2e.sh')) && scripts.includes(join('scripts', 'build-tools.sh')), scripts.join(', '));
  const result = await run(shellcheck, ['--severity=style', '--external-sources', ...scripts], { cwd: repoRoot });
  t.is(result.code, 0, result.stdout + result.stderr);
});

test('the aggregated roles: viewers read DataMigrations, editors change them, neither writes status; view and edit select them', async (t) => {
  const namespace = await freshNamespace(t, 'pkg-aggregate');
  const release = `ag-${randomBytes(3).toString('hex')}`;
  const manifests = parseManifests(await helmTemplate(release, namespace, ['crds.enabled=false']))
    .filter((m) => m.kind === 'ClusterRole' && /-(view|edit)$/.test(m.metadata.name));
  t.is(manifests.length, 2);
  deleteClusterScopedAfter(t, manifests);
  await apply(t, manifests.map((m) => JSON.stringify(m)).join('\n---\n'));
  // Kubernetes' own view and edit roles aggregate every ClusterRole their selectors match: ours must match.
  for (const kind of ['view', 'edit']) {
    const builtIn = await kubectl(['get', 'clusterrole', kind, '-o', 'jsonpath={.aggregationRule.clusterRoleSelectors[*].matchLabels}']);
    const labels = manifests.find((m) => m.metadata.name.endsWith(`-${kind}`))?.metadata.labels ?? {};
    const selectors = builtIn.stdout.split(/\s+(?=\{)/).filter(Boolean).map((text) => JSON.parse(text) as Record<string, string>);
    t.true(selectors.some((selector) => Object.entries(selector).every(([key, value]) => labels[key] === value)),
      `the built-in ${kind} role selects ${release}-datamigration-operator-${kind}: ${builtIn.stdout}`);
  }
  // What the rules grant, bound directly (the test control plane runs no aggregation controller).
  const bind = async (user: string, role: string): Promise<void> => {
    const result = await kubectl(['create', 'rolebinding', `${user}-binding`, `--clusterrole=${role}`, `--user=${user}`], { namespace });
    t.is(result.code, 0, result.stderr);
  };
  await bind('vera', `${release}-datamigration-operator-view`);
  await bind('ed', `${release}-datamigration-operator-edit`);
  const userCan = async (user: string, verb: string, resource: string): Promise<boolean> => {
    const [base, subresource] = resource.split('/');
    const result = await kubectl(['auth', 'can-i', verb, base ?? resource, ...(subresource ? [`--subresource=${subresource}`] : []), `--as=${user}`], { namespace });
    return result.stdout.trim() === 'yes';
  };
  for (const [user, verb, resource, expected] of [
    ['vera', 'get', 'datamigrations.dataops.dev', true], ['vera', 'watch', 'datamigrations.dataops.dev', true],
    ['vera', 'patch', 'datamigrations.dataops.dev', false], ['vera', 'delete', 'datamigrations.dataops.dev', false],
    ['ed', 'create', 'datamigrations.dataops.dev', true], ['ed', 'update', 'datamigrations.dataops.dev', true], ['ed', 'delete', 'datamigrations.dataops.dev', true],
    ['ed', 'patch', 'datamigrations.dataops.dev/status', false], ['ed', 'update', 'datamigrations.dataops.dev/status', false],
    ['vera', 'get', 'datamigrations.dataops.dev/status', false], ['ed', 'get', 'secrets', false],
  ] as const) {
    t.is(await userCan(user, verb, resource), expected, `${user} ${expected ? 'can' : 'cannot'} ${verb} ${resource}`);
  }
});

// Serial (ava runs it before the file's other tests): its next chart version changes the shared
// CRD's .spec.versions under helm's field manager, and the other tests' server-side apply of the
// current CRD would meet that as a conflict if it ran meanwhile.
test.serial('helm upgrade updates the CRD (crds.enabled), and uninstall keeps it (crds.keep)', async (t) => {
  const namespace = await freshNamespace(t, 'pkg-upgrade');
  const release = `up-${randomBytes(3).toString('hex')}`;
  const crd = 'customresourcedefinition.apiextensions.k8s.io/datamigrations.dataops.dev';
  const helm = (...args: string[]): Promise<string> => checked(tool('helm'), [...args, '--kubeconfig', testKubeconfigPath(), '--namespace', namespace]);
  // The CRD exists already (the test platform installed it, as crds/ or an older chart would have):
  // adopting it into the release is the README's upgrade recipe.
  const adopt = await kubectl(['annotate', '--overwrite', crd, `meta.helm.sh/release-name=${release}`, `meta.helm.sh/release-namespace=${namespace}`]);
  t.is(adopt.code, 0, adopt.stderr);
  t.is((await kubectl(['label', '--overwrite', crd, 'app.kubernetes.io/managed-by=Helm'])).code, 0);
  t.teardown(async () => {
    await run(tool('helm'), ['uninstall', release, '--kubeconfig', testKubeconfigPath(), '--namespace', namespace]);
    await kubectl(['annotate', crd, 'meta.helm.sh/release-name-', 'meta.helm.sh/release-namespace-', 'helm.sh/resource-policy-']);
    await kubectl(['label', crd, 'app.kubernetes.io/managed-by-', 'dataops.dev/upgrade-test-']);
  });
  // The chart as it is, and as its next version. The control plane built from source reports
  // Kubernetes v0.0.0, which the chart's kubeVersion constraint refuses: the copies drop it.
  const copyOfChart = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'dmo-chart-'));
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }); });
    cpSync(chartDir, dir, { recursive: true });
    const chartYaml = join(dir, 'Chart.yaml');
    writeFileSync(chartYaml, readFileSync(chartYaml, 'utf8').replace(/^kubeVersion: .*\n/m, ''));
    return dir;
  };
  const current = copyOfChart();
  await helm('install', release, current, '--set', 'replicaCount=0');

  // The next chart version's CRD: a new field, and a label (fields no other test owns).
  const next = copyOfChart();
  const template = join(next, 'templates', 'crds.yaml');
  const changed = readFileSync(template, 'utf8')
    .replace('  labels:\n    app.kubernetes.io/name: datamigration-operator\n', '  labels:\n    dataops.dev/upgrade-test: "1"\n    app.kubernetes.io/name: datamigration-operator\n')
    .replace('                suspend:\n                  type: boolean\n', '                upgradeProbe:\n                  type: string\n                  description: "Added by the next chart version."\n                suspend:\n                  type: boolean\n');
  t.not(changed, readFileSync(template, 'utf8'));
  writeFileSync(template, changed);
  await helm('upgrade', release, next, '--set', 'replicaCount=0');
  const probe = await kubectl(['get', crd, '-o', 'jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.upgradeProbe.type}/{.metadata.labels.dataops\\.dev/upgrade-test}/{.metadata.annotations.helm\\.sh/resource-policy}']);
  t.is(probe.stdout, 'string/1/keep', 'the upgrade changed the CRD on the server');

  await helm('upgrade', release, current, '--set', 'replicaCount=0');
  const back = await kubectl(['get', crd, '-o', 'jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.upgradeProbe.type}']);
  t.is(back.stdout, '', 'and the next upgrade changed it back');

  await helm('uninstall', release);
  const kept = await kubectl(['get', crd, '-o', 'name']);
  t.is(kept.code, 0, 'helm.sh/resource-policy: keep left the CRD (and every DataMigration) in place');
});

test('monitoring: the PrometheusRule holds the rules file with the values\' thresholds, the dashboard ConfigMap the dashboard', async (t) => {
  const off = parseManifests(await helmTemplate('mon', 'monitoring'));
  t.false(off.some((m) => m.kind === 'PrometheusRule' || m.metadata.name.endsWith('-dashboard')), 'both are off by default');
  const on = parseManifests(await helmTemplate('mon', 'monitoring', [
    'metrics.prometheusRule.enabled=true', 'metrics.prometheusRule.stuckAfterSeconds=3600', 'metrics.prometheusRule.labels.release=kps',
    'metrics.grafanaDashboard.enabled=true', 'metrics.grafanaDashboard.namespace=grafana',
  ]));
  const rule = on.find((m) => m.kind === 'PrometheusRule') as (Manifest & { spec: unknown }) | undefined;
  t.is(rule?.metadata.labels?.release, 'kps');
  const rulesFile = readFileSync(join(chartDir, 'files', 'prometheus-rules.yaml'), 'utf8')
    .replaceAll('__STUCK_AFTER_SECONDS__', '3600').replaceAll('__APPROVAL_WAIT_SECONDS__', '86400')
    .replaceAll('__NO_LEADER_FOR__', '5m').replaceAll('__RECONCILE_ERROR_RATIO__', '0.1');
  t.deepEqual(rule?.spec, parseAllDocuments(rulesFile)[0]?.toJS(), 'the rules promtool tested, thresholds filled in');
  const dashboard = on.find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'mon-datamigration-operator-dashboard') as (Manifest & { data: Record<string, string> }) | undefined;
  t.is(dashboard?.metadata.namespace, 'grafana');
  t.is(dashboard?.metadata.labels?.grafana_dashboard, '1');
  t.deepEqual(JSON.parse(dashboard?.data['datamigration-operator.json'] ?? '{}'), JSON.parse(readFileSync(join(chartDir, 'files', 'grafana-dashboard.json'), 'utf8')));
});
