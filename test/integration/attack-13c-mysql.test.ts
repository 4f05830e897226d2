// Issue 13, MariaDB as the source: a fragment calling a loadable function (a UDF, listed in
// mysql.func: C code from a shared library, not a stored routine) is refused by name when the role
// may read mysql.func; a heavy but legal rule (seq_1_to_N joined with itself) stops on the server
// within DMO_RULE_TIMEOUT_SECONDS. The source role is root (accepted with acceptWritableRole), so
// only the project's own guards stand in the way; the source's fingerprint is unchanged.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminQuery, freshDatabase } from '../support/databases.ts';
import { dmctl, errorOf } from '../support/dmctl.ts';
import { execSql, scalar } from '../support/sql.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

async function writeManifest(t: ExecutionContext, spec: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attack-13c-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack-13c', namespace: 'attack' },
    spec: { source: { engine: 'mysql', secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: 'postgres', secretRef: { name: 'target' } }, schema: { createMissingTables: true }, ...spec },
  }));
  return file;
}

const SEED = [
  'CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL) ENGINE=InnoDB',
  "INSERT INTO orders SELECT seq, CONCAT('order ', seq) FROM seq_1_to_200",
];

test('mysql: a fragment calling a loadable function (UDF) listed in mysql.func is refused by name in every step', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a13c_udf_src');
  const target = await freshDatabase(t, 'postgres', 'a13c_udf_dst');
  await execSql(source, SEED);
  // CREATE FUNCTION … SONAME needs a library exporting the function; the server's own row in
  // mysql.func is what the check reads, and the server (not restarted) never loads this one.
  const udf = `a13c_udf_${randomBytes(4).toString('hex')}`;
  await adminQuery('mysql', `INSERT INTO mysql.func (name, ret, dl, type) VALUES ('${udf}', 2, 'a13c_missing.so', 'function')`);
  t.teardown(() => adminQuery('mysql', `DELETE FROM mysql.func WHERE name = '${udf}'`));
  const before = await sourceFingerprint(source);
  const spellings = [`${udf}(id) = 1`, `${udf.toUpperCase()} (id) = 1`];
  for (const where of spellings) {
    const file = await writeManifest(t, { tables: [{ name: 'orders', where }] });
    for (const command of [['plan'], ['run'], ['step', 'copy'], ['validate']]) {
      const run = await dmctl([...command, '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
      t.is(run.code, 3, `${command.join(' ')} ${where}: ${errorOf(run)}`);
      t.regex(errorOf(run), new RegExp(`spec\\.tables\\[orders\\]\\.where: .*the loadable function \\(UDF\\) ${udf}\\(\\), defined in the source database`), command.join(' '));
    }
  }
  const rule = await writeManifest(t, { tables: [{ name: 'orders' }], validation: { rules: [{ name: 'udf', source: `SELECT ${udf}(1)`, expect: '1' }] } });
  const run = await dmctl(['plan', '-f', rule], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 3, errorOf(run));
  t.regex(errorOf(run), /spec\.validation\.rules\[udf\]\.source: .*the loadable function \(UDF\)/);
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
});

test('mysql: a view that calls a stored function, read by a fragment (directly or through another view), is refused; a plain view is not', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a13c_view_src');
  const target = await freshDatabase(t, 'postgres', 'a13c_view_dst');
  await execSql(source, [
    ...SEED,
    // Planted behind views: a stored function (one could write a server file with INTO OUTFILE,
    // which a read-only transaction does not stop; see attack-13-mysql.test.ts).
    "CREATE FUNCTION planted(x bigint) RETURNS bigint DETERMINISTIC BEGIN DECLARE n bigint; SELECT x INTO n; RETURN n; END",
    'CREATE VIEW planted_view AS SELECT id, planted(id) AS p FROM orders',
    'CREATE VIEW outer_view AS SELECT id FROM planted_view',
    'CREATE VIEW plain_view AS SELECT id FROM orders WHERE id < 10',
  ]);
  const before = await sourceFingerprint(source);
  for (const [view, spelled] of [['planted_view', 'planted_view'], ['outer_view', 'OUTER_VIEW'], ['planted_view', '`planted_view`']] as const) {
    const file = await writeManifest(t, { tables: [{ name: 'orders', where: `id IN (SELECT id FROM ${spelled})` }] });
    for (const command of [['plan'], ['step', 'copy']]) {
      const run = await dmctl([...command, '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
      t.is(run.code, 3, `${command.join(' ')} ${view}: ${errorOf(run)}`);
      t.regex(errorOf(run), /the view [\w]+\.planted_view, which a fragment reads, calls planted\(\), defined in the source database/, `${command.join(' ')} ${view}`);
    }
  }
  const plain = await writeManifest(t, { tables: [{ name: 'orders', where: 'id IN (SELECT id FROM plain_view)' }] });
  const run = await dmctl(['plan', '-f', plain], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target });
  t.is(run.code, 0, errorOf(run));
  t.deepEqual(fingerprintChanges(before, await sourceFingerprint(source)), []);
});

test('mysql: a heavy but legal rule stops on the server within DMO_RULE_TIMEOUT_SECONDS', async (t) => {
  const source = await freshDatabase(t, 'mysql', 'a13c_slow_src');
  const target = await freshDatabase(t, 'postgres', 'a13c_slow_dst');
  await execSql(source, SEED);
  const heavy = 'SELECT count(*) FROM seq_1_to_1000000 a, seq_1_to_1000000 b WHERE a.seq + b.seq = 7';
  const file = await writeManifest(t, { tables: [{ name: 'orders' }], validation: { rules: [{ name: 'heavy', source: heavy, expect: '6' }] } });
  const started = Date.now();
  const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: target, DMO_RULE_TIMEOUT_SECONDS: '2' }, () => Promise.resolve(Date.now() - started > 120_000));
  t.is(run.signal, null, 'dmctl ended by itself');
  t.not(run.code, 0);
  t.regex(JSON.stringify(run.events), /heavy.*the query ran longer than 2 s, the bound on a rule's query \(DMO_RULE_TIMEOUT_SECONDS\)/);
  t.is(await scalar(source, "SELECT count(*) FROM information_schema.processlist WHERE info LIKE '%seq_1_to_1000000 a%' AND id <> CONNECTION_ID()"), '0', 'nothing left running on the source');
});
