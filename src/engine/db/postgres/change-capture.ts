// PostgreSQL change capture, its source side: a publication of exactly the migrated tables and a
// logical replication slot (pgoutput) named after the migration's uid, created before the initial
// copy so that the copy reads the slot's exported snapshot and the stream starts where that
// snapshot ends: nothing falls between the copy and the stream.
//
// Confinement: the publication and the slot are the only things this creates on the source, and
// dropCapture removes both. No user data is ever written there. What the source role needs:
// REPLICATION (or superuser) for the slot, CREATE on the database for the publication, and to own
// the migrated tables (PostgreSQL lets only a table's owner add it to a publication).
// A slot retains WAL until it is dropped (the disk fills): every ending must call dropCapture.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ReplicationClientConfig } from 'pg-logical-replication';
import { connectionOptions, sessionTimeouts } from '../connection-options.ts';
import type { CaptureSource, CapturedTableSpec } from '../change-capture.ts';
import type { SqlSession } from '../session.ts';
import { postgresAdapter } from './adapter.ts';
import { connectPostgres, postgresSession } from './connection.ts';
import { parseLsn, type Lsn } from './pgoutput.ts';

export interface CaptureNames {
  slot: string;
  publication: string;
}

/**
 * Slot and publication names of a migration: `dmo_` and its uid as a valid unquoted identifier
 * (lower-case letters, digits, _), cut so that with a hash of the whole uid (two long uids that
 * share a prefix stay apart) it fits PostgreSQL's 63 bytes.
 */
export function captureNames(uid: string): CaptureNames {
  const readable = uid.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(uid).digest('hex').slice(0, 12);
  const name = `dmo_${readable}_${hash}`;
  return { slot: name, publication: name };
}

const quoteIdent = (name: string): string => postgresAdapter.quoteIdent(name);
const quoteTable = (t: CapturedTableSpec): string => `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;

/** The replication connection's configuration: the engine's usual session settings, so values arrive as the copy reads them. */
export function replicationConfig(source: CaptureSource, applicationName: string): ReplicationClientConfig {
  const built = connectionOptions(source.url, {
    side: 'source', ...(source.tls ? { tls: source.tls } : {}), timeouts: sessionTimeouts(process.env), applicationName,
  });
  if (built.engine !== 'postgres') throw new Error('change capture through logical decoding needs a PostgreSQL source');
  // Output functions run in the walsender: its DateStyle, TimeZone and float digits decide the text sent.
  const options = postgresAdapter.sessionSetup({ readOnly: false }).startupOptions.join(' ');
  return { ...built.config, options, replication: 'database' };
}

/** Why each table cannot be captured (empty: all can): prerequisites read from the catalog, before anything is created. */
export async function captureProblems(client: pg.Client, tables: readonly CapturedTableSpec[]): Promise<string[]> {
  const problems: string[] = [];
  const settings = await client.query<{ wal_level: string; may_replicate: string; may_create: string }>(`SELECT pg_catalog.current_setting('wal_level') AS wal_level,
    (SELECT (r.rolreplication OR r.rolsuper)::pg_catalog.text FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) AS may_replicate,
    pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE')::pg_catalog.text AS may_create`);
  const row = settings.rows[0];
  if (row?.wal_level !== 'logical') problems.push(`the source server runs with wal_level=${row?.wal_level ?? '?'}; change capture needs wal_level=logical (a server restart)`);
  if (row?.may_replicate !== 'true') problems.push('the source role lacks the REPLICATION attribute (ALTER ROLE … REPLICATION) that a replication slot needs');
  if (row?.may_create !== 'true') problems.push('the source role may not CREATE in the source database (needed for the publication)');
  for (const table of tables) {
    const label = `table ${table.schema}.${table.name}`;
    const result = await client.query<{ identity: string; owned: string; identity_columns: string[] | string | null }>(`SELECT c.relreplident::pg_catalog.text AS identity,
        pg_catalog.pg_has_role(c.relowner, 'USAGE')::pg_catalog.text AS owned,
        pg_catalog.array_to_json(ARRAY(SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
          WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND (CASE WHEN c.relreplident OPERATOR(pg_catalog.=) 'i' THEN i.indisreplident ELSE i.indisprimary END)))::pg_catalog.text AS identity_columns
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relname OPERATOR(pg_catalog.=) $2 AND c.relkind OPERATOR(pg_catalog.=) 'r'`, [table.schema, table.name]);
    const info = result.rows[0];
    if (!info) {
      problems.push(`${label} does not exist on the source, or is not a plain table (partitioned tables publish their changes under each partition's name)`);
      continue;
    }
    if (info.owned !== 'true') problems.push(`${label}: the source role does not own it, and only a table's owner may add it to a publication`);
    const identityColumns = JSON.parse(typeof info.identity_columns === 'string' ? info.identity_columns : '[]') as string[];
    // Deletes and key updates carry only the replica identity's columns (FULL: the whole old row):
    // the target finds the row by the key, so the identity must hold it. Without one, PostgreSQL
    // refuses UPDATE and DELETE on a published table: publishing it would break the application.
    if (info.identity === 'n' || (info.identity !== 'f' && identityColumns.length === 0)) {
      problems.push(`${label} has no replica identity (no primary key, or REPLICA IDENTITY NOTHING): publishing it would make its UPDATEs and DELETEs fail on the source; `
        + 'give it a primary key, or REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns, or REPLICA IDENTITY FULL');
    } else if (info.identity !== 'f') {
      const missing = table.key.filter((column) => !identityColumns.includes(column));
      if (missing.length > 0) {
        problems.push(`${label}: its replica identity (${identityColumns.join(', ')}) lacks the key column(s) ${missing.join(', ')} the target matches rows by; `
          + 'deletes and key updates would not say which row: use REPLICA IDENTITY FULL or an identity index on that key');
      }
    }
  }
  return problems;
}

