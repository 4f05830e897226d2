// Issue 13, an adversary's own attempts with MariaDB as the source (PostgreSQL as the target),
// beyond the hostile-sql suite: stored functions the attacker created in the source beforehand and
// that a fragment calls (one that UPDATEs, one that turns the transaction read-write, one that
// writes a file with INTO OUTFILE as its invoker, one that takes a user lock), MariaDB's sequence
// spellings, denied functions spelled as quoted names, with spaces, in full-width letters, other
// sessions' statements through information_schema.innodb_trx, recursive CTEs, tokens the server
// reads differently from a JavaScript lexer (Unicode spaces, \N, \G), keys and dedupe on expressions,
// and the same database through other URL spellings. Each attempt is refused by the plan naming its
// field, or runs harmlessly; the source's fingerprint (and the directory its server can write) is
// unchanged after every one.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dmctl, errorOf } from '../support/dmctl.ts';
import { hostileCases, plantedEnvironment, sharedEnvironment, MARKERS, type HostileCase } from '../support/hostile.ts';
import { fingerprintChanges, sourceFingerprint } from '../support/source-fingerprint.ts';

const WHERE = /spec\.tables\[orders\]\.where: expected one SQL condition/;
const EXPRESSION = /spec\.tables\[orders\]\.columns\[note\]\.expression: expected one SQL scalar expression/;
const SOURCE_RULE = /spec\.validation\.rules\[hostile\]\.source: expected /;
/** The plan refused a fragment calling a function the attacker defined in the source. */
const DEFINED_FUNCTION = (field: RegExp): RegExp => new RegExp(`${field.source}.*function .* defined in the source database`);

/** A computed column's type is unknown to createMissingTables: the target table comes from a migration, so an expression that passes really runs. */
const TARGET_TABLE = { schema: { migrations: [{ version: '1', description: 'orders', up: 'CREATE TABLE c$N_orders (id bigint PRIMARY KEY, customer integer NOT NULL, note text, amount numeric(12,2), updated_at timestamp NOT NULL)' }] } };
const where = (title: string, text: string, expect: HostileCase['expect'] = { refused: WHERE }): HostileCase => ({ field: 'where', title, table: { where: text }, expect });
const expression = (title: string, text: string, expect: HostileCase['expect'] = { refused: EXPRESSION }): HostileCase => ({ field: 'expression', title, table: { columns: [{ name: 'note', expression: text }] }, spec: TARGET_TABLE, expect });
const sourceRule = (title: string, text: string, expect: HostileCase['expect'] = { refused: SOURCE_RULE }): HostileCase => ({
  field: 'rule source', title, spec: { validation: { rules: [{ name: 'hostile', source: text, expect: '1' }] } }, expect,
});

/**
 * What the attacker put in the source beforehand: stored functions a fragment can call by name
 * (DETERMINISTIC, which a server with binary logging asks of every function). $DIR is the directory the server can write.
 */
const PLANTED = [
  "CREATE FUNCTION a13_bump() RETURNS int DETERMINISTIC MODIFIES SQL DATA BEGIN UPDATE orders SET note = 'hijacked' WHERE id = 1; RETURN 1; END",
  'CREATE FUNCTION a13_read_write() RETURNS int DETERMINISTIC MODIFIES SQL DATA BEGIN SET SESSION tx_read_only = 0; DELETE FROM orders WHERE id = 2; RETURN 1; END',
  "CREATE FUNCTION a13_outfile() RETURNS int DETERMINISTIC SQL SECURITY INVOKER READS SQL DATA BEGIN DECLARE n int; SELECT 1 INTO OUTFILE '$DIR/outfile'; RETURN 1; END",
  "CREATE FUNCTION a13_lock() RETURNS int DETERMINISTIC NO SQL RETURN GET_LOCK('a13', 0)",
  'CREATE VIEW a13_orders_bumped AS SELECT o.*, a13_bump() AS bumped FROM orders o',
];

