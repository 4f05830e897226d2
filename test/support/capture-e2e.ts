// What the ChangeCapture e2e tests share (trickle-capture.test.ts, rbac-exact.test.ts): the blue
// side the write fence scales down (a Deployment that consents, and since no Deployment controller
// runs here, pods the test creates with its labels to stand in for its pods), the cutover Service,
// the `items` table on both sides, a paced writer that stands for the blue app and logs each
// operation the server acknowledged, and the checks after the cutover: the writer's log against
// the target, and the replication slots left on a PostgreSQL source.
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { CUTOVER_BY_ANNOTATION } from '../../src/api/constants.ts';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { connectMysql } from '../../src/engine/db/mysql/connection.ts';
import { connectPostgres } from '../../src/engine/db/postgres/connection.ts';
import { openSession } from '../../src/engine/db/connect.ts';
import { createPlannedTables, startPacedWriter, type LiveRows, type Setup, type Writer } from './cdc-harness.ts';
import { databaseOf } from './databases.ts';
import { testKubeConfig } from './kube.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);

export const BLUE_LABELS = { app: 'web', track: 'blue' };

/** The blue Deployment (consenting to be scaled by `migration`), `pods` pods standing in for its pods, and the Service `web` on blue. */
export async function stageBlue(namespace: string, migration: string, pods = 2): Promise<{ podNames: string[] }> {
  await apps.createNamespacedDeployment({ namespace, body: {
    metadata: { name: 'web-blue', annotations: { [CUTOVER_BY_ANNOTATION]: migration } },
    spec: { replicas: 2, selector: { matchLabels: BLUE_LABELS }, template: { metadata: { labels: BLUE_LABELS }, spec: { containers: [{ name: 'web', image: 'web:blue' }] } } },
  } });
  const podNames: string[] = [];
  for (let i = 0; i < pods; i++) {
    const name = `web-blue-standin-${String(i)}`;
    // Bound to a node that does not exist: nothing runs it, and it stays until deleted.
    await core.createNamespacedPod({ namespace, body: {
      metadata: { name, labels: BLUE_LABELS },
      spec: { nodeName: 'nowhere', restartPolicy: 'Never', containers: [{ name: 'web', image: 'web:blue', command: ['true'] }] },
    } });
    podNames.push(name);
  }
  await core.createNamespacedService({ namespace, body: {
    metadata: { name: 'web', annotations: { [CUTOVER_BY_ANNOTATION]: migration } },
    spec: { selector: BLUE_LABELS, ports: [{ port: 80 }] },
  } });
  return { podNames };
}

/** Deletes stand-in pods at once (no kubelet would ever confirm a graceful deletion). */
export async function deleteStandIns(namespace: string, names: readonly string[]): Promise<void> {
  for (const name of names) await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
}

export const readBlue = (namespace: string): Promise<k8s.V1Deployment> => apps.readNamespacedDeployment({ name: 'web-blue', namespace });
export const readWeb = (namespace: string): Promise<k8s.V1Service> => core.readNamespacedService({ name: 'web', namespace });

const TABLES = {
  postgres: {
    source: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, ts timestamp(6))',
    seed: (rows: number) => `INSERT INTO items SELECT g, 'seed ' || g, g, timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second' FROM generate_series(1, ${String(rows)}) g`,
  },
  mysql: {
    source: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n int, ts datetime(6)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    seed: (rows: number) => `INSERT INTO items SELECT seq, CONCAT('seed ', seq), seq, TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq SECOND FROM seq_1_to_${String(rows)}`,
  },
} as const;

/** `items` seeded with `rows` rows on the source and empty on the (PostgreSQL) target. */
export async function createItems(engine: Engine, sourceUrl: string, targetUrl: string, rows: number): Promise<Setup> {
  return await createPlannedTables({
    sourceUrl, targetUrl, sourceDdl: TABLES[engine].source, seedSql: TABLES[engine].seed(rows),
    targetDdl: 'CREATE TABLE items (id bigint PRIMARY KEY, val text, n integer, ts timestamp(6))',
    sourceSchema: engine === 'postgres' ? 'public' : databaseOf(sourceUrl), method: engine === 'postgres' ? 'logical-decoding' : 'binlog',
  });
}

/** One acknowledged operation: the row it left (val undefined: the row is gone), when it was sent and acknowledged. */
export interface LoggedOperation { id: number; val?: string; startedAt: number; ackedAt: number }

export interface LoggedWriter { writer: Writer; log: LoggedOperation[] }