export class CaptureRefused extends Error {}

/** The slot is still streamed by another process. */
export class CaptureBusy extends Error {}

export interface PreparedCapture extends CaptureNames {
  /** Where the stream starts: every transaction committed after the snapshot. */
  consistentPoint: Lsn;
  /**
   * The snapshot the initial copy reads in: `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
   * SET TRANSACTION SNAPSHOT '<name>'` (first statement of the transaction). Valid until
   * releaseSnapshot(): call it once every copy session has imported it.
   */
  snapshotName: string;
  releaseSnapshot(): Promise<void>;
}

/** Server versions before 15 spell the slot's snapshot option without parentheses. */
function createSlotStatement(slot: string, serverVersion: number, temporary = false): string {
  const kind = temporary ? 'TEMPORARY LOGICAL' : 'LOGICAL';
  return serverVersion >= 150000
    ? `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} ${kind} pgoutput (SNAPSHOT 'export')`
    : `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} ${kind} pgoutput EXPORT_SNAPSHOT`;
}

/**
 * A snapshot of the source whose position is exact, for a validation while the capture runs: a
 * temporary slot's exported snapshot holds every transaction whose commit ends at or before its
 * consistent point, none after (how the initial copy's slot works too). A read-only session
 * imports it; the slot goes with its replication connection at once (temporary: also if killed).
 */
export async function openCutSnapshot(source: CaptureSource, uid: string, signal?: AbortSignal): Promise<{ lsn: Lsn; session: SqlSession }> {
  const replication = new pg.Client(replicationConfig(source, 'datamigration validate'));
  replication.on('error', () => undefined);
  await replication.connect();
  const walsender = (await replication.query<{ pid: string }>('SELECT pg_catalog.pg_backend_pid()::pg_catalog.text AS pid')).rows[0]?.pid;
  // Given up (the slot waits for a long transaction): the wait is cancelled (a walsender waiting
  // for it would not notice its client leave), then the connection goes, and the slot with it.
  const end = (): void => {
    void cancelBackend(source, walsender).finally(() => replication.end().catch(() => undefined));
  };
  signal?.addEventListener('abort', end, { once: true });
  try {
    const version = await replication.query<{ v: string }>("SELECT pg_catalog.current_setting('server_version_num') AS v");
    const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(
      // A name of its own each time: a slot of an earlier attempt may linger until its wait ends.
      createSlotStatement(`${captureNames(uid).slot}_v${randomBytes(2).toString('hex')}`, Number(version.rows[0]?.v ?? '0'), true));
    const row = created.rows[0];
    if (!row?.snapshot_name) throw new Error('the server created the slot without exporting a snapshot');
    const client = await connectPostgres(source.url, { readOnly: true, side: 'source', applicationName: 'datamigration validate', ...(source.tls ? { tls: source.tls } : {}) });
    const session = postgresSession(client, { readOnly: true, side: 'source' });
    try {
      await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await session.query(`SET TRANSACTION SNAPSHOT ${postgresAdapter.quoteLiteral(row.snapshot_name)}`);
    } catch (error) {
      await session.close().catch(() => undefined);
      throw error;
    }
    return { lsn: parseLsn(row.consistent_point), session };
  } finally {
    signal?.removeEventListener('abort', end);
    await replication.end().catch(() => undefined);
  }
}

