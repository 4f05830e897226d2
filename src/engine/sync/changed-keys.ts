// What a change capture records on the target about its validation while it syncs (validate-at-cut.ts):
// - the cut record: the source position a validation compared the target at, and whether it
//   passed (state 'validating' until it did);
// - from that cut on, the key of every row a follower changed, written in the transaction that
//   applied the change: behind the write fence the catch-up compares those rows, not every row
//   (the rest was equal at the cut and no change touched it since).
// Both are rows of the checkpoint table under the capture's owner, so every clean-up that forgets
// the capture's rows (rollback, retire, a fresh start) forgets them too.
import { createHash } from 'node:crypto';
import { CHECKPOINT_TABLE, captureOwner, decodeKey, encodeKey, readCheckpointJson, writeCheckpointJson, type CheckpointId, type KeyValue } from '../copy/checkpoint.ts';
import type { SqlSession } from '../db/session.ts';
import type { TouchedKey } from './cdc-apply.ts';

export interface CutRecord {
  /** The source position the target was compared at (the capture's own notation). */
  position: string;
  state: 'validating' | 'passed';
  /** When the cut was taken (ISO). */
  at: string;
  /** The validation's summary once it passed. */
  summary?: string;
}

/** Changed-key rows are named `key:` and a hash of the table and the key: one row per row changed, however often. */
const KEY_PREFIX = 'key:';

const cutRecordId = (uid: string): CheckpointId => ({ migration: captureOwner(uid), table: 'cut', shard: 0 });

export async function readCutRecord(session: SqlSession, uid: string): Promise<CutRecord | undefined> {
  const json = await readCheckpointJson(session, cutRecordId(uid));
  if (typeof json?.position !== 'string' || (json.state !== 'validating' && json.state !== 'passed') || typeof json.at !== 'string') return undefined;
  return { position: json.position, state: json.state, at: json.at, ...(typeof json.summary === 'string' ? { summary: json.summary } : {}) };
}

export async function writeCutRecord(session: SqlSession, uid: string, record: CutRecord): Promise<void> {
  await writeCheckpointJson(session, cutRecordId(uid), record);
}

/** A new cut: the keys changed since the last one no longer matter. */
export async function forgetChangedKeys(session: SqlSession, uid: string): Promise<void> {
  const d = session.dialect;
  await session.query(`DELETE FROM ${d.quoteIdent(CHECKPOINT_TABLE)} WHERE migration_uid = ${d.placeholder(1)} AND table_name LIKE ${d.placeholder(2)}`,
    [captureOwner(uid), `${KEY_PREFIX}%`]);
}

const keyRowName = (key: TouchedKey): string => KEY_PREFIX + createHash('sha256').update(JSON.stringify([key.targetTable, encodeKey(key.target)])).digest('hex');

/** Rows per INSERT: well under both engines' limits on placeholders and packet size for ordinary keys. */
const KEYS_PER_STATEMENT = 200;

/** Records changed keys (a key recorded already stays as it is); call inside the transaction that applied the changes. */
export async function recordChangedKeys(session: SqlSession, uid: string, keys: Iterable<TouchedKey>): Promise<void> {
  const d = session.dialect;
  const owner = captureOwner(uid);
  const rows = [...keys];
  for (let i = 0; i < rows.length; i += KEYS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + KEYS_PER_STATEMENT);
    const values: unknown[] = [];
    const tuples = chunk.map((key) => {
      const base = values.length;
      values.push(owner, keyRowName(key), encodeKey([JSON.stringify([key.targetTable, encodeKey(key.source), encodeKey(key.target)])]));
      return `(${d.placeholder(base + 1)}, ${d.placeholder(base + 2)}, 0, ${d.placeholder(base + 3)}, 0, false, '[]', ${d.bookkeeping.utcNow})`;
    });
    await session.query(`INSERT INTO ${d.quoteIdent(CHECKPOINT_TABLE)} (migration_uid, table_name, shard, last_key, rows_copied, done, boundaries, updated_at) VALUES ${tuples.join(', ')}`
      + d.onConflictSql(['migration_uid', 'table_name', 'shard'], []), values);
  }
}

/** The key of `key` in recordChangedKeys' map of one open transaction's keys. */
export const changedKeyId = (key: TouchedKey): string => JSON.stringify([key.targetTable, encodeKey(key.target)]);

export interface ChangedRow {
  source: KeyValue[];
  target: KeyValue[];
}

/**
 * The rows changed since the cut, per target table; undefined when there are more than `limit`
 * (comparing them would take longer than validating every row) or a row is not one this module wrote.
 */
export async function readChangedKeys(session: SqlSession, uid: string, limit: number): Promise<Map<string, ChangedRow[]> | undefined> {
  const d = session.dialect;
  const where = `WHERE migration_uid = ${d.placeholder(1)} AND table_name LIKE ${d.placeholder(2)}`;
  const params = [captureOwner(uid), `${KEY_PREFIX}%`];
  const [counted] = await session.query(`SELECT count(*) AS n FROM ${d.quoteIdent(CHECKPOINT_TABLE)} ${where}`, params);
  if (Number(counted?.n?.toString() ?? '0') > limit) return undefined;
  const byTable = new Map<string, ChangedRow[]>();
  for (const row of await session.query(`SELECT last_key FROM ${d.quoteIdent(CHECKPOINT_TABLE)} ${where}`, params)) {
    try {
      const [payload] = decodeKey(row.last_key?.toString() ?? '');
      const [table, source, target] = JSON.parse(typeof payload === 'string' ? payload : '') as unknown[];
      if (typeof table !== 'string' || typeof source !== 'string' || typeof target !== 'string') return undefined;
      const rows = byTable.get(table) ?? [];
      rows.push({ source: decodeKey(source), target: decodeKey(target) });
      byTable.set(table, rows);
    } catch {
      return undefined;
    }
  }
  return byTable;
}