/** The writer's operations, each logged once the server acknowledged it: inserts, updates (keys too), deletes. */
export async function startLoggedWriter(engine: Engine, url: string, perSecond: number): Promise<LoggedWriter> {
  const log: LoggedOperation[] = [];
  const token = (): string => `w ${randomBytes(6).toString('hex')}`;
  // Each returns the rows it changed: an operation on a row another connection just deleted changed none.
  const operate = async (exec: (sql: string, values: unknown[]) => Promise<number>, rows: LiveRows): Promise<void> => {
    const startedAt = Date.now();
    const roll = Math.random();
    if (roll < 0.35) {
      const id = rows.newId();
      const val = token();
      await exec(engine === 'postgres' ? 'INSERT INTO items VALUES ($1, $2, $3, localtimestamp)' : 'INSERT INTO items VALUES (?, ?, ?, NOW(6))', [id, val, id]);
      rows.inserted(id);
      log.push({ id, val, startedAt, ackedAt: Date.now() });
    } else if (roll < 0.7) {
      const id = rows.pick();
      const val = token();
      const changed = await exec(engine === 'postgres' ? 'UPDATE items SET val = $2, n = n + 1 WHERE id = $1' : 'UPDATE items SET val = ?, n = n + 1 WHERE id = ?',
        engine === 'postgres' ? [id, val] : [val, id]);
      if (changed > 0) log.push({ id, val, startedAt, ackedAt: Date.now() });
    } else if (roll < 0.85) {
      const from = rows.pick();
      const to = rows.newId();
      const val = token();
      const changed = await exec(engine === 'postgres' ? 'UPDATE items SET id = $2, val = $3 WHERE id = $1' : 'UPDATE items SET id = ?, val = ? WHERE id = ?',
        engine === 'postgres' ? [from, to, val] : [to, val, from]);
      if (changed > 0) {
        rows.moved(from, to);
        const ackedAt = Date.now();
        log.push({ id: from, startedAt, ackedAt }, { id: to, val, startedAt, ackedAt });
      }
    } else {
      const id = rows.pick();
      const changed = await exec(engine === 'postgres' ? 'DELETE FROM items WHERE id = $1' : 'DELETE FROM items WHERE id = ?', [id]);
      rows.deleted(id);
      if (changed > 0) log.push({ id, startedAt, ackedAt: Date.now() });
    }
  };
  const writer = engine === 'postgres'
    ? await startPacedWriter<pg.Client>({
      connect: () => connectPostgres(url, { readOnly: false }), close: (c) => c.end(), perSecond,
      operate: (client, rows) => operate(async (sql, values) => (await client.query(sql, values)).rowCount ?? 0, rows),
    })
    : await startPacedWriter<mysql.Connection>({
      connect: () => connectMysql(url, { readOnly: false }), close: (c) => c.end(), perSecond,
      operate: (client, rows) => operate(async (sql, values) => {
        const [result] = await client.query(sql, values);
        return (result as { affectedRows?: number }).affectedRows ?? 0;
      }, rows),
    });
  return { writer, log };
}

export interface LogCheck {
  /** Rows the log says must be on the target with a value. */
  live: number;
  /** Rows the log says are gone. */
  gone: number;
  /** Rows whose last two operations overlapped on the two connections (either outcome is right). */
  ambiguous: number;
  /** Logged operations whose outcome the target lacks. */
  lost: number;
  examples: string[];
}

/** Every acknowledged operation's outcome on the target: the last one per row, in acknowledgement order. */
export async function checkWriterLog(targetUrl: string, log: readonly LoggedOperation[]): Promise<LogCheck> {
  const byId = new Map<number, LoggedOperation[]>();
  for (const operation of log) byId.set(operation.id, [...byId.get(operation.id) ?? [], operation]);
  const session = await openSession(targetUrl, { readOnly: true });
  const target = new Map<number, string | null>();
  try {
    for (const row of await session.query('SELECT id, val FROM items')) target.set(Number(row.id), row.val === null || row.val === undefined ? null : String(row.val));
    const check: LogCheck = { live: 0, gone: 0, ambiguous: 0, lost: 0, examples: [] };
    for (const [id, operations] of byId) {
      const sorted = [...operations].sort((a, b) => a.ackedAt - b.ackedAt);
      const last = sorted[sorted.length - 1];
      if (last === undefined) continue;
      const overlapping = sorted.filter((other) => other !== last && other.ackedAt >= last.startedAt);
      const acceptable = new Set([last, ...overlapping].map((operation) => operation.val));
      const actual = target.has(id) ? target.get(id) ?? undefined : undefined;
      if (overlapping.length > 0) check.ambiguous++;
      else if (last.val === undefined) check.gone++;
      else check.live++;
      if (!acceptable.has(actual)) {
        check.lost++;
        if (check.examples.length < 5) check.examples.push(`id ${String(id)}: logged ${last.val ?? '(gone)'}, target ${actual ?? '(absent)'}`);
      }
    }
    return check;
  } finally {
    await session.close();
  }
}

