// The CLI's stand-in for the API server's defaulting and structural checks (src/api/defaults.ts).
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { normalizeDataMigration } from '../../src/api/defaults.ts';

const minimal = {
  apiVersion: 'dataops.dev/v1alpha1',
  kind: 'DataMigration',
  metadata: { name: 'm' },
  spec: {
    source: { engine: 'mysql', secretRef: { name: 'a' } },
    target: { engine: 'postgres', secretRef: { name: 'b' } },
    tables: [{ name: 'orders' }],
  },
};

test('defaults are filled in the way the API server fills them', (t) => {
  const migration = normalizeDataMigration(minimal);
  t.is(migration.spec.strategy?.type, 'BigBang');
  t.is(migration.spec.strategy?.batchSize, 10000);
  t.is(migration.spec.strategy?.parallelism, 4);
  t.is(migration.spec.source.secretRef.key, 'url');
  t.is(migration.spec.validation?.checksum?.mode, 'Full');
  t.is(minimal.spec.tables.length, 1, 'the input is not modified');
  t.false('strategy' in minimal.spec);
});

test('structural errors are all reported, each with its field path', (t) => {
  const bad = structuredClone(minimal) as unknown as { spec: Record<string, unknown> };
  bad.spec.strategy = { type: 'Sometimes', batchSize: 5 };
  bad.spec.tables = [{ name: 'orders', colour: 'red' }];
  const error = t.throws(() => normalizeDataMigration(bad));
  t.regex(error.message, /spec\.strategy\.type: Unsupported value: "Sometimes"/);
  t.regex(error.message, /spec\.strategy\.batchSize: Invalid value: 5: must be greater than or equal to 100/);
  t.regex(error.message, /spec\.tables\[0\]: unknown field "colour"/);
});

test('a missing required field is named', (t) => {
  const bad = structuredClone(minimal) as unknown as { spec: Record<string, unknown> };
  delete bad.spec.source;
  t.throws(() => normalizeDataMigration(bad), { message: /spec\.source: Required value/ });
});

test('every shipped sample normalizes without error', async (t) => {
  for (const name of ['pg-to-pg-bigbang', 'mysql-to-pg-mapping', 'phased', 'trickle-blue-green', 'rules-with-rollback']) {
    const text = await readFile(new URL(`../../config/samples/${name}.yaml`, import.meta.url), 'utf8');
    const documents = parseAllDocuments(text).map((d) => d.toJS() as { kind?: string });
    const migration = documents.find((d) => d.kind === 'DataMigration');
    t.truthy(migration, name);
    t.notThrows(() => normalizeDataMigration(migration), name);
  }
});
