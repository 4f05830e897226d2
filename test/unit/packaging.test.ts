// Packaging drift: the CRD the Helm chart templates and config/crd ships is the generated one
// (crds/); the aggregated view/edit roles are the same in both; the operator's RBAC rules in the chart and in config/rbac are identical
// and exactly the verbs the operator uses; nothing is shipped for the engine Jobs (they run as
// their namespace's default ServiceAccount, without a token); the manifests and the image agree with the operator's contract (env, command, user, paths).
// test/e2e/packaging.test.ts renders the chart with helm, builds config/default with kustomize
// and applies both to the real control plane.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { parse, parseAllDocuments } from 'yaml';
import { chartCrdTemplateText, crdKustomization, crdKustomizationText, legacyChartCrdDir, packagingDrift, repoRoot } from '../../scripts/sync-packaging.ts';
import { ENGINE_NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { OPERATOR_NODE_FLAGS } from '../../src/controller/node-flags.ts';

interface PolicyRule { apiGroups: string[]; resources: string[]; verbs: string[] }
type Manifest = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const read = (...path: string[]): string => readFileSync(join(repoRoot, ...path), 'utf8');
const manifests = (...path: string[]): Manifest[] =>
  parseAllDocuments(read(...path)).map((doc) => doc.toJS() as Manifest | null).filter((m): m is Manifest => m !== null);
const single = (...path: string[]): Manifest => {
  const all = manifests(...path);
  if (all.length !== 1 || !all[0]) throw new Error(`${path.join('/')}: expected one object, found ${all.length}`);
  return all[0];
};

// The operator's contract, verb by verb; a change here is a change of the security model.
// test/e2e/rbac-exact.test.ts proves it is exactly what the code calls (the API server's audit log).
const OPERATOR_RULES: PolicyRule[] = [
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  { apiGroups: [''], resources: ['services'], verbs: ['list', 'watch', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'watch', 'create', 'delete'] },
  { apiGroups: ['dataops.dev'], resources: ['datamigrations'], verbs: ['list', 'watch', 'patch'] },
  { apiGroups: ['dataops.dev'], resources: ['datamigrations/status'], verbs: ['update'] },
  { apiGroups: ['dataops.dev'], resources: ['datamigrations/finalizers'], verbs: ['update'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] },
];
const LEADER_ELECTION_RULES: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'patch'] },
];
const OPERATOR_ENV = ['WATCH_NAMESPACE', 'POD_NAME', 'POD_NAMESPACE', 'ENGINE_IMAGE', 'ENGINE_ALLOWED_IMAGES', 'ENGINE_ALLOWED_SERVICE_ACCOUNTS', 'ENGINE_POD_DEFAULTS', 'LOG_LEVEL', 'LOG_FORMAT', 'LEADER_ELECTION', 'LEADER_ELECTION_NAMESPACE', 'LEADER_ELECTION_LEASE', 'METRICS_PORT', 'HEALTH_PORT', 'CUTOVER_OPT_IN_SELECTOR'];

test('the chart templates the generated CRD (crds.enabled, crds.keep); config/crd ships it byte for byte', async (t) => {
  const drift = await packagingDrift();
  t.deepEqual([...drift.keys()], [], 'stale copies: run `node scripts/sync-packaging.ts`');
  const generated = read('crds', 'dataops.dev_datamigrations.yaml');
  const template = read('charts', 'datamigration-operator', 'templates', 'crds.yaml');
  t.is(template, chartCrdTemplateText([{ file: 'dataops.dev_datamigrations.yaml', text: generated }]));
  t.false(existsSync(legacyChartCrdDir), 'no crds/ in the chart: Helm installs those once and never upgrades them');
  // The template is the generated text, wrapped: take the wrapping off and the CRD is what remains.
  const unwrapped = template
    .replace(/^\{\{-? \/\*.*\*\/\}\}\n\{\{- if \.Values\.crds\.enabled \}\}\n/, '')
    .replace(/\{\{- end \}\}\n$/, '')
    .replace('  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n  {{- end }}\n', '');
  t.is(unwrapped, generated);
  const values = parse(read('charts', 'datamigration-operator', 'values.yaml')) as { crds: { enabled: boolean; keep: boolean } };
  t.deepEqual(values.crds, { enabled: true, keep: true });
  t.is(read('config', 'crd', 'bases', 'dataops.dev_datamigrations.yaml'), generated);
  t.is(readFileSync(crdKustomization, 'utf8'), crdKustomizationText(['dataops.dev_datamigrations.yaml']));
});

