// What the live change-capture runs (cdc-postgres.test.ts, cdc-mysql.test.ts) share around their
// source-specific parts: tables planned as the copy plans them, a writer changing rows at a steady
// pace on its own connections while it keeps the list of ids its acknowledged operations left
// live, the snapshot copy written through the capture's applier, lag sampling, the rounds that
// stop or kill an applier and start another, and the final row-by-row comparison of source and
// target with its assertions.
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { planTableCopy } from '../../src/engine/copy/planner.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import type { SqlSession } from '../../src/engine/db/session.ts';
import { introspectTable } from '../../src/engine/schema/introspect.ts';
import { valueMapper } from '../../src/engine/schema/typemap.ts';
import {
  captureTableFromPlan, ChangeApplier, type CaptureMethod, type CaptureTable, type CapturedRelation, type CapturedValue,
} from '../../src/engine/sync/cdc-apply.ts';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Text with what a careless encoder would break: quotes, backslashes, tabs, newlines, non-ASCII. */
export const tricky = (i: number): string => `v${i} 'q' \\b\t"d"\nü€${randomBytes(3).toString('hex')}`;

/** Rows seeded before the writer starts, ids 1..SEED_ROWS. */
export const SEED_ROWS = 2000;

export interface Setup { source: { url: string }; targetUrl: string; table: CaptureTable }

export interface TableDefinitions {
  sourceUrl: string;
  targetUrl: string;
  sourceDdl: string;
  targetDdl: string;
  /** Fills the source table with SEED_ROWS rows. */
  seedSql: string;
  /** Where the unqualified source table is, and how it is captured. */
  sourceSchema: string;
  method: CaptureMethod;
}

/** Source and target tables `items`, the source seeded; the capture table as the copy planner plans the table. */
export async function createPlannedTables(definitions: TableDefinitions): Promise<Setup> {
  const { sourceUrl, targetUrl } = definitions;
  const source = await openSession(sourceUrl, { readOnly: false });
  const target = await openSession(targetUrl, { readOnly: false });
  try {
    await source.query(definitions.sourceDdl);
    await target.query(definitions.targetDdl);
    await source.query(definitions.seedSql);
    const [sourceInfo, targetInfo] = [await introspectTable(source, 'items'), await introspectTable(target, 'items')];
    if (!sourceInfo || !targetInfo) throw new Error('tables not created');
    const outcome = planTableCopy({ spec: { name: 'items' }, source: sourceInfo, target: targetInfo, conflictPolicy: 'upsert', mapValue: valueMapper() });
    if (!outcome.plan) throw new Error(outcome.errors.join('; '));
    const table = captureTableFromPlan(outcome.plan, definitions.sourceSchema, definitions.method);
    if ('error' in table) throw new Error(table.error);
    return { source: { url: sourceUrl }, targetUrl, table };
  } finally {
    await source.close();
    await target.close();
  }
}

/** The initial copy's rows written through the capture's own applier, as inserts of a relation laid out as read, in one transaction. */
export async function applyAsInserts(target: SqlSession, table: CaptureTable, relation: CapturedRelation, rows: readonly (readonly CapturedValue[])[]): Promise<number> {
  const applier = new ChangeApplier(target, [table]);
  await target.query(target.dialect.beginStatement);
  for (const row of rows) await applier.apply({ kind: 'insert', relation, row });
  await target.query('COMMIT');
  return rows.length;
}

/**
 * The ids the writer's acknowledged operations left on the source: an operation is recorded only
 * once the server confirmed it, so the next one picks a row that exists (or existed a moment ago).
 */
export interface LiveRows {
  /** An id for a new row, never used before. */
  newId(): number;
  /** A live row's id. */
  pick(): number;
  inserted(id: number): void;
  moved(from: number, to: number): void;
  deleted(id: number): void;
  /** Operations done so far (by every connection). */
  readonly operations: number;
}

export interface Writer { stop(): Promise<{ operations: number; seconds: number }> }

export interface WriterOptions<Client> {
  /** Opens one of the two connections writing concurrently (the writer closes them when stopped). */
  connect: () => Promise<Client>;
  close: (client: Client) => Promise<void>;
  /** Operations a second in total, on average since the start. */
  perSecond: number;
  /** One random operation on the source. */
  operate: (client: Client, rows: LiveRows) => Promise<void>;
}

