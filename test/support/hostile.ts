// The hostile-input suite's machinery (test/integration/hostile-sql-*.test.ts): one source database
// per engine seeded once, a directory the database servers can write into (so a file written by
// INTO OUTFILE or a program run by COPY TO PROGRAM would be seen), manifests built from a case,
// dmctl run as a process, and the source's fingerprint compared after every case. Nothing is reset
// between cases because nothing may change: the fingerprint proves it.
import test, { type ExecutionContext } from 'ava';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase } from './databases.ts';
import { dmctl } from './dmctl.ts';
import { fingerprintChanges, sourceFingerprint, type SourceFingerprint } from './source-fingerprint.ts';
import { execSql, scalar } from './sql.ts';

/** Whether the target has the table `name` (0 or 1). */
async function targetTables(engine: Engine, url: string, name: string): Promise<number> {
  const schema = engine === 'postgres' ? 'current_schema()' : 'DATABASE()';
  return Number(await scalar(url, `SELECT count(*) FROM information_schema.tables WHERE table_schema = ${schema} AND table_name = '${name}'`));
}

/** The manifest fields a case attacks (the report counts cases per field). */
export type Field = 'where' | 'expression' | 'default' | 'dedupe' | 'key' | 'table name' | 'column name' | 'incremental column' | 'rule source' | 'rule target';

export interface HostileCase {
  field: Field;
  /** What the attacker tries. */
  title: string;
  /** Merged into the attacked table's entry (`orders`, copied to a table of the case's own). */
  table?: Record<string, unknown>;
  /** Replaces spec.tables altogether (table-name attacks). */
  tables?: Record<string, unknown>[];
  /** Merged into the spec (validation rules, strategy). In every text, $DIR is the shared directory and $N the case's number. */
  spec?: Record<string, unknown>;
  /**
   * refused: dmctl exits 3 (plan refused) with a message matching the pattern (the field path);
   * ran: dmctl exits with this code (the attack was mere data, or the server refused it), the source unchanged.
   */
  expect: { refused: RegExp } | { ran: 0 | 1 | 3 | 4; message?: RegExp };
}

export interface HostileEnvironment {
  source: string;
  target: string;
  /** A directory every server process may write into; the cases aim their files and programs at it. */
  dir: string;
  before: SourceFingerprint;
}

/** Source tables, the same on both engines: rows, a sequence, and names that need quoting. */
const SEED: Record<Engine, string[]> = {
  postgres: [
    `CREATE TABLE orders (id bigint PRIMARY KEY, customer integer NOT NULL, note text, amount numeric(12,2), updated_at timestamp NOT NULL)`,
    `INSERT INTO orders SELECT g, g % 7, 'order ' || g, g * 1.5, timestamp '2024-01-01' + g * interval '1 minute' FROM generate_series(1, 200) g`,
    `CREATE TABLE "we'ird; name" (id integer PRIMARY KEY, "co'l) x" text)`,
    `INSERT INTO "we'ird; name" VALUES (1, 'a'), (2, 'b''c'), (3, NULL)`,
    'CREATE SEQUENCE s',
  ],
  mysql: [
    'CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text, amount decimal(12,2), updated_at datetime NOT NULL) ENGINE=InnoDB',
    `INSERT INTO orders SELECT seq, seq % 7, CONCAT('order ', seq), seq * 1.5, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_200`,
    "CREATE TABLE `we'ird; name` (id int PRIMARY KEY, `co'l) x` text) ENGINE=InnoDB",
    "INSERT INTO `we'ird; name` VALUES (1, 'a'), (2, 'b''c'), (3, NULL)",
    'CREATE SEQUENCE s',
  ],
};

/** The file names the cases aim at (in the shared directory); each must stay absent. */
export const MARKERS = ['program-ran', 'outfile', 'dumpfile', 'rule-outfile', 'version-comment', 'copy-program', 'layer'];

/**
 * The shared source (seeded, owned by the server's admin: a superuser on PostgreSQL, root with
 * FILE on MariaDB, so only the project's guards stop a write), a target of the other engine, and
 * proof that the server really can write into the directory (or the file checks would prove
 * nothing). Shared by a file's tests, so its databases are dropped by `cleanup`, not by one test.
 */
export async function hostileEnvironment(from: Engine, to: Engine, cleanup: (fn: () => Promise<void>) => void): Promise<HostileEnvironment> {
  // freshDatabase registers the drop with t.teardown: hand it the file's cleanup instead.
  const owner = { teardown: cleanup } as unknown as ExecutionContext;
  const source = await freshDatabase(owner, from, 'hostile_src');
  const target = await freshDatabase(owner, to, 'hostile_dst');
  const dir = await mkdtemp(join(tmpdir(), 'hostile-'));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o777); // the servers run as their own users
  await execSql(source, SEED[from]);
  const canary = join(dir, 'canary');
  // The program reads what COPY sends (touch would not: COPY then meets a broken pipe, now and then).
  await execSql(source, [from === 'postgres' ? `COPY (SELECT 1) TO PROGRAM 'cat > ${canary}'` : `SELECT 1 INTO OUTFILE '${canary}'`]);
  const written = await readdir(dir);
  if (written.join() !== 'canary') throw new Error(`the source server cannot write into ${dir} (found ${JSON.stringify(written)}): the file checks would prove nothing`);
  await rm(canary, { force: true });
  const before = await sourceFingerprint(source, { files: MARKERS.map((name) => join(dir, name)) });
  return { source, target, dir, before };
}

