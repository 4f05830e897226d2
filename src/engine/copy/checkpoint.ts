// Copy checkpoints live in the target database, one row per (migration uid, table, shard), and are
// written in the same transaction as the batch of rows they describe: after a crash the target
// holds exactly the batches whose checkpoint it holds, so a resumed copy neither loses nor
// repeats a row. They belong to the DataMigration's uid (migrations/ownership.ts), never to its
// name: a migration re-created under the same name does not find them "done".
import type { DatabaseAdapter } from '../db/adapter.ts';
import { tableExists } from '../db/catalog.ts';
import { createIfAbsent } from '../migrations/create-if-absent.ts';
import type { SqlRow, SqlSession, SqlValue } from '../db/session.ts';

export const CHECKPOINT_TABLE = 'dataops_copy_checkpoint';

/** A key value as stored: text, or bytes (hex) for binary keys. */
export type KeyValue = string | Buffer;

export interface CheckpointId {
  /** The owner: the migration's uid (EngineSettings.uid), or uid#sync for a Trickle round. */
  migration: string;
  table: string;
  shard: number;
}

export interface Checkpoint {
  /** Key of the last row committed; null before the first batch. */
  lastKey: KeyValue[] | null;
  rowsCopied: number;
  done: boolean;
  /** Shard boundaries the copy started with; a resume must use the same ones. */
  boundaries: string[];
}

export function encodeKey(key: readonly KeyValue[]): string {
  return JSON.stringify(key.map((value) => (typeof value === 'string' ? value : { hex: value.toString('hex') })));
}

export function decodeKey(text: string): KeyValue[] {
  const parsed = JSON.parse(text) as (string | { hex: string })[];
  return parsed.map((value) => (typeof value === 'string' ? value : Buffer.from(value.hex, 'hex')));
}

export function createCheckpointTableSql(adapter: DatabaseAdapter): string {
  const table = adapter.quoteIdent(CHECKPOINT_TABLE);
  const { keyText, longText, timestamp, tableOptions } = adapter.bookkeeping;
  return `CREATE TABLE IF NOT EXISTS ${table} (migration_uid ${keyText(255)} NOT NULL, table_name ${keyText(255)} NOT NULL, shard integer NOT NULL, `
    + `last_key ${longText}, rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, boundaries ${longText} NOT NULL, `
    + `updated_at ${timestamp} NOT NULL, PRIMARY KEY (migration_uid, table_name, shard))${tableOptions}`;
}

export async function ensureCheckpointTable(session: SqlSession): Promise<void> {
  await createIfAbsent(session, createCheckpointTableSql(session.dialect));
}

function asText(value: SqlValue | undefined): string {
  return value === null || value === undefined ? '' : value.toString();
}

const isTrue = (value: SqlValue | undefined): boolean => ['t', 'true', '1'].includes(asText(value));

function checkpointOf(row: SqlRow): Checkpoint {
  return {
    lastKey: row.last_key === null || row.last_key === undefined ? null : decodeKey(asText(row.last_key)),
    rowsCopied: Number(asText(row.rows_copied)),
    done: isTrue(row.done),
    boundaries: JSON.parse(asText(row.boundaries)) as string[],
  };
}

export async function readCheckpoint(session: SqlSession, id: CheckpointId): Promise<Checkpoint | undefined> {
  const d = session.dialect;
  const rows = await session.query(
    `SELECT last_key, rows_copied, done, boundaries FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)} AND table_name = ${d.placeholder(2)} AND shard = ${d.placeholder(3)}`,
    [id.migration, id.table, id.shard],
  );
  return rows[0] ? checkpointOf(rows[0]) : undefined;
}

/** The split a table's copy recorded (every shard row holds it), to resume with; undefined before one. */
export async function readRecordedSplit(session: SqlSession, migration: string, table: string): Promise<string[] | undefined> {
  const d = session.dialect;
  const [row] = await session.query(
    `SELECT boundaries FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)} AND table_name = ${d.placeholder(2)} ORDER BY shard LIMIT 1`,
    [migration, table],
  );
  return row ? JSON.parse(asText(row.boundaries)) as string[] : undefined;
}

export interface ShardState {
  table: string;
  shard: number;
  rowsCopied: number;
  done: boolean;
}

/** Every shard of a migration, without keys and boundaries: what polling for other pods needs. */
export async function readShardStates(session: SqlSession, migration: string): Promise<ShardState[]> {
  const d = session.dialect;
  const rows = await session.query(
    `SELECT table_name, shard, rows_copied, done FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)}`,
    [migration],
  );
  return rows.map((row) => ({ table: asText(row.table_name), shard: Number(asText(row.shard)), rowsCopied: Number(asText(row.rows_copied)), done: isTrue(row.done) }));
}