const CASES: HostileCase[] = [
  // Stored functions: whatever they do runs with the migration's account.
  where('calls a stored function that UPDATEs', 'a13_bump() = 1', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls a stored function that turns the transaction read-write and DELETEs', 'a13_read_write() = 1', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls an invoker\'s-rights function writing INTO OUTFILE', 'a13_outfile() = 1', { refused: DEFINED_FUNCTION(WHERE) }),
  where('calls a stored function holding a user lock, in upper case and qualified', 'A13_LOCK () = 1 OR `a13_lock`() = 1', { refused: DEFINED_FUNCTION(WHERE) }),
  expression('calls a stored function in an expression', 'CAST(a13_bump() AS CHAR)', { refused: DEFINED_FUNCTION(EXPRESSION) }),
  sourceRule('calls a stored function in a rule', 'SELECT a13_lock()', { refused: DEFINED_FUNCTION(SOURCE_RULE) }),
  { field: 'table name', title: 'a view whose rows call a writing function is no table to copy', tables: [{ name: 'a13_orders_bumped', target: 'bumped' }], expect: { refused: /table a13_orders_bumped does not exist on the source/ } },

  // MariaDB sequences and denied functions, spelled otherwise.
  where('s.nextval, the Oracle-mode spelling, is a column name outside Oracle mode', 's.nextval > 0', { refused: /the source refuses the copy's query .*Unknown column 's\.nextval'/ }),
  where('NEXT VALUE FOR across a line break', 'id > (SELECT NEXT\nVALUE FOR s)'),
  where('SLEEP as a backquoted name', '`SLEEP`(0.01) = 0'),
  where('BENCHMARK with a space before the parenthesis', 'BENCHMARK (10000000, MD5(note)) = 0'),
  where('SLEEP in full-width letters', '\uff33\uff2c\uff25\uff25\uff30(0.01) = 0'),
  where('RELEASE_ALL_LOCKS', 'RELEASE_ALL_LOCKS() >= 0'),
  where('IS_USED_LOCK inspects other sessions\' locks', "IS_USED_LOCK('a13') IS NULL"),
  where('a locking read with SKIP LOCKED', 'id IN (SELECT id FROM orders FOR UPDATE SKIP LOCKED)'),
  where('INTO OUTFILE after a no-break space', `id > 0\u00a0INTO\u00a0OUTFILE '$DIR/outfile'`),
  where('INTO after an ideographic space', `id > 0\u3000INTO @a13`),
  where('\\G, a client command, after the condition', 'id > 0 \\G'),
  where('a MariaDB executable comment', "id > 0 /*M!100100 INTO OUTFILE '$DIR/version-comment' */"),
  where('an optimizer hint comment', 'id > 0 /*+ MAX_EXECUTION_TIME(1) */'),
  where('UNION without a parenthesis', '1=1 UNION SELECT 1, 2, 3, 4, 5'),
  where('HAVING after the condition', 'id > 0 HAVING 1'),
  where('a user variable compared, never assigned (control)', '@a13 IS NULL', { ran: 0 }),
  where('a recursive CTE without end stops at the session bound', 'id IN (WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r)', { ran: 0 }),
  where('hex and _binary spell a quote as data (control)', "note <> x'27' AND note <> _binary 0x29", { ran: 0 }),

  expression('other sessions\' statements through innodb_trx', '(SELECT GROUP_CONCAT(trx_query) FROM information_schema.INNODB_TRX)'),
  expression('the account table through backquoted names', '(SELECT `authentication_string` FROM `mysql`.`user` LIMIT 1)'),
  expression('LOAD_FILE as a backquoted name', "`load_file`('/etc/hostname')"),
  expression('a locking read in a scalar subquery', '(SELECT note FROM orders LIMIT 1 LOCK IN SHARE MODE)'),

  sourceRule('HANDLER opens a table cursor', 'HANDLER orders OPEN'),
  sourceRule('TABLE … INTO OUTFILE', "TABLE orders INTO OUTFILE '$DIR/rule-outfile'"),
  sourceRule('EXECUTE IMMEDIATE runs SQL from text', "EXECUTE IMMEDIATE 'DELETE FROM orders'"),
  sourceRule('PROCEDURE ANALYSE', 'SELECT id FROM orders PROCEDURE ANALYSE()'),
  sourceRule('innodb_trx in a rule', 'SELECT COUNT(*) FROM information_schema.innodb_trx'),

  { field: 'key', title: 'a key on an expression', table: { key: ['LOWER(note)'] }, expect: { refused: /key column LOWER\(note\) is not a column/ } },
  { field: 'key', title: 'a key qualified with its table', table: { key: ['orders.id'] }, expect: { refused: /key column orders\.id is not a column/ } },
  { field: 'dedupe', title: 'dedupe by an expression', table: { dedupe: { by: ['customer DIV 2'], keep: 'first' } }, expect: { refused: /spec\.tables\[orders\]\.dedupe\.by\[0\]: .* is not a column of the source table/ } },
  { field: 'table name', title: 'innodb_trx as the table to copy', tables: [{ name: 'information_schema.INNODB_TRX', target: 'trx' }], expect: { refused: /\.name: expected an application table; found the credentials catalog information_schema\.INNODB_TRX/ } },
  { field: 'table name', title: 'a 65-character name', tables: [{ name: 'o'.repeat(65), target: 'long' }], expect: { refused: /\.name: expected a MySQL name of 1 to 64 characters; found a name of 65 characters/ } },
  { field: 'column name', title: 'a target column of 64 bytes, too long for the PostgreSQL target', table: { columns: [{ name: 'note', target: `n\`${'x'.repeat(62)}` }] }, expect: { refused: /columns\[note\]\.target: expected a PostgreSQL name of 1 to 63 bytes; found a name of 64 bytes/ } },
  { field: 'column name', title: 'a target column of 63 bytes with a backtick copies as that name (control)', table: { columns: [{ name: 'note', target: `n\`${'x'.repeat(61)}` }] }, expect: { ran: 0 } },
];

/** The shared environment with the attacker's objects in the source, fingerprinted after they were made. */
const environment = plantedEnvironment(sharedEnvironment('mysql', 'postgres'), PLANTED);

hostileCases('mysql', 'postgres', environment, CASES);

/** A manifest file copying orders from MariaDB to MariaDB (the source role accepted: root on purpose). */
async function writeManifest(spec: Record<string, unknown>): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'attack-13-'));
  const file = join(dir, 'migration.yaml');
  await writeFile(file, JSON.stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'attack-13', namespace: 'attack' },
    spec: { source: { engine: 'mysql', secretRef: { name: 'source' }, acceptWritableRole: true }, target: { engine: 'mysql', secretRef: { name: 'target' } }, schema: { createMissingTables: true }, ...spec },
  }));
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

