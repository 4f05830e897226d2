// Schema fidelity on real servers (issue 15): the plan tells the whole truth and the run does what
// it said. Each case is checked through the target's catalogs: every index present under a unique
// name, a partitioned table copied once, bookkeeping tables never copied, FLOAT values exact;
// what the target cannot hold is refused by the plan naming the object, or named once in a grouped
// warning; and every accepted plan's run succeeds and validates.
import test, { type ExecutionContext } from 'ava';
import { openSession } from '../../src/engine/db/connect.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { copyStep, planStep } from '../../src/engine/pipeline/steps.ts';
import { introspectTable } from '../../src/engine/schema/introspect.ts';
import type { TableInfo } from '../../src/engine/schema/model.ts';
import { execSql, scalar } from '../support/sql.ts';
import { corpusSetup, runAccepted, type Tables } from '../support/schema-corpus.ts';

const setup = (t: ExecutionContext, from: Engine, to: Engine, seed: string[], tables?: Tables): ReturnType<typeof corpusSetup> => corpusSetup(t, 'fidelity', from, to, seed, tables);

async function tableOn(url: string, name: string): Promise<TableInfo | undefined> {
  const session = await openSession(url, { readOnly: true });
  try {
    return await introspectTable(session, name);
  } finally {
    await session.close();
  }
}

const innodb = (engine: Engine): string => (engine === 'mysql' ? ' ENGINE=InnoDB' : '');

test('mysql → postgres: same-named indexes of two tables both exist on the target under unique names, recorded in the plan', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE a (id int PRIMARY KEY, x int, y int, KEY idx_x (x), KEY only_a (y)) ENGINE=InnoDB',
    'CREATE TABLE b (id int PRIMARY KEY, x int, UNIQUE KEY idx_x (x)) ENGINE=InnoDB',
    'INSERT INTO a VALUES (1, 1, 1), (2, 2, 2)', 'INSERT INTO b VALUES (1, 1), (2, 2)',
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  const renames = plan.warnings.filter((w) => w.includes('index names'));
  t.is(renames.length, 1, plan.warnings.join('\n'));
  t.regex(renames[0] ?? '', /a\.idx_x → a_idx_x.*b\.idx_x → b_idx_x/);
  await runAccepted(t, context);
  const a = await tableOn(target, 'a');
  const b = await tableOn(target, 'b');
  t.deepEqual(a?.indexes.map((i) => i.name).sort(), ['a_idx_x', 'only_a']);
  t.deepEqual(b?.uniqueKeys.map((i) => [i.name, i.columns]), [['b_idx_x', ['x']]]);
  // A rerun decides the same names and adds nothing twice.
  t.is((await copyStep(context)).rowsThisRun, 0);
  t.deepEqual((await tableOn(target, 'a'))?.indexes.map((i) => i.name).sort(), ['a_idx_x', 'only_a']);
});

test('mysql → postgres: a partitioned MySQL table is one table, created plain, named once in the plan', async (t) => {
  const { context, source, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE logs (id int NOT NULL, y int NOT NULL, PRIMARY KEY (id, y)) ENGINE=InnoDB PARTITION BY RANGE (y) (PARTITION p1 VALUES LESS THAN (2000), PARTITION p2 VALUES LESS THAN MAXVALUE)',
    'INSERT INTO logs VALUES (1, 1999), (2, 2024), (3, 2025)',
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  t.regex(plan.warnings.filter((w) => /partition/i.test(w)).join('\n'), /^partitioned tables are created as plain tables.*: logs \(2 partitions\)$/);
  await runAccepted(t, context);
  t.is(await scalar(target, 'SELECT count(*) FROM logs'), await scalar(source, 'SELECT count(*) FROM logs'));
});

test('mysql → postgres: an index name taken on the target by an object the migration did not create refuses the plan, naming both', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'postgres', [
    'CREATE TABLE a (id int PRIMARY KEY, x int, KEY by_x (x)) ENGINE=InnoDB',
  ]);
  await execSql(target, ['CREATE TABLE by_x (id int)']);
  const { plan } = await planStep(context);
  t.regex(plan.errors.join('\n'), /index by_x of table a .*by_x.*exists/);
  // The clash is the plan's, found before anything was written.
  t.is(await scalar(target, "SELECT count(*) FROM pg_class WHERE relname = 'a'"), '0');
});