/**
 * Checks the prerequisites, creates (or sets the tables of) the publication, then the slot with an
 * exported snapshot: the publication first, since pgoutput reads it as of each change's position.
 * Throws CaptureRefused naming every unmet prerequisite, before creating anything; throws when the
 * slot exists already (a resumed migration streams from it and needs no new copy snapshot).
 * After any other failure, dropCapture (idempotent) removes a publication it may have created.
 */
export async function prepareCapture(source: CaptureSource, uid: string, tables: readonly CapturedTableSpec[]): Promise<PreparedCapture> {
  if (tables.length === 0) throw new CaptureRefused('no tables to capture');
  const names = captureNames(uid);
  // Not a read-only session: CREATE PUBLICATION is DDL. It is the only statement here that is not a catalog read.
  const client = await connectPostgres(source.url, { readOnly: false, side: 'source', applicationName: 'datamigration-capture', ...(source.tls ? { tls: source.tls } : {}) });
  let versionNumber: number;
  try {
    const problems = await captureProblems(client, tables);
    if (problems.length > 0) throw new CaptureRefused(`change capture cannot start: ${problems.join('; ')}`);
    const slots = await client.query('SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1', [names.slot]);
    if (slots.rows.length > 0) throw new CaptureRefused(`replication slot ${names.slot} exists already: stream from it, or drop the capture to start over`);
    const list = tables.map(quoteTable).join(', ');
    const existing = await client.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) $1', [names.publication]);
    await client.query(existing.rows.length > 0
      ? `ALTER PUBLICATION ${quoteIdent(names.publication)} SET TABLE ${list}`
      : `CREATE PUBLICATION ${quoteIdent(names.publication)} FOR TABLE ${list}`);
    const version = await client.query<{ v: string }>("SELECT pg_catalog.current_setting('server_version_num') AS v");
    versionNumber = Number(version.rows[0]?.v ?? '0');
  } finally {
    await client.end().catch(() => undefined);
  }
  // The snapshot lives as long as this connection runs no other command: it stays open, idle, until released.
  const replication = new pg.Client(replicationConfig(source, 'datamigration-capture'));
  replication.on('error', () => undefined);
  await replication.connect();
  try {
    // Waits for the transactions running now to end (the consistent point follows them).
    const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(createSlotStatement(names.slot, versionNumber));
    const row = created.rows[0];
    if (!row?.snapshot_name) throw new Error('the server created the slot without exporting a snapshot');
    let released = false;
    return {
      ...names,
      consistentPoint: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      async releaseSnapshot() {
        if (released) return;
        released = true;
        await replication.end().catch(() => undefined);
      },
    };
  } catch (error) {
    await replication.end().catch(() => undefined);
    throw error;
  }
}

/** Cancels what a backend of ours is running (its own role may); best effort. */
async function cancelBackend(source: CaptureSource, pid: string | undefined): Promise<void> {
  if (pid === undefined || !/^\d+$/.test(pid)) return;
  const client = await connectPostgres(source.url, { readOnly: true, side: 'source', applicationName: 'datamigration validate', ...(source.tls ? { tls: source.tls } : {}) }).catch(() => undefined);
  if (!client) return;
  await client.query('SELECT pg_catalog.pg_cancel_backend($1::pg_catalog.int4)', [pid]).catch(() => undefined);
  await client.end().catch(() => undefined);
}

/**
 * A transaction holding a transaction id that has been open on the server for at least `forMs`
 * (its id in both of two reads of the server's locks): a new slot would wait for it to end. Every
 * such transaction holds the lock on its own id, and pg_locks shows every role's (the sessions of
 * other roles are hidden from pg_stat_activity; the snapshot's xmin misses the newest id).
 */
export async function longTransactionOpen(client: pg.Client, forMs: number): Promise<string | undefined> {
  const running = async (): Promise<Set<string>> => new Set((await client.query<{ xid: string }>(
    "SELECT transactionid::pg_catalog.text AS xid FROM pg_catalog.pg_locks WHERE locktype OPERATOR(pg_catalog.=) 'transactionid' AND mode OPERATOR(pg_catalog.=) 'ExclusiveLock' AND granted",
  )).rows.map((row) => row.xid));
  const before = await running();
  if (before.size === 0) return undefined;
  await new Promise((resolve) => setTimeout(resolve, forMs));
  const after = await running();
  return [...before].find((xid) => after.has(xid));
}