// The same database through URL spellings: refused (or unreachable) before anything is written.
for (const [title, spell, reason] of [
  ['localhost for 127.0.0.1', (url: URL): void => { url.hostname = url.hostname === '127.0.0.1' ? 'localhost' : '127.0.0.1'; }, /same database/],
  ['the host in upper case', (url: URL): void => { url.hostname = url.hostname.toUpperCase(); }, /same database/],
  ['the mariadb: scheme', (url: URL): string => url.toString().replace(/^mysql:/, 'mariadb:'), /same database/],
  ['the database name in upper case', (url: URL): void => { url.pathname = url.pathname.toUpperCase(); }, /same database|Unknown database/],
  ['?database= naming the source again', (url: URL): void => { url.searchParams.set('database', url.pathname.slice(1)); }, /same database|parameter/],
] as const) {
  test.serial(`mysql: the source database as the target through ${title} is refused`, async (t) => {
    const env = await environment();
    const url = new URL(env.source);
    const spelled = spell(url) ?? url.toString();
    const manifest = await writeManifest({ tables: [{ name: 'orders', target: 'same_db_orders' }] });
    const run = await dmctl(['run', '-f', manifest.file], { DMO_SOURCE_URL: env.source, DMO_TARGET_URL: spelled }).finally(manifest.remove);
    const error = errorOf(run);
    t.not(run.code, 0, 'not run');
    t.regex(error, reason);
    t.false(error.includes(env.source), 'no URL in the message');
    t.deepEqual(fingerprintChanges(env.before, await sourceFingerprint(env.source, { files: MARKERS.map((name) => join(env.dir, name)) })), []);
  });
}
