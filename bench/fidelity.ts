// `npm run bench:fidelity`: schema fidelity against pgloader on a real public MySQL schema. The
// vendored Chinook (test/fixtures/chinook/) is migrated MySQL → PostgreSQL once by pgloader (its
// defaults: the command line with two URLs) and once by `dmctl run` (spec.tables omitted), and
// the targets are read from PostgreSQL's catalogs. Chinook has no defaults, identities, views,
// triggers or routines, so the same run is repeated on "Chinook + extras": Chinook with a few of
// those added (EXTRAS below), the rows that would otherwise compare nothing. Prints one table per
// source, then one JSON line with the counts.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { loadChinook } from './support/chinook.ts';
import { schemaShape, type SchemaShape, type TableShape } from './support/schema-snapshot.ts';
import { benchServers, mysql, psql, quote, runExitCleanups, timeCommand, withDatabase } from './support.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** Added to Chinook for the second run: what Chinook lacks and a migration can lose. */
const EXTRAS = [
  'ALTER TABLE Invoice MODIFY InvoiceId INT NOT NULL AUTO_INCREMENT',
  'ALTER TABLE Playlist MODIFY PlaylistId INT NOT NULL AUTO_INCREMENT',
  'ALTER TABLE InvoiceLine MODIFY Quantity INT NOT NULL DEFAULT 1',
  'ALTER TABLE Track MODIFY UnitPrice NUMERIC(10,2) NOT NULL DEFAULT 0.99',
  'ALTER TABLE Customer MODIFY Country NVARCHAR(40) DEFAULT \'USA\'',
  // Issue 15's first defect: one index name on two tables (MySQL names them per table).
  'CREATE INDEX IX_Name ON Artist (Name)', 'CREATE INDEX IX_Name ON Genre (Name)',
  'CREATE UNIQUE INDEX UK_MediaTypeName ON MediaType (Name)',
  'CREATE VIEW TrackSales AS SELECT t.TrackId, SUM(l.Quantity) AS sold FROM Track t JOIN InvoiceLine l ON l.TrackId = t.TrackId GROUP BY t.TrackId',
  'CREATE TRIGGER InvoiceLine_qty BEFORE INSERT ON InvoiceLine FOR EACH ROW SET NEW.Quantity = GREATEST(NEW.Quantity, 1)',
  'CREATE FUNCTION track_minutes(ms INT) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN ms / 60000',
];

/** Names as the two tools leave them (pgloader downcases: InvoiceLineId → invoicelineid). */
const key = (name: string): string => name.toLowerCase().replaceAll('_', '');

interface Outcome { shape: SchemaShape; said: string }

async function viaPgloader(source: string, target: string, database: string): Promise<Outcome> {
  const run = await timeCommand(`pgloader --no-ssl-cert-verification ${quote(source)} ${quote(target.replace(/^postgres:/, 'postgresql:'))} 2>&1`);
  // pgloader creates the tables in a schema named after the MySQL database, and DATETIME as
  // timestamptz: read on a UTC server its text ends in +00, the same instant as the source's.
  const utc = (value: string): string => value.replace(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\+00$/, '$1');
  return { shape: await schemaShape(target, { schema: database, text: utc }), said: run.stdout };
}

