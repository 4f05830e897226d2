// `npm run bench:copy [-- --rows N] [-- --scale-rows M]`: the engine's copy against the tools
// people would otherwise use, on the same generated table, servers and machine, in one run.
// Prints figures as it goes and ends with one JSON line (the figures the README quotes).
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { benchServers, mysql, mysqlCliArgs, psql, quote, round, runExitCleanups, timeCommand, withDatabase, type Servers } from './support.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '2000000' }, 'scale-rows': { type: 'string', default: '0' }, parallelism: { type: 'string', default: '2' }, 'ours-only': { type: 'boolean', default: false }, profile: { type: 'string' } } });
// --profile DIR: our copies write V8 CPU profiles there (node --cpu-prof), to see where time goes.
const profileFlags = values.profile ? `--cpu-prof --cpu-prof-dir=${values.profile}` : '';
// --ours-only: just our three copies (for profiling; no reference tools, no ratios).
const oursOnly = values['ours-only'];
const SKIPPED = { seconds: Number.NaN, peakRssMb: Number.NaN };
const rows = Number(values.rows);
const scaleRows = Number(values['scale-rows']);
const parallelism = Number(values.parallelism);
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

const MYSQL_TABLE = `CREATE TABLE bench (id bigint PRIMARY KEY, qty int NOT NULL, name varchar(64) NOT NULL, price decimal(12,2),
  status enum('new','paid','shipped') NOT NULL, active tinyint(1) NOT NULL, created datetime NOT NULL, updated timestamp NULL, note text NULL)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
const PG_TABLE = `CREATE TABLE bench (id bigint PRIMARY KEY, qty integer NOT NULL, name varchar(64) NOT NULL, price numeric(12,2),
  status text NOT NULL, active boolean NOT NULL, created timestamp NOT NULL, updated timestamptz, note text)`;
const COLUMNS = 'id, qty, name, price, status, active, created, updated, note';

async function generate(servers: Servers, n: number, suffix: string): Promise<{ mysqlSource: string; pgSource: string; seconds: number }> {
  const started = performance.now();
  const mysqlSource = withDatabase(servers.mysqlUrl, `bench_src${suffix}`);
  const pgSource = withDatabase(servers.pgUrl, `bench_src${suffix}`);
  await mysql(servers.mysqlUrl, `DROP DATABASE IF EXISTS bench_src${suffix}; CREATE DATABASE bench_src${suffix}`);
  await mysql(mysqlSource, `${MYSQL_TABLE}; INSERT INTO bench SELECT seq, seq % 1000, CONCAT('name-', seq), (seq % 100000) / 100, ELT(seq % 3 + 1, 'new', 'paid', 'shipped'),
    seq % 2, '2020-01-01' + INTERVAL seq SECOND, '2020-01-01' + INTERVAL seq SECOND, IF(seq % 5 = 0, NULL, REPEAT('x', seq % 50)) FROM seq_1_to_${n}; ANALYZE TABLE bench`);
  await psql(servers.pgUrl, `DROP DATABASE IF EXISTS bench_src${suffix} WITH (FORCE)`);
  await psql(servers.pgUrl, `CREATE DATABASE bench_src${suffix}`);
  await psql(pgSource, `${PG_TABLE}; INSERT INTO bench SELECT g, g % 1000, 'name-' || g, (g % 100000) / 100.0, (ARRAY['new','paid','shipped'])[g % 3 + 1], g % 2 = 1,
    timestamp '2020-01-01' + g * interval '1 second', timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second', CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 50) END
    FROM generate_series(1, ${n}) g`);
  await psql(pgSource, 'VACUUM ANALYZE bench'); // not inside psql -c's implicit transaction
  return { mysqlSource, pgSource, seconds: (performance.now() - started) / 1000 };
}

/**
 * An empty target database, reached as the admin user, or, with `owned`, as an account that owns
 * it and may write nothing else: the engine refuses a target account that could write a source on
 * the same server (src/engine/pipeline/source-reach.ts), and the admin user could.
 */
async function freshTarget(servers: Servers, engine: 'postgres' | 'mysql', name: string, createTable: boolean, owned = false): Promise<string> {
  const serverUrl = engine === 'postgres' ? servers.pgUrl : servers.mysqlUrl;
  if (engine === 'postgres') {
    await psql(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    if (owned) await psql(serverUrl, `DO $$ BEGIN CREATE ROLE ${TARGET_OWNER} LOGIN PASSWORD '${TARGET_OWNER}'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    await psql(serverUrl, `CREATE DATABASE ${name}${owned ? ` OWNER ${TARGET_OWNER}` : ''}`);
  } else {
    await mysql(serverUrl, `DROP DATABASE IF EXISTS ${name}; CREATE DATABASE ${name}`);
    if (owned) await mysql(serverUrl, `CREATE USER IF NOT EXISTS '${TARGET_OWNER}'@'%' IDENTIFIED BY '${TARGET_OWNER}'; GRANT ALL PRIVILEGES ON \`${name.replace(/_/g, '\\_')}\`.* TO '${TARGET_OWNER}'@'%'`);
  }
  const url = new URL(withDatabase(serverUrl, name));
  if (owned) {
    url.username = TARGET_OWNER;
    url.password = TARGET_OWNER;
  }
  if (createTable) await (engine === 'postgres' ? psql : mysql)(url.toString(), engine === 'postgres' ? PG_TABLE : MYSQL_TABLE);
  return url.toString();
}