/** This database's replication slots of the operator (dmo_...) on a PostgreSQL source. */
export async function captureSlots(sourceUrl: string, options: { temporary?: boolean } = {}): Promise<string[]> {
  const session = await openSession(sourceUrl, { readOnly: true });
  try {
    // The sync's validation at a cut holds a temporary slot for a moment (gone with its connection): counted only when asked.
    const rows = await session.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'dmo\\_%' AND database = current_database()${options.temporary === true ? '' : ' AND NOT temporary'}`);
    return rows.map((row) => String(row.slot_name));
  } finally {
    await session.close();
  }
}

/** A logged writer that outlives a SourceReadOnly fence: its failures counted, its connections reopened. */
export interface FencedWriter extends LoggedWriter {
  /** Operations the server refused or whose connection was ended: not acknowledged, not logged. */
  failures(): number;
  /** Operations acknowledged since `since` (epoch ms). */
  acknowledgedSince(since: number): number;
}

interface ReopenedClient { client: pg.Client | undefined }

const APPLICATION_NAME = 'web-blue';

/**
 * The PostgreSQL writer of startLoggedWriter, for a source the fence makes read-only and whose
 * sessions it ends: an operation that fails is not acknowledged (not logged) and the writer goes
 * on; a connection that was ended is reopened (a read-only refusal keeps it, as a pool would).
 */
export async function startFencedWriter(url: string, perSecond: number): Promise<FencedWriter> {
  const log: LoggedOperation[] = [];
  let failed = 0;
  const token = (): string => `w ${randomBytes(6).toString('hex')}`;
  const operate = async (client: pg.Client, rows: LiveRows): Promise<void> => {
    const exec = async (sql: string, values: unknown[]): Promise<number> => (await client.query(sql, values)).rowCount ?? 0;
    const startedAt = Date.now();
    const roll = Math.random();
    if (roll < 0.35) {
      const id = rows.newId();
      const val = token();
      await exec('INSERT INTO items VALUES ($1, $2, $3, localtimestamp)', [id, val, id]);
      rows.inserted(id);
      log.push({ id, val, startedAt, ackedAt: Date.now() });
    } else if (roll < 0.7) {
      const id = rows.pick();
      const val = token();
      if (await exec('UPDATE items SET val = $2, n = n + 1 WHERE id = $1', [id, val]) > 0) log.push({ id, val, startedAt, ackedAt: Date.now() });
    } else if (roll < 0.85) {
      const from = rows.pick();
      const to = rows.newId();
      const val = token();
      if (await exec('UPDATE items SET id = $2, val = $3 WHERE id = $1', [from, to, val]) > 0) {
        rows.moved(from, to);
        const ackedAt = Date.now();
        log.push({ id: from, startedAt, ackedAt }, { id: to, val, startedAt, ackedAt });
      }
    } else {
      const id = rows.pick();
      const changed = await exec('DELETE FROM items WHERE id = $1', [id]);
      rows.deleted(id);
      if (changed > 0) log.push({ id, startedAt, ackedAt: Date.now() });
    }
  };
  // Named as an application (not the engine's default, datamigration: the fence leaves the migration's own sessions alone).
  const connect = (): Promise<pg.Client> => connectPostgres(url, { readOnly: false, applicationName: APPLICATION_NAME });
  const writer = await startPacedWriter<ReopenedClient>({
    connect: async () => ({ client: await connect() }),
    close: async (holder) => { await holder.client?.end().catch(() => undefined); },
    perSecond,
    async operate(holder, rows) {
      try {
        holder.client ??= await connect();
        await operate(holder.client, rows);
      } catch (error) {
        failed++;
        // 25006: refused in a read-only transaction, the connection is fine; anything else (ended by the fence): reopened.
        if ((error as { code?: unknown }).code !== '25006') {
          const ended = holder.client;
          holder.client = undefined;
          await ended?.end().catch(() => undefined);
        }
      }
    },
  });
  return {
    writer, log,
    failures: () => failed,
    acknowledgedSince: (since) => log.filter((operation) => operation.ackedAt >= since).length,
  };
}

/** The source database's own default_transaction_read_only (pg_db_role_setting), undefined when unset. */
export async function databaseReadOnlySetting(sourceUrl: string): Promise<string | undefined> {
  const session = await openSession(sourceUrl, { readOnly: true });
  try {
    const rows = await session.query(`SELECT split_part(c, '=', 2) AS value FROM pg_db_role_setting s, unnest(s.setconfig) c
      WHERE s.setrole = 0 AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND split_part(c, '=', 1) = 'default_transaction_read_only'`);
    const value = rows.at(-1)?.value;
    return value === undefined || value === null ? undefined : String(value);
  } finally {
    await session.close();
  }
}

/** Whether a new session (the database's defaults, as an application's) may write: an insert it rolls back. */
export async function newSessionCanWrite(sourceUrl: string): Promise<true | string> {
  const client = await connectPostgres(sourceUrl, { readOnly: false, applicationName: APPLICATION_NAME });
  try {
    await client.query('BEGIN');
    await client.query("INSERT INTO items VALUES (2000000000, 'probe', 0, localtimestamp)");
    await client.query('ROLLBACK');
    return true;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}