async function viaDmctl(source: string, target: string): Promise<Outcome> {
  const manifest = join(await mkdtemp(join(tmpdir(), 'dmo-fidelity-')), 'dm.yaml');
  await writeFile(manifest, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: fidelity}
spec:
  source: {engine: mysql, secretRef: {name: source, key: url}, acceptWritableRole: true}
  target: {engine: postgres, secretRef: {name: target, key: url}}
  schema: {createMissingTables: true}
`);
  const env = { DMO_SOURCE_URL: source, DMO_TARGET_URL: target };
  const plan = await timeCommand(`${quote(process.execPath)} ${ENGINE_NODE_FLAGS.join(' ')} ${quote(cli)} plan -f ${quote(manifest)} --json`, { env });
  await timeCommand(`${quote(process.execPath)} ${ENGINE_NODE_FLAGS.join(' ')} ${quote(cli)} run -f ${quote(manifest)} --json`, { env });
  const warnings = plan.stdout.split('\n').filter((l) => l.includes('"event":"warning"')).map((l) => String((JSON.parse(l) as { message?: string }).message));
  return { shape: await schemaShape(target), said: warnings.join('\n') };
}

interface Row { label: string; pgloader: string; dmctl: string; counts: { pgloader: number; dmctl: number; of: number } }

/** The table's rows: how much of the source each target has. */
function compare(source: SchemaShape, pgloader: Outcome, dmctl: Outcome): Row[] {
  const rows: Row[] = [];
  const tableOf = (shape: SchemaShape, name: string): TableShape | undefined => shape.tables.find((t) => key(t.name) === key(name));
  const cols = (columns: readonly string[]): string => columns.map(key).join(',');
  const count = (label: string, items: (t: TableShape) => string[], detail: (found: number, of: number, target: Outcome) => string = (f, o) => `${String(f)}/${String(o)}`): void => {
    const wanted = source.tables.flatMap((t) => items(t).map((i) => ({ table: t.name, item: i })));
    const found = (target: Outcome): number => wanted.filter((w) => { const t = tableOf(target.shape, w.table); return t !== undefined && items(t).includes(w.item); }).length;
    const [p, d] = [found(pgloader), found(dmctl)];
    rows.push({ label, pgloader: detail(p, wanted.length, pgloader), dmctl: detail(d, wanted.length, dmctl), counts: { pgloader: p, dmctl: d, of: wanted.length } });
  };
  count('tables (rows and checksum equal)', (t) => [`${key(t.name)} ${String(t.rows)} ${t.textChecksum}`]);
  count('primary keys', (t) => (t.primaryKey.length > 0 ? [cols(t.primaryKey)] : []));
  count('indexes (columns, unique)', (t) => t.indexes.map((i) => `${i.unique ? 'u' : ''}(${cols(i.columns)})`));
  count('foreign keys (columns, rules)', (t) => t.foreignKeys.map((f) => `(${cols(f.columns)})→${key(f.references)}(${cols(f.referencedColumns)}) ${f.onDelete}/${f.onUpdate}`));
  count('NOT NULL columns', (t) => t.columns.filter((c) => !c.nullable).map((c) => key(c.name)));
  // A default counts when the target has one on that column (its spelling differs by engine: 0.99 vs 0.99::numeric).
  count('defaults', (t) => t.columns.filter((c) => c.default !== null).map((c) => key(c.name)));
  const identities = source.tables.filter((t) => t.identity).map((t) => t.name);
  const restarts = (target: Outcome): { ok: number; text: string } => {
    const parts = identities.map((name) => {
      const id = tableOf(target.shape, name)?.identity;
      return { ok: id !== undefined && id.next !== null && id.max !== null && id.next > id.max, text: id ? `${name} next ${String(id.next)} (max ${String(id.max)})` : `${name}: no identity` };
    });
    return { ok: parts.filter((p) => p.ok).length, text: parts.length === 0 ? '-' : parts.map((p) => p.text).join('; ') };
  };
  const [rp, rd] = [restarts(pgloader), restarts(dmctl)];
  rows.push({ label: 'identity restart (next value vs max id)', pgloader: `${String(rp.ok)}/${String(identities.length)}: ${rp.text}`, dmctl: `${String(rd.ok)}/${String(identities.length)}: ${rd.text}`, counts: { pgloader: rp.ok, dmctl: rd.ok, of: identities.length } });
  // Case-insensitive collations: carried when the target column compares the same way (citext or a nondeterministic collation), else named or not.
  const insensitive = source.tables.flatMap((t) => t.columns.filter((c) => c.collation !== null && /_ci$/.test(c.collation)).map((c) => ({ table: t.name, column: c.name })));
  const collations = (target: Outcome): { named: number; text: string } => {
    const carried = insensitive.filter((w) => { const c = tableOf(target.shape, w.table)?.columns.find((x) => key(x.name) === key(w.column)); return c !== undefined && (c.type === 'citext' || (c.collation !== null && c.collation !== 'C')); }).length;
    const named = insensitive.filter((w) => key(target.said).includes(`${key(w.table)}.${key(w.column)}`)).length;
    return { named: Math.max(carried, named), text: `${String(carried)} carried, ${String(named)} named, ${String(insensitive.length - Math.max(carried, named))} lost in silence` };
  };
  const [cp, cd] = [collations(pgloader), collations(dmctl)];
  rows.push({ label: `case-insensitive collations (${String(insensitive.length)} columns)`, pgloader: cp.text, dmctl: cd.text, counts: { pgloader: cp.named, dmctl: cd.named, of: insensitive.length } });
  for (const kind of ['views', 'triggers', 'routines'] as const) {
    const objects = source[kind];
    const said = (target: Outcome): { named: number; text: string } => {
      const carried = objects.filter((o) => target.shape[kind].some((x) => key(x) === key(o)));
      const named = objects.filter((o) => !carried.includes(o) && key(target.said).includes(key(o.split('.').pop() ?? o)));
      const silent = objects.length - carried.length - named.length;
      return { named: carried.length + named.length, text: objects.length === 0 ? '-' : `${String(carried.length)} carried, ${String(named.length)} named as not carried, ${String(silent)} lost in silence` };
    };
    const [p, d] = [said(pgloader), said(dmctl)];
    rows.push({ label: `${kind} (${objects.join(', ') || 'none'})`, pgloader: p.text, dmctl: d.text, counts: { pgloader: p.named, dmctl: d.named, of: objects.length } });
  }
  return rows;
}

function print(title: string, rows: Row[]): void {
  const width = Math.max(...rows.map((r) => r.label.length));
  const col = Math.max(8, ...rows.map((r) => r.pgloader.length));
  console.log(`\n${title}\n${'what'.padEnd(width)} | ${'pgloader'.padEnd(col)} | dmctl`);
  console.log(`${'-'.repeat(width)}-|-${'-'.repeat(col)}-|-${'-'.repeat(20)}`);
  for (const r of rows) console.log(`${r.label.padEnd(width)} | ${r.pgloader.padEnd(col)} | ${r.dmctl}${r.counts.dmctl < r.counts.pgloader ? '   <-- LESS FAITHFUL' : ''}`);
}

async function main(): Promise<void> {
  const servers = await benchServers();
  const report: Record<string, Record<string, { pgloader: number; dmctl: number; of: number }>> = {};
  for (const [label, database, extras] of [['Chinook', 'fid_chinook', []], ['Chinook + extras', 'fid_chinook_x', EXTRAS]] as const) {
    await mysql(servers.mysqlUrl, `DROP DATABASE IF EXISTS ${database}; CREATE DATABASE ${database}`);
    const source = withDatabase(servers.mysqlUrl, database);
    await loadChinook('mysql', source);
    if (extras.length > 0) await mysql(source, extras.join(';\n'));
    const targets: string[] = [];
    for (const tool of ['pgloader', 'ours']) {
      const name = `${database}_${tool}`;
      await psql(servers.pgUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await psql(servers.pgUrl, `CREATE DATABASE ${name}`);
      targets.push(withDatabase(servers.pgUrl, name));
    }
    const [pgloaderTarget = '', oursTarget = ''] = targets;
    const rows = compare(await schemaShape(source), await viaPgloader(source, pgloaderTarget, database), await viaDmctl(source, oursTarget));
    print(`${label}: MySQL (MariaDB) → PostgreSQL`, rows);
    report[label] = Object.fromEntries(rows.map((r) => [r.label.replace(/ \(.*$/, ''), r.counts]));
  }
  console.log(JSON.stringify(report));
}

main().then(runExitCleanups, async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await runExitCleanups();
  process.exitCode = 1;
});