/** Starts a copy transaction on `client` (a source session) that reads the capture's snapshot. */
export async function beginSnapshotRead(client: pg.Client, snapshotName: string): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SET TRANSACTION SNAPSHOT ${postgresAdapter.quoteLiteral(snapshotName)}`);
}

export interface DropOutcome {
  slotDropped: boolean;
  publicationDropped: boolean;
  /** What could not be done: report it (a slot left behind retains WAL without bound). */
  problems: string[];
}

/**
 * Drops the slot and the publication, whichever exist (calling it twice is harmless). A slot still
 * streamed by a walsender of ours (a killed applier's connection the server has not noticed yet)
 * is ended first: the slot is this migration's, nobody else streams it.
 */
export async function dropCapture(source: CaptureSource, uid: string, options: { waitMs?: number } = {}): Promise<DropOutcome> {
  const names = captureNames(uid);
  const outcome: DropOutcome = { slotDropped: false, publicationDropped: false, problems: [] };
  const client = await connectPostgres(source.url, { readOnly: false, side: 'source', applicationName: 'datamigration-capture', ...(source.tls ? { tls: source.tls } : {}) });
  try {
    // A SourceReadOnly fence leaves the database read-only after the switch: the capture is ours to drop all the same.
    await client.query('SET default_transaction_read_only = off');
    const deadline = Date.now() + (options.waitMs ?? 10_000);
    for (;;) {
      const slot = await client.query<{ active_pid: string | null }>('SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1', [names.slot]);
      const row = slot.rows[0];
      if (!row) break;
      try {
        if (row.active_pid !== null) await client.query('SELECT pg_catalog.pg_terminate_backend($1::pg_catalog.int4)', [row.active_pid]);
        await client.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [names.slot]);
        outcome.slotDropped = true;
        break;
      } catch (error) {
        const code = (error as { code?: string }).code;
        // 55006: still active (the terminated walsender has not ended yet); 42704: gone meanwhile.
        if (code === '42704') break;
        if (code !== '55006' || Date.now() > deadline) {
          outcome.problems.push(`replication slot ${names.slot} could not be dropped: ${(error as Error).message}; it retains WAL on the source until dropped (SELECT pg_drop_replication_slot('${names.slot}'))`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    try {
      const publication = await client.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) $1', [names.publication]);
      if (publication.rows.length > 0) {
        await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`);
        outcome.publicationDropped = true;
      }
    } catch (error) {
      outcome.problems.push(`publication ${names.publication} could not be dropped: ${(error as Error).message}`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return outcome;
}

export interface SlotState {
  /** What the applier acknowledged (confirmed_flush_lsn). */
  confirmedLsn: Lsn | undefined;
  /** The server's current WAL position (see currentLsn). */
  currentLsn: Lsn;
  /** Whether a walsender streams it now. */
  active: boolean;
}

/** The slot as the server sees it; undefined when it does not exist. */
export async function slotState(client: pg.Client, uid: string): Promise<SlotState | undefined> {
  const result = await client.query<{ confirmed: string | null; current: string; active: string }>(`SELECT s.confirmed_flush_lsn::pg_catalog.text AS confirmed,
    pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text AS current, s.active::pg_catalog.text AS active
    FROM pg_catalog.pg_replication_slots s WHERE s.slot_name OPERATOR(pg_catalog.=) $1`, [captureNames(uid).slot]);
  const row = result.rows[0];
  if (!row) return undefined;
  return { confirmedLsn: row.confirmed ? parseLsn(row.confirmed) : undefined, currentLsn: parseLsn(row.current), active: row.active === 'true' };
}

/**
 * The source server's current WAL position: where the next record goes (pg_current_wal_insert_lsn),
 * not what is written (pg_current_wal_lsn). A commit with synchronous_commit off is acknowledged to
 * its client once inserted, before it is written: catching up to the written position would miss it.
 */
export async function currentLsn(client: pg.Client): Promise<Lsn> {
  const result = await client.query<{ lsn: string }>('SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text AS lsn');
  return parseLsn(result.rows[0]?.lsn ?? '0/0');
}