/** Starts writing on two connections until stopped, paced to about `perSecond` operations a second in total. */
export async function startPacedWriter<Client>(options: WriterOptions<Client>): Promise<Writer> {
  const clients = await Promise.all([options.connect(), options.connect()]);
  const live: number[] = Array.from({ length: SEED_ROWS }, (_, i) => i + 1);
  let nextId = 1_000_000;
  let operations = 0;
  let running = true;
  const began = Date.now();
  const rows: LiveRows = {
    newId: () => nextId++,
    pick: () => live[Math.floor(Math.random() * live.length)] ?? 1,
    inserted: (id) => { live.push(id); },
    moved(from, to) {
      live.splice(live.indexOf(from), 1);
      live.push(to);
    },
    deleted(id) {
      const at = live.indexOf(id);
      if (at >= 0) live.splice(at, 1);
    },
    get operations() {
      return operations;
    },
  };
  const loop = async (client: Client): Promise<void> => {
    while (running) {
      await options.operate(client, rows);
      operations++;
      const ahead = operations / options.perSecond * 1000 - (Date.now() - began);
      if (ahead > 0) await sleep(ahead);
    }
  };
  const loops = clients.map((client) => loop(client));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map((c) => options.close(c)));
      return { operations, seconds: (Date.now() - began) / 1000 };
    },
  };
}

/** Calls `sample` every 250 ms on a connection of its own until stopped (a failed sample is skipped by the caller). */
export function samplePeriodically<Client>(open: () => Promise<Client>, close: (client: Client) => Promise<void>, sample: (client: Client) => Promise<void>): { stop(): Promise<void> } {
  const state = { running: true };
  const done = (async () => {
    const client = await open();
    while (state.running) {
      await sample(client);
      await sleep(250);
    }
    await close(client);
  })();
  return {
    async stop() {
      state.running = false;
      await done;
    },
  };
}

export interface Comparison { rows: number; missing: number; stale: number; undeleted: number; examples: string[] }

/**
 * Equal values read equal: bytes as hex (PostgreSQL's bytea text too), fractional seconds without
 * trailing zeros (MySQL pads them), before a PostgreSQL time zone offset if any.
 */
export function normalizedValue(value: string | Buffer | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return `bytes ${value.toString('hex')}`;
  if (/^\\x[0-9a-f]*$/.test(value)) return `bytes ${value.slice(2)}`;
  return /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(value) ? value.replace(/(\.\d*?)0+(?=$|[+-]\d\d$)/, '$1').replace(/\.(?=$|[+-]\d\d$)/, '') : value;
}

/** Source rows (converted as the copy converts them) against the target's, by key; examples show `exampleWidth` characters of a row. */
export async function compareRows(setup: Setup, exampleWidth: number): Promise<Comparison> {
  const { table } = setup;
  const read = async (url: string, convert: boolean): Promise<Map<string, string>> => {
    const session = await openSession(url, { readOnly: true });
    const d = session.dialect;
    const names = convert ? table.columns.map((c) => c.source) : table.columns.map((c) => c.target);
    const rows = await session.query(`SELECT ${names.map((c) => d.quoteIdent(c)).join(', ')} FROM items`);
    await session.close();
    return new Map(rows.map((row) => {
      const values = names.map((name, i) => {
        const raw = row[name] ?? null;
        const converter = convert ? table.columns[i]?.convert : undefined;
        return normalizedValue(converter && raw !== null ? converter(raw) : raw);
      });
      return [values[0] ?? '', JSON.stringify(values)];
    }));
  };
  const [source, target] = await Promise.all([read(setup.source.url, true), read(setup.targetUrl, false)]);
  const outcome: Comparison = { rows: source.size, missing: 0, stale: 0, undeleted: 0, examples: [] };
  for (const [id, row] of source) {
    const other = target.get(id);
    if (other === undefined) outcome.missing++;
    else if (other !== row) outcome.stale++;
    if (other !== row && outcome.examples.length < 5) outcome.examples.push(`id ${id}: source ${row.slice(0, exampleWidth)} target ${other?.slice(0, exampleWidth) ?? 'missing'}`);
  }
  for (const id of target.keys()) {
    if (!source.has(id)) {
      outcome.undeleted++;
      if (outcome.examples.length < 5) outcome.examples.push(`id ${id}: deleted on the source, still on the target`);
    }
  }
  return outcome;
}

/**
 * Stops the writer, lets the applier catch up (`catchUp` waits and says how it went), then the
 * target must equal the source row by row, after a writer that wrote throughout.
 */
export async function catchUpAndCompare(t: ExecutionContext, setup: Setup, writer: Writer, catchUp: () => Promise<string>, exampleWidth: number): Promise<void> {
  const written = await writer.stop();
  const applied = await catchUp();
  const comparison = await compareRows(setup, exampleWidth);
  t.log(`writer: ${written.operations} operations in ${written.seconds.toFixed(1)} s (${Math.round(written.operations / written.seconds)}/s); ${applied}`);
  t.log(`compared ${comparison.rows} rows: ${comparison.missing} missing, ${comparison.stale} stale, ${comparison.undeleted} undeleted`);
  t.true(written.operations > 500, 'the writer wrote throughout');
  t.deepEqual({ missing: comparison.missing, stale: comparison.stale, undeleted: comparison.undeleted, examples: comparison.examples },
    { missing: 0, stale: 0, undeleted: 0, examples: [] });
}

