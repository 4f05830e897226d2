// The PostgreSQL functions a migration created on the target (the ON UPDATE triggers' functions,
// on-update.ts), recorded with its uid the way created-tables.ts records tables and types: the
// function and its record commit in one transaction, so the record exists if and only if this
// migration made the function. A rollback drops them after the tables (whose triggers used them);
// a finished migration's are retired, the application's from then on.
import { tableExists } from '../db/catalog.ts';
import type { SqlSession } from '../db/session.ts';
import { createIfAbsent } from '../migrations/create-if-absent.ts';
import type { OnUpdateTrigger } from './on-update.ts';

export const CREATED_FUNCTIONS_TABLE = 'dataops_created_function';

async function ensureCreatedFunctionsTable(session: SqlSession): Promise<void> {
  const q = session.dialect;
  const { keyText, timestamp, timestampDefault, tableOptions } = q.bookkeeping;
  await createIfAbsent(session, `CREATE TABLE IF NOT EXISTS ${q.quoteIdent(CREATED_FUNCTIONS_TABLE)} (migration_uid ${keyText(255)} NOT NULL, function_name ${keyText(255)} NOT NULL, `
    + `state ${keyText(16)} NOT NULL DEFAULT 'created', recorded_at ${timestamp} NULL DEFAULT ${timestampDefault}, PRIMARY KEY (migration_uid, function_name))${tableOptions}`);
}

/**
 * Creates (or, on a rerun, replaces) each trigger's function and trigger and records the function
 * as this migration's, one transaction per table. Returns the statements run.
 */
export async function createRecordedTriggers(session: SqlSession, uid: string, triggers: readonly OnUpdateTrigger[]): Promise<number> {
  if (triggers.length === 0) return 0;
  await ensureCreatedFunctionsTable(session);
  const q = session.dialect;
  let ran = 0;
  for (const trigger of triggers) {
    await session.query(q.beginStatement);
    try {
      for (const statement of trigger.statements) await session.query(statement);
      await session.query(`INSERT INTO ${q.quoteIdent(CREATED_FUNCTIONS_TABLE)} (migration_uid, function_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [uid, trigger.functionSignature]);
      await session.query('COMMIT');
      ran += trigger.statements.length;
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
  return ran;
}

/** The functions this migration created and has not retired, as DROP FUNCTION takes them. */
export async function createdFunctions(session: SqlSession, uid: string): Promise<string[]> {
  if (!session.dialect.transactionalDdl || !await tableExists(session, CREATED_FUNCTIONS_TABLE)) return [];
  const rows = await session.query(
    `SELECT function_name FROM ${session.dialect.quoteIdent(CREATED_FUNCTIONS_TABLE)} WHERE migration_uid = $1 AND state = 'created' ORDER BY function_name`, [uid],
  );
  return rows.map((r) => String(r.function_name));
}

/**
 * Of these triggers, the functions that exist on the target but are not this migration's: the
 * plan refuses them (CREATE OR REPLACE would overwrite someone else's function).
 */
export async function foreignFunctions(session: SqlSession, uid: string, triggers: readonly OnUpdateTrigger[]): Promise<OnUpdateTrigger[]> {
  if (triggers.length === 0) return [];
  const ours = new Set(await createdFunctions(session, uid));
  const foreign: OnUpdateTrigger[] = [];
  for (const trigger of triggers) {
    const [row] = await session.query('SELECT to_regprocedure($1) IS NOT NULL AS found', [trigger.functionSignature]);
    if (['t', 'true'].includes(String(row?.found)) && !ours.has(trigger.functionSignature)) foreign.push(trigger);
  }
  return foreign;
}

/**
 * Drops the functions this migration created (after its tables, so no trigger uses them) and
 * forgets them. One still in use (someone's trigger since) is left in place with a warning.
 */
export async function dropCreatedFunctions(session: SqlSession, uid: string, warnings: string[] = []): Promise<string[]> {
  const functions = await createdFunctions(session, uid);
  const dropped: string[] = [];
  for (const signature of functions) {
    try {
      await session.query(`DROP FUNCTION IF EXISTS ${signature}`); // RESTRICT: never under someone else's trigger
      dropped.push(signature);
    } catch (error) {
      warnings.push(`function ${signature} was created by this migration but is still in use, so it was left in place: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (functions.length > 0) {
    await session.query(`DELETE FROM ${session.dialect.quoteIdent(CREATED_FUNCTIONS_TABLE)} WHERE migration_uid = $1 AND function_name = ANY($2::text[])`, [uid, functions]);
  }
  return dropped;
}

/** A finished migration: its functions are the application's now. */
export async function retireCreatedFunctions(session: SqlSession, uid: string): Promise<void> {
  if (!session.dialect.transactionalDdl || !await tableExists(session, CREATED_FUNCTIONS_TABLE)) return;
  await session.query(`UPDATE ${session.dialect.quoteIdent(CREATED_FUNCTIONS_TABLE)} SET state = 'retired' WHERE migration_uid = $1`, [uid]);
}