/** Records progress; call inside the transaction that wrote the batch. */
export async function writeCheckpoint(session: SqlSession, id: CheckpointId, checkpoint: Checkpoint): Promise<void> {
  await upsertCheckpoint(session, id, checkpoint, true);
}

/** Records a checkpoint unless the shard has one already (the first writer of a split wins). */
export async function insertCheckpointIfAbsent(session: SqlSession, id: CheckpointId, checkpoint: Checkpoint): Promise<void> {
  await upsertCheckpoint(session, id, checkpoint, false);
}

// An overwrite leaves the boundaries as the first writer recorded them: they never change after the
// split (copyShard refuses a mismatch), and they are the largest part of the row.
async function upsertCheckpoint(session: SqlSession, id: CheckpointId, checkpoint: Checkpoint, overwrite: boolean): Promise<void> {
  const d = session.dialect;
  const values = [id.migration, id.table, id.shard, checkpoint.lastKey ? encodeKey(checkpoint.lastKey) : null,
    checkpoint.rowsCopied, checkpoint.done, JSON.stringify(checkpoint.boundaries)];
  const placeholders = values.map((_, i) => d.placeholder(i + 1)).join(', ');
  const insert = `INSERT INTO ${d.quoteIdent(CHECKPOINT_TABLE)} (migration_uid, table_name, shard, last_key, rows_copied, done, boundaries, updated_at) VALUES (${placeholders}, ${d.bookkeeping.utcNow})`;
  const conflict = d.onConflictSql(['migration_uid', 'table_name', 'shard'], overwrite ? ['last_key', 'rows_copied', 'done', 'updated_at'] : []);
  await session.query(insert + conflict, values);
}

/** The owner of a change capture's rows (its position, lag and fence record): one name, so that every clean-up finds them. */
export const captureOwner = (uid: string): string => `${uid}#cdc`;

/**
 * A row of the capture's that holds a JSON document instead of a copy's progress (its lag, its
 * fence record), in the checkpoint table so that the same clean-ups forget it.
 */
export async function writeCheckpointJson(session: SqlSession, id: CheckpointId, value: unknown, rowsCopied = 0): Promise<void> {
  await writeCheckpoint(session, id, { lastKey: [JSON.stringify(value)], rowsCopied, done: false, boundaries: [] });
}

/** The JSON document of such a row: undefined when there is none, or it is not a JSON object. */
export async function readCheckpointJson(session: SqlSession, id: CheckpointId): Promise<Record<string, unknown> | undefined> {
  const text = (await readCheckpoint(session, id))?.lastKey?.[0];
  if (typeof text !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

export async function deleteCheckpoint(session: SqlSession, id: CheckpointId): Promise<void> {
  const d = session.dialect;
  await session.query(`DELETE FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)} AND table_name = ${d.placeholder(2)} AND shard = ${d.placeholder(3)}`,
    [id.migration, id.table, id.shard]);
}

/** Forgets a migration's checkpoints (a fresh run, or a rollback that empties the tables). */
export async function clearCheckpoints(session: SqlSession, migration: string): Promise<void> {
  const d = session.dialect;
  await session.query(`DELETE FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)}`, [migration]);
}

/**
 * Rows committed so far per target table for a migration (empty before the first batch), by its
 * uid; in a checkpoint table not yet upgraded to uids (the operator reads progress before an
 * engine step of this version has run), by its namespace/name.
 */
export async function copiedRowsByTable(session: SqlSession, owner: { uid: string; name: string }): Promise<Map<string, { rowsCopied: number; done: boolean }>> {
  const d = session.dialect;
  if (!await tableExists(session, CHECKPOINT_TABLE)) return new Map(); // nothing copied yet
  const info = await d.introspector.table(session, CHECKPOINT_TABLE);
  const [column, value] = info?.columns.some((c) => c.name === 'migration_uid') ? ['migration_uid', owner.uid] : ['migration', owner.name];
  const rows = await session.query(
    `SELECT table_name, SUM(rows_copied) AS rows_copied, MIN(CASE WHEN done THEN 1 ELSE 0 END) AS done FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE ${column} = ${d.placeholder(1)} GROUP BY table_name`,
    [value],
  );
  return new Map(rows.map((r) => [asText(r.table_name), { rowsCopied: Number(asText(r.rows_copied)), done: asText(r.done) === '1' }]));
}