/** A follower as the kill rounds end it. */
export interface StoppableFollower {
  stop(): Promise<void>;
  readonly ended: Promise<void>;
}

export interface KillRounds<Follower extends StoppableFollower> {
  targetUrl: string;
  /** Starts an applier on its own target session, as a new process would. */
  follow: (target: SqlSession) => Promise<Follower>;
  /** Ends the applier's source connection under it, as when the source restarts or the network drops. */
  killSourceConnection: (follower: Follower) => Promise<void>;
  /** After each round, the applier ended. */
  afterRound?: (follower: Follower) => void;
}

/**
 * Six rounds, each starting an applier, letting it run a little and ending it in turn: stopped,
 * its source connection killed, its target connection lost (mid-transaction or between: what it
 * had not committed is lost with it). A killed applier must fail.
 */
export async function killRepeatedly<Follower extends StoppableFollower>(t: ExecutionContext, rounds: KillRounds<Follower>): Promise<{ stopped: number; sourceConnectionKilled: number; targetLost: number }> {
  const kills = { stopped: 0, sourceConnectionKilled: 0, targetLost: 0 };
  for (let round = 0; round < 6; round++) {
    const target = await openSession(rounds.targetUrl, { readOnly: false });
    const follower = await rounds.follow(target);
    await sleep(300 + Math.random() * 600);
    if (round % 3 === 0) {
      await follower.stop();
      kills.stopped++;
    } else if (round % 3 === 1) {
      await rounds.killSourceConnection(follower);
      await t.throwsAsync(follower.ended);
      kills.sourceConnectionKilled++;
    } else {
      await target.close();
      await t.throwsAsync(follower.ended);
      kills.targetLost++;
    }
    await follower.stop();
    await target.close().catch(() => undefined);
    rounds.afterRound?.(follower);
  }
  return kills;
}

/** A statement on one of the writer's connections, either engine: the rows it changed. */
export type Exec = (sql: string, values: readonly unknown[]) => Promise<number>;

/** The engine-specific half of a writer on a table `items (id key, val text, …)`: its insert and its update of values. */
export interface ItemStatements {
  insert(exec: Exec, id: number): Promise<unknown>;
  /** Changes row `id`'s values, not its key; `operation` makes them differ each time. */
  update(exec: Exec, id: number, operation: number): Promise<unknown>;
}

/**
 * A writer on `items` at about `perSecond` operations a second on two connections: 35% inserts,
 * 35% updates, 15% key moves, 15% deletes, each autocommitted (the moves and deletes are the same
 * statements on every table of this shape).
 */
export async function startItemWriter(engine: 'postgres' | 'mysql', url: string, perSecond: number, statements: ItemStatements): Promise<Writer> {
  const move = engine === 'postgres' ? 'UPDATE items SET id = $2, val = val || \'+k\' WHERE id = $1' : 'UPDATE items SET id = ?, val = CONCAT(val, \'+k\') WHERE id = ?';
  const remove = engine === 'postgres' ? 'DELETE FROM items WHERE id = $1' : 'DELETE FROM items WHERE id = ?';
  const operate = async (exec: Exec, rows: LiveRows): Promise<void> => {
    const roll = Math.random();
    if (roll < 0.35) {
      const id = rows.newId();
      await statements.insert(exec, id);
      rows.inserted(id);
    } else if (roll < 0.7) {
      await statements.update(exec, rows.pick(), rows.operations);
    } else if (roll < 0.85) {
      const from = rows.pick();
      const to = rows.newId();
      if (await exec(move, engine === 'postgres' ? [from, to] : [to, from]) > 0) rows.moved(from, to);
    } else {
      const id = rows.pick();
      await exec(remove, [id]);
      rows.deleted(id);
    }
  };
  if (engine === 'postgres') {
    return startPacedWriter({
      connect: () => connectPostgres(url, { readOnly: false }), close: (c) => c.end(), perSecond,
      operate: (c, rows) => operate(async (sql, values) => (await c.query(sql, [...values])).rowCount ?? 0, rows),
    });
  }
  return startPacedWriter({
    connect: () => connectMysql(url, { readOnly: false }), close: (c) => c.end(), perSecond,
    operate: (c, rows) => operate(async (sql, values) => {
      const [result] = await c.query(sql, [...values]);
      return (result as { affectedRows?: number }).affectedRows ?? 0;
    }, rows),
  });
}