for (const to of ['postgres', 'mysql'] as const) {
  test(`postgres → ${to}: a partitioned table is one table, its rows read once, its partitions not listed`, async (t) => {
    const { context, source, target } = await setup(t, 'postgres', to, [
      'CREATE TABLE measures (id int NOT NULL, region varchar(10) NOT NULL, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)',
      "CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('eu')",
      "CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('us') PARTITION BY RANGE (id)",
      'CREATE TABLE measures_us_low PARTITION OF measures_us FOR VALUES FROM (0) TO (1000)',
      'CREATE TABLE measures_us_high PARTITION OF measures_us FOR VALUES FROM (1000) TO (MAXVALUE)',
      "INSERT INTO measures SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 2000) g",
      'CREATE TABLE plain (id int PRIMARY KEY)', 'INSERT INTO plain VALUES (1)',
    ]);
    const { plan } = await planStep(context);
    t.deepEqual(plan.errors, []);
    t.deepEqual(plan.tables.map((p) => p.spec.name), ['measures', 'plain']);
    const partitions = plan.warnings.filter((w) => /partition/i.test(w));
    t.is(partitions.length, 1, plan.warnings.join('\n'));
    t.regex(partitions[0] ?? '', /plain table.*measures \(4 partitions\)/);
    await runAccepted(t, context);
    t.is(await scalar(target, 'SELECT count(*) FROM measures'), await scalar(source, 'SELECT count(*) FROM measures'));
    t.is(await tableOn(target, 'measures_eu'), undefined, 'no partition copied as a table of its own');
  });
}

for (const [from, to] of [['postgres', 'mysql'], ['mysql', 'postgres']] as const) {
  test(`${from} → ${to}: the project's own bookkeeping tables on the source are never source tables`, async (t) => {
    const { context, target } = await setup(t, from, to, [
      `CREATE TABLE dataops_created_table (migration_uid varchar(255) NOT NULL, table_name varchar(255) NOT NULL, PRIMARY KEY (migration_uid, table_name))${innodb(from)}`,
      `CREATE TABLE dataops_schema_history (version varchar(50) PRIMARY KEY)${innodb(from)}`,
      "INSERT INTO dataops_created_table VALUES ('someone-else', 'users')",
      `CREATE TABLE users (id int PRIMARY KEY, name varchar(20))${innodb(from)}`, "INSERT INTO users VALUES (1, 'ann')",
    ]);
    const { plan } = await planStep(context);
    t.deepEqual(plan.tables.map((p) => p.spec.name), ['users']);
    await runAccepted(t, context);
    t.is(await scalar(target, "SELECT count(*) FROM dataops_created_table WHERE migration_uid = 'someone-else'"), '0');
  });
}

for (const to of ['postgres', 'mysql'] as const) {
  test(`mysql → ${to}: FLOAT is read exactly (123456.789 is not 123457) and validation passes`, async (t) => {
    const { context, target } = await setup(t, 'mysql', to, [
      'CREATE TABLE f (id int PRIMARY KEY, v float, w float(7,3), d double) ENGINE=InnoDB',
      'INSERT INTO f VALUES (1, 123456.789, 1234.567, 123456.789), (2, -0.000123456789, NULL, 1e300), (3, 3.4e38, 0, NULL), (4, NULL, -1.5, 0)',
    ]);
    await runAccepted(t, context);
    // Read back as a double (MySQL would print the target's FLOAT with 6 digits too).
    const read = async (id: number): Promise<number> => Number(await scalar(target, `SELECT ${to === 'mysql' ? 'v + 0e0' : 'v::float8'} FROM f WHERE id = ${String(id)}`));
    t.is(await read(1), Math.fround(123456.789), 'the float\'s exact value, not 123457');
    t.is(await read(2), Math.fround(-0.000123456789));
    t.is(await read(3), Math.fround(3.4e38));
  });
}

