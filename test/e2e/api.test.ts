// The DataMigration API on the real kube-apiserver: the samples are accepted, every invalid
// manifest of the catalogue is rejected at admission with its field or message, kubectl explains
// nested fields and prints the columns, and the fields a started run depends on are immutable.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { repoRoot } from '../support/platform.ts';
import { freshNamespace, kubectl, minimalManifest } from '../support/kube.ts';

const samplesDir = join(repoRoot, 'config', 'samples');
const invalidDir = join(repoRoot, 'test', 'fixtures', 'invalid');

const minimal = (name: string): string => minimalManifest(name);

test('every sample is accepted, with the Secrets, ConfigMaps and Services it references', async (t) => {
  const namespace = await freshNamespace(t, 'api-samples');
  const result = await kubectl(['apply', '-f', samplesDir, '-o', 'name'], { namespace });
  t.is(result.code, 0, result.stderr);
  const created = result.stdout.trim().split('\n');
  const migrations = created.filter((line) => line.startsWith('datamigration.dataops.dev/'));
  t.true(migrations.length >= 5, created.join(', '));
  for (const kind of ['secret/', 'configmap/', 'service/']) t.true(created.some((line) => line.startsWith(kind)), `a sample brings a ${kind}`);
  // Defaults from the schema are filled in by the API server.
  const strategy = await kubectl(['get', 'dm', 'shop-pg-upgrade', '-o', 'jsonpath={.spec.strategy.conflictPolicy}/{.spec.source.secretRef.key}/{.spec.schema.historyTable}'], { namespace });
  t.is(strategy.stdout, 'Fail/url/dataops_schema_history');
});

test('every manifest of the invalid catalogue is rejected at admission, naming the field or rule', async (t) => {
  const namespace = await freshNamespace(t, 'api-invalid');
  const files = (await readdir(invalidDir)).filter((f) => f.endsWith('.yaml')).sort();
  t.true(files.length >= 30, `${files.length} invalid fixtures`);
  await Promise.all(files.map(async (file) => {
    const text = await readFile(join(invalidDir, file), 'utf8');
    const expected = /^# expect: (.+)$/m.exec(text)?.[1];
    if (!expected) throw new Error(`${file} has no "# expect:" line`);
    const result = await kubectl(['create', '-f', '-'], { namespace, input: text });
    t.not(result.code, 0, `${file} was accepted`);
    t.true(result.stderr.includes(expected), `${file}: expected "${expected}" in: ${result.stderr.trim()}`);
  }));
  const left = await kubectl(['get', 'dm', '-o', 'name'], { namespace });
  t.is(left.stdout.trim(), '', 'nothing invalid was stored');
});

test('kubectl explain teaches nested fields from the schema descriptions', async (t) => {
  const columns = await kubectl(['explain', 'datamigration.spec.tables.columns']);
  t.is(columns.code, 0, columns.stderr);
  t.regex(columns.stdout, /transforms\s+<\[\]string>/);
  t.regex(columns.stdout, /An SQL expression evaluated on the source, read only/);
  const dedupe = await kubectl(['explain', 'dm.spec.tables.dedupe.keep']);
  t.regex(dedupe.stdout, /first or latest/);
  t.regex(dedupe.stdout, /ENUM:\s+first\s+latest/);
  const status = await kubectl(['explain', 'dm.status.conditions.reason']);
  t.regex(status.stdout, /CamelCase reason/);
  // The limits admission enforces are explained where they apply.
  t.regex((await kubectl(['explain', 'dm.spec.cutover.service'])).stdout, /DNS-1035 label/);
  t.regex((await kubectl(['explain', 'dm.status.startedAt'])).stdout, /cannot be removed or changed/);
  const affinity = await kubectl(['explain', 'dm.spec.jobTemplate.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution']);
  t.regex(affinity.stdout, /topologyKey\s+<string> -required-/);
});

test('kubectl get dm prints Phase, Ready, Progress, Lag, Source, Target, Active, Age, and Message with -o wide', async (t) => {
  const namespace = await freshNamespace(t, 'api-columns');
  t.is((await kubectl(['create', '-f', '-'], { namespace, input: minimal('orders') })).code, 0);
  const status = {
    status: {
      phase: 'Copying', message: 'copying orders', active: 'track=blue', activeSelector: { track: 'blue' },
      progress: { percent: 45, summary: '45% · 0/1 tables · 4.1M rows' }, sync: { lagMs: 1200, lag: '1.2s' },
      conditions: [{ type: 'Ready', status: 'False', reason: 'InProgress', message: 'copying orders', lastTransitionTime: '2026-11-25T06:00:00Z' }],
    },
  };
  const patched = await kubectl(['patch', 'dm', 'orders', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)], { namespace });
  t.is(patched.code, 0, patched.stderr);
  const table = await kubectl(['get', 'dm', '-o', 'wide'], { namespace });
  const [header, row] = table.stdout.trim().split('\n');
  t.deepEqual(header?.split(/\s{2,}/), ['NAME', 'PHASE', 'READY', 'PROGRESS', 'LAG', 'SOURCE', 'TARGET', 'ACTIVE', 'AGE', 'MESSAGE']);
  const cells = row?.split(/\s{2,}/) ?? [];
  t.deepEqual([cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[9]],
    ['orders', 'Copying', 'False', '45% · 0/1 tables · 4.1M rows', '1.2s', 'mysql', 'postgres', 'track=blue', 'copying orders']);
  const narrow = await kubectl(['get', 'dataops'], { namespace });
  t.notRegex(narrow.stdout, /MESSAGE/, 'Message is a priority-1 column');
  t.regex(narrow.stdout, /^orders\s+Copying\s/m, 'the dataops category lists DataMigrations');
});

test('source and target are immutable; tables, strategy and schema freeze once the run has started', async (t) => {
  const namespace = await freshNamespace(t, 'api-immutable');
  t.is((await kubectl(['create', '-f', '-'], { namespace, input: minimal('frozen') })).code, 0);
  const patch = (body: unknown, subresource = false): ReturnType<typeof kubectl> =>
    kubectl(['patch', 'dm', 'frozen', '--type=merge', '-p', JSON.stringify(body), ...(subresource ? ['--subresource=status'] : [])], { namespace });

  const source = await patch({ spec: { source: { secretRef: { name: 'elsewhere' } } } });
  t.regex(source.stderr, /spec\.source is immutable/);
  t.is((await patch({ spec: { tables: [{ name: 'orders', where: 'id > 10' }] } })).code, 0, 'before the start, tables may change');

  t.is((await patch({ status: { phase: 'Copying', startedAt: '2026-11-25T06:00:00Z' } }, true)).code, 0);
  const tables = await patch({ spec: { tables: [{ name: 'orders' }] } });
  t.regex(tables.stderr, /cannot change once the migration has started/);
  const batch = await patch({ spec: { strategy: { batchSize: 500 } } });
  t.regex(batch.stderr, /cannot change once the migration has started/);
  t.is((await patch({ spec: { suspend: true } })).code, 0, 'suspend stays changeable');
});