const TARGET_OWNER = 'bench_target_owner';

/**
 * Our copy through the product's own path: `dmctl run` on a manifest, in a child process. The
 * source is read as the bench server's admin user, a role that could write: accepted explicitly.
 */
async function ours(source: string, target: string, sourceEngine: string, targetEngine: string, label: string, extraEnv: Record<string, string> = {}): Promise<{ seconds: number; peakRssMb: number }> {
  const manifest = join(tmpdir(), `bench-${label}-${process.pid}.yaml`);
  await writeFile(manifest, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: bench-${label}}
spec:
  source: {engine: ${sourceEngine}, secretRef: {name: source, key: url}, acceptWritableRole: true}
  target: {engine: ${targetEngine}, secretRef: {name: target, key: url}}
  tables: [{name: bench}]
  strategy: {type: BigBang, batchSize: 50000, parallelism: ${parallelism}}
  validation: {rowCount: false, checksum: {mode: None}}
`);
  const result = await timeCommand(`${quote(process.execPath)} ${ENGINE_NODE_FLAGS.join(' ')} ${profileFlags} ${quote(cli)} run -f ${quote(manifest)} --json --skip-validation`, {
    env: { DMO_SOURCE_URL: source, DMO_TARGET_URL: target, ...extraEnv }, measureRss: true,
  });
  return { seconds: result.seconds, peakRssMb: result.peakRssMb ?? Number.NaN };
}

async function main(): Promise<void> {
  const servers = await benchServers();
  console.log(`generating ${rows} rows in MariaDB and PostgreSQL`);
  const data = await generate(servers, rows, '');
  console.log(`generated in ${round(data.seconds, 1)} s`);

  const report: Record<string, number> = { rows };
  const rate = (seconds: number): number => Math.round(rows / seconds);

  // PostgreSQL → PostgreSQL
  const psqlTarget = await freshTarget(servers, 'postgres', 'bench_psql', true);
  const psqlPipe = oursOnly ? SKIPPED : await timeCommand(`psql -q ${quote(data.pgSource)} -c "COPY bench (${COLUMNS}) TO STDOUT" | psql -q ${quote(psqlTarget)} -c "COPY bench (${COLUMNS}) FROM STDIN"`);
  const pgTarget = await freshTarget(servers, 'postgres', 'bench_pg_ours', true, true);
  const pgOurs = await ours(data.pgSource, pgTarget, 'postgres', 'postgres', 'pg-pg');
  report.psql_pipe_rows_per_s = rate(psqlPipe.seconds);
  report.pg_to_pg_rows_per_s = rate(pgOurs.seconds);
  report.ratio_vs_psql_pipe = round(psqlPipe.seconds / pgOurs.seconds);
  console.log(`pg→pg: ours ${round(pgOurs.seconds)} s, psql COPY pipe ${round(psqlPipe.seconds)} s`);

  // MySQL → PostgreSQL
  const pgloaderTarget = await freshTarget(servers, 'postgres', 'bench_pgloader', false);
  const pgloader = oursOnly ? SKIPPED : await timeCommand(`pgloader --no-ssl-cert-verification ${quote(data.mysqlSource)} ${quote(pgloaderTarget.replace(/^postgres:/, 'postgresql:'))}`, { measureRss: true });
  const cliTarget = await freshTarget(servers, 'postgres', 'bench_mycli', true);
  const { args, env } = mysqlCliArgs(data.mysqlSource);
  const mysqlCliPipe = oursOnly ? SKIPPED : await timeCommand(`mariadb ${args.map(quote).join(' ')} --batch --quick --skip-column-names -e "SELECT ${COLUMNS} FROM bench" | psql -q ${quote(cliTarget)} -c "COPY bench (${COLUMNS}) FROM STDIN WITH (NULL 'NULL')"`, { env });
  const mysqlPgTarget = await freshTarget(servers, 'postgres', 'bench_my_pg_ours', true);
  const mysqlPgOurs = await ours(data.mysqlSource, mysqlPgTarget, 'mysql', 'postgres', 'my-pg');
  report.mysql_to_pg_rows_per_s = rate(mysqlPgOurs.seconds);
  report.pgloader_rows_per_s = rate(pgloader.seconds);
  report.ratio_vs_pgloader = round(pgloader.seconds / mysqlPgOurs.seconds);
  report.mysql_cli_pipe_rows_per_s = rate(mysqlCliPipe.seconds);
  report.ratio_vs_mysql_cli_pipe = round(mysqlCliPipe.seconds / mysqlPgOurs.seconds);
  report.pgloader_peak_rss_mb = round(pgloader.peakRssMb ?? Number.NaN, 0);
  console.log(`mysql→pg: ours ${round(mysqlPgOurs.seconds)} s, pgloader ${round(pgloader.seconds)} s, mariadb|psql pipe ${round(mysqlCliPipe.seconds)} s`);

  // MySQL → MySQL
  const dumpTarget = await freshTarget(servers, 'mysql', 'bench_dump', false);
  const dumpSource = mysqlCliArgs(data.mysqlSource);
  const dumpInto = mysqlCliArgs(dumpTarget);
  const dumpPipe = oursOnly ? SKIPPED : await timeCommand(`mariadb-dump ${dumpSource.args.map(quote).join(' ')} --single-transaction --quick bench | MYSQL_PWD=${quote(dumpInto.env.MYSQL_PWD ?? '')} mariadb ${dumpInto.args.map(quote).join(' ')}`, { env: dumpSource.env });
  const mysqlTarget = await freshTarget(servers, 'mysql', 'bench_my_ours', true, true);
  const mysqlOurs = await ours(data.mysqlSource, mysqlTarget, 'mysql', 'mysql', 'my-my');
  report.mysql_to_mysql_rows_per_s = rate(mysqlOurs.seconds);
  report.mysqldump_pipe_rows_per_s = rate(dumpPipe.seconds);
  report.ratio_vs_mysqldump = round(dumpPipe.seconds / mysqlOurs.seconds);
  console.log(`mysql→mysql: ours ${round(mysqlOurs.seconds)} s, mariadb-dump|mariadb ${round(dumpPipe.seconds)} s`);
  // The other MySQL bulk path, measured on the same copy: multi-row INSERT instead of LOAD DATA.
  const insertTarget = await freshTarget(servers, 'mysql', 'bench_my_insert', true, true);
  const mysqlInsert = await ours(data.mysqlSource, insertTarget, 'mysql', 'mysql', 'my-my-insert', { DMO_MYSQL_BULK: 'insert' });
  report.mysql_to_mysql_insert_rows_per_s = rate(mysqlInsert.seconds);
  report.load_data_vs_insert = round(mysqlInsert.seconds / mysqlOurs.seconds);
  console.log(`mysql→mysql through multi-row INSERT: ${round(mysqlInsert.seconds)} s (LOAD DATA ${round(mysqlOurs.seconds)} s)`);

  report.peak_rss_mb = round(Math.max(pgOurs.peakRssMb, mysqlPgOurs.peakRssMb, mysqlOurs.peakRssMb), 0);
  report.pg_to_pg_peak_rss_mb = round(pgOurs.peakRssMb, 0);
  report.mysql_to_pg_peak_rss_mb = round(mysqlPgOurs.peakRssMb, 0);
  report.mysql_to_mysql_peak_rss_mb = round(mysqlOurs.peakRssMb, 0);
  if (scaleRows > 0) {
    // Memory must not grow with the table: the same copy on a larger table.
    console.log(`generating ${scaleRows} rows for the memory check`);
    const big = await generate(servers, scaleRows, '_big');
    const bigTarget = await freshTarget(servers, 'postgres', 'bench_big_ours', true);
    const bigRun = await ours(big.mysqlSource, bigTarget, 'mysql', 'postgres', 'big');
    report.scale_rows = scaleRows;
    report.scale_peak_rss_mb = round(bigRun.peakRssMb, 0);
    report.scale_mysql_to_pg_rows_per_s = Math.round(scaleRows / bigRun.seconds);
    console.log(`mysql→pg at ${scaleRows} rows: ${round(bigRun.seconds)} s, peak RSS ${round(bigRun.peakRssMb, 0)} MB`);
  }
  console.log(JSON.stringify(report));
}

main().then(runExitCleanups, async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await runExitCleanups();
  process.exitCode = 1;
});