test('the ServiceMonitor keeps the series\' own namespace label (honorLabels): alerts group by the migration\'s namespace', (t) => {
  t.regex(read('charts', 'datamigration-operator', 'templates', 'servicemonitor.yaml'), /- port: http-metrics\n\s+path: \/metrics\n(\s+#.*\n)*\s+honorLabels: true\n/);
});

test('the aggregated view and edit ClusterRoles: DataMigrations only, never the status subresource, the same in the chart and config/rbac', (t) => {
  for (const kind of ['view', 'edit'] as const) {
    const rules = parse(read('charts', 'datamigration-operator', 'files', `${kind}-rules.yaml`)) as PolicyRule[];
    const role = single('config', 'rbac', `aggregate_${kind}_role.yaml`);
    t.is(role.kind, 'ClusterRole');
    t.is(role.metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${kind}`], 'true');
    t.deepEqual(role.rules, rules);
    t.deepEqual(rules.flatMap((rule) => rule.resources), ['datamigrations'], `${kind}: no status, no finalizers`);
    t.deepEqual(rules.flatMap((rule) => rule.apiGroups), ['dataops.dev']);
    const verbs = rules.flatMap((rule) => rule.verbs);
    if (kind === 'view') t.deepEqual(verbs, ['get', 'list', 'watch']);
    else t.deepEqual(verbs, ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']);
  }
  const template = read('charts', 'datamigration-operator', 'templates', 'aggregated-roles.yaml');
  t.regex(template, /\.Files\.Get "files\/view-rules\.yaml"/);
  t.regex(template, /\.Files\.Get "files\/edit-rules\.yaml"/);
  t.regex(template, /if and \.Values\.rbac\.create \.Values\.rbac\.aggregateToDefaultRoles/);
});

test('the chart and config/rbac grant the operator exactly the verbs it uses', (t) => {
  const chartRules = parse(read('charts', 'datamigration-operator', 'files', 'operator-rules.yaml')) as PolicyRule[];
  const role = single('config', 'rbac', 'role.yaml');
  t.is(role.kind, 'ClusterRole');
  t.deepEqual(chartRules, OPERATOR_RULES);
  t.deepEqual(role.rules, chartRules);

  const chartLeaderRules = parse(read('charts', 'datamigration-operator', 'files', 'leader-election-rules.yaml')) as PolicyRule[];
  const leaderRole = single('config', 'rbac', 'leader_election_role.yaml');
  t.is(leaderRole.kind, 'Role', 'leader election is namespaced');
  t.deepEqual(chartLeaderRules, LEADER_ELECTION_RULES);
  t.deepEqual(leaderRole.rules, chartLeaderRules);

  // The chart's templates render those files whatever the values, for both modes.
  const rbacTemplate = read('charts', 'datamigration-operator', 'templates', 'rbac.yaml');
  t.regex(rbacTemplate, /rules:\n\s+\{\{-? \$?\.Files\.Get "files\/operator-rules\.yaml" \| nindent 2 \}\}/);
  t.regex(rbacTemplate, /rules:\n\s+\{\{-? \.Files\.Get "files\/leader-election-rules\.yaml" \| nindent 2 \}\}/);
  t.notRegex(rbacTemplate, /^\s*-\s*apiGroups/m, 'no rule is written into the template itself');

  for (const rule of [...OPERATOR_RULES, ...LEADER_ELECTION_RULES]) {
    t.false([...rule.apiGroups, ...rule.resources, ...rule.verbs].includes('*'), 'no wildcards');
  }
  const secrets = OPERATOR_RULES.filter((rule) => rule.resources.includes('secrets'));
  t.deepEqual(secrets.flatMap((rule) => rule.verbs), ['get'], 'Secrets: get only, never list or watch');
});

test('config/rbac binds the rules to the operator ServiceAccount; nothing is shipped for the engine Jobs', (t) => {
  const account = single('config', 'rbac', 'service_account.yaml');
  t.is(account.kind, 'ServiceAccount');
  const bindings = [single('config', 'rbac', 'role_binding.yaml'), single('config', 'rbac', 'leader_election_role_binding.yaml')];
  for (const binding of bindings) {
    t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }]);
  }
  t.deepEqual((bindings[0]?.roleRef as { kind: string; name: string }), { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: single('config', 'rbac', 'role.yaml').metadata.name });
  t.deepEqual((bindings[1]?.roleRef as { kind: string; name: string }), { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: single('config', 'rbac', 'leader_election_role.yaml').metadata.name });
  const listed = (parse(read('config', 'rbac', 'kustomization.yaml')) as { resources: string[] }).resources;
  t.deepEqual([...listed].sort(), ['aggregate_edit_role.yaml', 'aggregate_view_role.yaml', 'leader_election_role.yaml', 'leader_election_role_binding.yaml',
    'role.yaml', 'role_binding.yaml', 'service_account.yaml']);

  // The engine Jobs run as their namespace's default ServiceAccount, without a token
  // (src/controller/job-builder.ts): no engine ServiceAccount, Role or binding anywhere.
  const rbacObjects = listed.flatMap((file) => manifests('config', 'rbac', file));
  t.deepEqual(rbacObjects.filter((m) => m.kind === 'ServiceAccount').map((m) => m.metadata.name), [account.metadata.name], 'one ServiceAccount: the operator\'s');
  for (const object of rbacObjects) {
    t.false(/engine/i.test(object.metadata.name), `${object.kind}/${object.metadata.name} is not for the engine`);
    t.not(object.metadata.labels?.['app.kubernetes.io/component'], 'engine', `${object.kind}/${object.metadata.name} is not for the engine`);
  }
  const bound = bindings.map((binding) => (binding.roleRef as { name: string }).name).sort();
  // Besides the aggregated view/edit roles (bound to no one: Kubernetes folds them into its own), every Role is the operator's.
  const aggregated = (m: Manifest): boolean => Object.keys(m.metadata.labels ?? {}).some((label) => label.startsWith('rbac.authorization.k8s.io/aggregate-to-'));
  t.deepEqual(bound, rbacObjects.filter((m) => (m.kind === 'Role' || m.kind === 'ClusterRole') && !aggregated(m)).map((m) => m.metadata.name).sort(), 'every Role is the operator\'s');
  t.deepEqual(rbacObjects.filter(aggregated).map((m) => m.metadata.name).sort(), ['datamigration-operator-edit', 'datamigration-operator-view']);
  const templates = ['serviceaccount.yaml', 'rbac.yaml'].map((file) => read('charts', 'datamigration-operator', 'templates', file)).join('\n');
  t.false(/engine/i.test(templates), 'the chart creates no engine ServiceAccount, Role or binding');
  const chartValues = parse(read('charts', 'datamigration-operator', 'values.yaml')) as { engine?: Record<string, unknown> };
  t.false(chartValues.engine !== undefined && 'serviceAccount' in chartValues.engine, 'no engine.serviceAccount values');
});

test('the operator Deployment follows the contract: command, env, probes, hardened security context', (t) => {
  const deployment = single('config', 'manager', 'manager.yaml') as Manifest & {
    spec: { template: { spec: {
      serviceAccountName: string;
      securityContext: Record<string, unknown>;
      containers: {
        name: string; image: string; command: string[]; env: { name: string; value?: string }[];
        ports: { name: string; containerPort: number }[];
        livenessProbe: { httpGet: { path: string; port: string } }; readinessProbe: { httpGet: { path: string; port: string } };
        securityContext: Record<string, unknown>;
      }[];
    } } };
  };
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  if (!container) throw new Error('no container');
  t.deepEqual(container.command, ['node', ...OPERATOR_NODE_FLAGS, 'dist/controller/main.js']);
  t.deepEqual(container.env.map((env) => env.name), OPERATOR_ENV);
  const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
  t.is(env.ENGINE_IMAGE, container.image, 'the engine Jobs run the operator\'s own image');
  t.false('ENGINE_SERVICE_ACCOUNT' in env, 'the engine Jobs use their namespace\'s default ServiceAccount');
  t.is(env.WATCH_NAMESPACE, '', 'all namespaces');
  t.is(env.LEADER_ELECTION, 'true');
  t.is(env.LOG_LEVEL, 'info');
  t.is(env.METRICS_PORT, '8080');
  t.is(env.ENGINE_ALLOWED_IMAGES, '', 'only ENGINE_IMAGE runs unless configured');
  t.is(env.ENGINE_ALLOWED_SERVICE_ACCOUNTS, '', 'no ServiceAccount token unless configured');
  t.is(env.CUTOVER_OPT_IN_SELECTOR, '', 'no Service opts in by its labels unless configured');
  t.is(env.HEALTH_PORT, '8081');
  t.deepEqual(container.ports.map((p) => [p.name, p.containerPort]), [['http-metrics', 8080], ['http-health', 8081]]);
  t.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'http-health' }, 'the probes on their own port');
  t.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'http-health' });
  t.is(pod.serviceAccountName, single('config', 'rbac', 'service_account.yaml').metadata.name);
  t.like(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
  t.like(container.securityContext, {
    allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
    capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });
  const chartValues = parse(read('charts', 'datamigration-operator', 'values.yaml')) as Record<string, unknown>;
  t.deepEqual(chartValues.podSecurityContext, pod.securityContext);
  t.deepEqual(chartValues.securityContext, container.securityContext);
  const chartDeployment = read('charts', 'datamigration-operator', 'templates', 'deployment.yaml');
  for (const name of OPERATOR_ENV) t.true(chartDeployment.includes(`- name: ${name}\n`), `the chart sets ${name}`);
  t.regex(chartDeployment, /\{\{- with \.Values\.engine\.serviceAccountName \}\}\n\s+- name: ENGINE_SERVICE_ACCOUNT\n/, 'ENGINE_SERVICE_ACCOUNT only when engine.serviceAccountName is set');
  t.true(chartDeployment.includes(`command: ${JSON.stringify(['node', ...OPERATOR_NODE_FLAGS, 'dist/controller/main.js']).replaceAll(',', ', ')}`));
});

test('the engine runs with the same node flags wherever it starts: the Job command, the CLI\'s shebang, npm run dmctl', (t) => {
  const flags = ENGINE_NODE_FLAGS.join(' ');
  t.is(read('src', 'cli', 'main.ts').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  t.is(scripts.dmctl, `node ${flags} src/cli/main.ts`);
});

test('the image: multi-stage, production dependencies only, numeric non-root user, dist/ where the Jobs look for it', (t) => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  t.true(stages.length >= 2, 'multi-stage');
  const runtime = stages.at(-1) ?? '';
  t.regex(runtime, /^USER 65532(:65532)?$/m);
  t.regex(runtime, /^WORKDIR \/app$/m);
  t.regex(runtime, /^COPY --from=\S+ \/app\/dist \.\/dist$/m);
  t.regex(runtime, /^COPY --from=\S+ \/app\/node_modules \.\/node_modules$/m);
  t.notRegex(runtime, /^RUN /m, 'the runtime stage needs no shell');
  t.regex(dockerfile, /npm ci --omit=dev/);
  t.true(runtime.includes(`ENTRYPOINT ["node"]\nCMD ${JSON.stringify([...OPERATOR_NODE_FLAGS, 'dist/controller/main.js']).replaceAll(',', ', ')}`), 'the operator runs with its node flags by default');
  t.regex(dockerfile, /^ARG RUNTIME_IMAGE=(gcr\.io\/distroless\/nodejs24-debian1\d|node:24-bookworm-slim)\S*$/m);
  // The operator's default engine command (DEFAULT_ENGINE_COMMAND in src/controller/job-builder.ts).
  // It names the engine's entry point by its absolute path in the image, under WORKDIR /app.
  const jobBuilder = read('src', 'controller', 'job-builder.ts');
  t.regex(jobBuilder, /^export const DEFAULT_ENGINE_COMMAND = \['node', .*'\/app\/dist\/cli\/main\.js'\];$/m, 'the engine Jobs run node [flags] /app/dist/cli/main.js');
  const ignore = read('.dockerignore');
  t.regex(ignore, /^\*$/m, '.dockerignore excludes everything by default');
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/']) t.true(ignore.includes(`!${needed}`), needed);
});

test('values.yaml documents every value, and the schema knows every top-level value', (t) => {
  const valuesText = read('charts', 'datamigration-operator', 'values.yaml');
  const values = parse(valuesText) as Record<string, unknown>;
  const schema = JSON.parse(read('charts', 'datamigration-operator', 'values.schema.json')) as { properties: Record<string, unknown>; additionalProperties: boolean };
  t.false(schema.additionalProperties, 'a misspelt value is an error');
  for (const key of Object.keys(values)) t.truthy(schema.properties[key], `values.schema.json describes ${key}`);
  // Each top-level key is preceded by a comment (a block's comment may sit on its first child).
  const lines = valuesText.split('\n');
  lines.forEach((line, index) => {
    const key = /^([A-Za-z]\w*):/.exec(line)?.[1];
    if (!key) return;
    const documented = lines[index - 1]?.startsWith('#') === true || lines[index + 1]?.trimStart().startsWith('#') === true;
    t.true(documented, `values.yaml: ${key} has a comment`);
  });
  // The operator reads copy progress from the databases: the NetworkPolicy lets it reach them by default.
  const networkPolicy = values.networkPolicy as { databaseEgress: { ports?: { port: number; protocol: string }[] }[] };
  t.deepEqual(networkPolicy.databaseEgress.flatMap((rule) => rule.ports ?? []).map((p) => `${p.protocol}/${p.port}`).sort(), ['TCP/3306', 'TCP/5432']);
  t.regex(read('charts', 'datamigration-operator', 'templates', 'networkpolicy.yaml'), /\.Values\.networkPolicy\.databaseEgress/);
  t.is(read('charts', 'datamigration-operator', 'Chart.yaml').match(/^appVersion: "(.+)"$/m)?.[1],
    (JSON.parse(read('package.json')) as { version: string }).version, 'appVersion follows package.json');
});