for (const [from, to] of [['postgres', 'mysql'], ['mysql', 'postgres']] as const) {
  test(`${from} → ${to}: a foreign key to a table that is not copied is not created, named in one grouped warning; the run succeeds`, async (t) => {
    const { context, target } = await setup(t, from, to, [
      `CREATE TABLE parent (id int PRIMARY KEY)${innodb(from)}`,
      `CREATE TABLE child (id int PRIMARY KEY, parent_id int, other_id int, CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id), CONSTRAINT fk_parent2 FOREIGN KEY (other_id) REFERENCES parent (id))${innodb(from)}`,
      'INSERT INTO parent VALUES (1)', 'INSERT INTO child VALUES (1, 1, 1)',
    ], [{ name: 'child' }]);
    const { plan } = await planStep(context);
    t.deepEqual(plan.errors, []);
    const fks = plan.warnings.filter((w) => w.includes('foreign key'));
    t.is(fks.length, 1, plan.warnings.join('\n'));
    t.regex(fks[0] ?? '', /child\.fk_parent → parent.*child\.fk_parent2 → parent/);
    await runAccepted(t, context);
    t.deepEqual((await tableOn(target, 'child'))?.foreignKeys, []);
  });
}

test('postgres → mysql: a composite key of text columns over InnoDB\'s 3072-byte limit is refused by the plan, naming the key and its columns', async (t) => {
  const { context, target } = await setup(t, 'postgres', 'mysql', [
    'CREATE TABLE tags (owner text NOT NULL, tag text NOT NULL, PRIMARY KEY (owner, tag))',
    'CREATE TABLE labels (id int PRIMARY KEY, a varchar(500), b varchar(500))', 'CREATE INDEX labels_ab ON labels (a, b)',
    'CREATE TABLE fine (id int PRIMARY KEY, name text UNIQUE)',
  ]);
  const { plan } = await planStep(context);
  const errors = plan.errors.join('\n');
  t.regex(errors, /table tags: primary key \(owner, tag\).*6144 bytes.*3072/);
  t.regex(errors, /table labels: index labels_ab \(a, b\).*4000 bytes/);
  t.false(errors.includes('table fine'), errors);
  t.is(await tableOn(target, 'tags'), undefined);
});

test('mysql → postgres: zero dates in NOT NULL date columns: the plan and the DDL agree (created nullable, one grouped warning), the run succeeds', async (t) => {
  const { context, target } = await setup(t, 'mysql', 'postgres', [
    "SET SESSION sql_mode = ''",
    "CREATE TABLE events (id int PRIMARY KEY, at datetime NOT NULL DEFAULT '0000-00-00 00:00:00', day date NOT NULL, seen timestamp NULL, note varchar(10)) ENGINE=InnoDB",
    "CREATE TABLE logs (id int PRIMARY KEY, at datetime NOT NULL, d2 date, d3 date, d4 date) ENGINE=InnoDB",
    "INSERT INTO events VALUES (1, '0000-00-00 00:00:00', '0000-00-00', NULL, 'x'), (2, '2024-01-02 03:04:05', '2024-01-02', '2024-01-02 03:04:05', 'y')",
    "INSERT INTO logs VALUES (1, '2024-01-01 00:00:00', NULL, NULL, NULL)",
  ]);
  const { plan } = await planStep(context);
  t.deepEqual(plan.errors, []);
  const zero = plan.warnings.filter((w) => /zero date/i.test(w));
  t.true(zero.length <= 2, `grouped, not one per column:\n${zero.join('\n')}`);
  t.regex(zero.join('\n'), /nullable.*events\.at, events\.day, logs\.at/);
  await runAccepted(t, context);
  const events = await tableOn(target, 'events');
  t.true(events?.columns.find((c) => c.name === 'at')?.nullable);
  t.is(await scalar(target, 'SELECT count(*) FROM events WHERE at IS NULL AND day IS NULL'), '1');
});

test('mysql → postgres: a schema with many date columns gets one zero-dates warning naming them all', async (t) => {
  const seed = Array.from({ length: 6 }, (_, i) => `CREATE TABLE t${String(i)} (id int PRIMARY KEY, a date, b datetime, c timestamp NULL) ENGINE=InnoDB`);
  const { context } = await setup(t, 'mysql', 'postgres', seed);
  const { plan } = await planStep(context);
  const zero = plan.warnings.filter((w) => /zero date/i.test(w));
  t.is(zero.length, 1, zero.join('\n'));
  t.regex(zero[0] ?? '', /t0\.a, t0\.b, t0\.c, t1\.a/);
});