/** One environment per test file, made on first use, dropped after the file's last test. */
export function sharedEnvironment(from: Engine, to: Engine): () => Promise<HostileEnvironment> {
  const cleanups: (() => Promise<void>)[] = [];
  let shared: Promise<HostileEnvironment> | undefined;
  test.after.always(async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  });
  return () => (shared ??= hostileEnvironment(from, to, (fn) => { cleanups.push(fn); }));
}

/** The source is as it was: tables, sequences, settings, and no file in the directory. */
/**
 * The shared environment with the attacker's objects made in the source (`planted`, with $DIR for
 * the directory the server may write into), fingerprinted after they were made: once per file.
 */
export function plantedEnvironment(shared: () => Promise<HostileEnvironment>, planted: readonly string[]): () => Promise<HostileEnvironment> {
  let made: Promise<HostileEnvironment> | undefined;
  return () => {
    made ??= shared().then(async (env) => {
      await execSql(env.source, planted.map((sql) => sql.replaceAll('$DIR', env.dir)));
      return { ...env, before: await sourceFingerprint(env.source, { files: MARKERS.map((name) => join(env.dir, name)) }) };
    });
    return made;
  };
}

export async function assertUnchanged(t: ExecutionContext, environment: HostileEnvironment, what: string): Promise<void> {
  const now = await sourceFingerprint(environment.source, { files: MARKERS.map((name) => join(environment.dir, name)) });
  t.deepEqual(fingerprintChanges(environment.before, now), [], `${what}: the source changed`);
  t.deepEqual(await readdir(environment.dir), [], `${what}: a file appeared where the server could write it`);
}

function manifest(from: Engine, to: Engine, index: number, hostile: HostileCase): string {
  const table = { name: 'orders', target: `c${String(index)}_orders`, ...hostile.table };
  return JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1',
    kind: 'DataMigration',
    metadata: { name: `hostile-${String(index)}`, namespace: 'hostile' },
    spec: {
      // The source role is a superuser on purpose, accepted here: only the project's own guards
      // (parsed fragments, one statement, read-only transactions) stand between the manifest and the source.
      source: { engine: from, secretRef: { name: 'source' }, acceptWritableRole: true },
      target: { engine: to, secretRef: { name: 'target' } },
      schema: { createMissingTables: true },
      tables: hostile.tables ?? [table],
      strategy: { batchSize: 1000, parallelism: 1 },
      ...hostile.spec,
    },
  });
}

/** Registers one serial test per case: dmctl run on the manifest, its outcome, the source unchanged. */
export function hostileCases(from: Engine, to: Engine, environment: () => Promise<HostileEnvironment>, cases: readonly HostileCase[]): void {
  for (const [index, hostile] of cases.entries()) {
    test.serial(`${from} source, ${hostile.field}: ${hostile.title}`, async (t) => {
      const env = await environment();
      const dir = await mkdtemp(join(tmpdir(), 'hostile-manifest-'));
      const file = join(dir, 'migration.yaml');
      await writeFile(file, manifest(from, to, index, hostile).replaceAll('$DIR', env.dir).replaceAll('$N', String(index)));
      try {
        const run = await dmctl(['run', '-f', file], { DMO_SOURCE_URL: env.source, DMO_TARGET_URL: env.target });
        const message = run.events.find((e) => e.event === 'error')?.message;
        const error = typeof message === 'string' ? message : '';
        if ('refused' in hostile.expect) {
          t.is(run.code, 3, `refused by the plan (exit 3); got ${String(run.code)}: ${error}`);
          t.regex(error, hostile.expect.refused);
          t.is(await targetTables(to, env.target, `c${String(index)}_orders`), 0, 'nothing was created on the target');
        } else {
          t.is(run.code, hostile.expect.ran, `exit ${String(hostile.expect.ran)}; got ${String(run.code)}: ${error}`);
          if (hostile.expect.message) t.regex(error, hostile.expect.message);
        }
        await assertUnchanged(t, env, hostile.title);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
}

/** Counts per field, for the suite's own summary test (at least 40 per engine, every field covered). */
export function countByField(cases: readonly HostileCase[]): Record<Field, number> {
  const counts = Object.fromEntries(([
    'where', 'expression', 'default', 'dedupe', 'key', 'table name', 'column name', 'incremental column', 'rule source', 'rule target',
  ] as const).map((field) => [field, 0])) as Record<Field, number>;
  for (const hostile of cases) counts[hostile.field]++;
  return counts;
}
