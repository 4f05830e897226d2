// The binlog of a MySQL/MariaDB source from a position, filtered to the migrated tables, through
// @vlasky/zongji (the replica protocol over mysql2, MariaDB's GTID events, row decoding; see the
// README's design notes for why this client), turned into the capture's shared change shape
// (sync/cdc-apply.ts) with each source commit's end position.
//
// - One message at a time: the next waits until the handler of the previous one resolved. The
//   client has no flow control of its own, so the binlog connection is paused while too many
//   events wait, and memory stays bounded by what the socket had read ahead.
// - Positions: the client's own resume point (options.filename/position), read as each event
//   arrives. It never points inside a transaction, so a commit's position is where the next
//   transaction starts: resuming there applies each transaction exactly once.
// - The server keeps no position for us (no slot): the follower records it on the target.
import ZongJi, { type AnyBinlogEvent, type TableMapEntry } from '@vlasky/zongji';
import { createHash } from 'node:crypto';
import type { CaptureSource } from '../change-capture.ts';
import type { CapturedChange, CapturedRelation, CapturedValue } from '../../sync/cdc-apply.ts';
import { binlogValueText, type BinlogPosition } from './binlog-position.ts';
import { mysqlConnectionOptions } from './connection.ts';

export type BinlogMessage =
  | { tag: 'begin' }
  | { tag: 'change'; change: CapturedChange }
  /** A source transaction committed; the next one starts at `position`. `commitTime`: the binlog's, to the second. */
  | { tag: 'commit'; position: BinlogPosition; commitTime: Date }
  /** A statement logged as text outside a row transaction (DDL, TRUNCATE); the next event starts at `position`. */
  | { tag: 'statement'; schema: string; query: string; position: BinlogPosition };

export interface BinlogStreamOptions {
  source: CaptureSource;
  /** Read from here: a commit's position (or the snapshot's). */
  start: BinlogPosition;
  /** Only these tables' row events: database name → table names. */
  tables: Record<string, string[]>;
  /** The replica id the source sees; see binlogServerId. */
  serverId: number;
  onMessage(message: BinlogMessage): Promise<void>;
  /** Every event the server sent before `position` has been handled, and nothing is in flight (from heartbeats while idle). */
  onIdle(position: BinlogPosition): void;
  /** How often the server says where it is while it has nothing to send (default 1 s). */
  heartbeatMs?: number;
}

export interface BinlogStream {
  /** The source server's id of the binlog connection (its Binlog Dump thread), while connected. */
  readonly connectionId: number | undefined;
  /** Messages received and not yet handled (bounded: the connection pauses above HIGH_WATER). */
  readonly queued: number;
  stop(): Promise<void>;
  /** Resolves after stop(); rejects when the stream fails (connection lost, a purged position, a handler's error). */
  readonly ended: Promise<void>;
}

/**
 * A replica server id for a migration: stable (a restarted applier displaces its killed
 * predecessor's dump thread, which the server ends when a replica of the same id connects) and
 * far from the small ids real replicas are given.
 */
export function binlogServerId(uid: string): number {
  return 0x40000000 + (createHash('sha256').update(uid).digest().readUInt32BE(0) & 0x3fffffff);
}

const EVENTS = ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'xaprepare', 'query', 'mariadbgtid', 'heartbeat'];
const HIGH_WATER = 2000;
const LOW_WATER = 200;

export async function openBinlogStream(options: BinlogStreamOptions): Promise<BinlogStream> {
  const base = mysqlConnectionOptions(options.source.url, { readOnly: true, side: 'source', applicationName: 'datamigration-capture', ...(options.source.tls ? { tls: options.source.tls } : {}) });
  // The client decodes rows itself and queries INFORMATION_SCHEMA for column names: no text type cast there.
  const connection: typeof base = { ...base };
  delete connection.typeCast;
  const zongji = new ZongJi(connection);
  const relations = new WeakMap<TableMapEntry, CapturedRelation>();
  const queue: BinlogMessage[] = [];
  let paused = false;
  let pumping = false;
  let stopping = false;
  let inTransaction = false;
  /** Row changes of captured tables in the transaction being read. */
  let changesInTransaction = 0;
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const ended = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
  ended.catch(() => undefined);
  const halt = (): void => {
    try {
      zongji.stop();
    } catch {
      // Stopping a client that never connected.
    }
  };
  const fail = (error: Error): void => {
    if (stopping) return;
    stopping = true;
    queue.length = 0;
    halt();
    settle?.reject(error);
  };

  const pump = async (): Promise<void> => {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length > 0 && !stopping) {
        const message = queue.shift();
        if (message) await options.onMessage(message);
        if (paused && queue.length < LOW_WATER) {
          paused = false;
          zongji.connection?.resume();
        }
      }
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
    } finally {
      pumping = false;
    }
  };
  const push = (message: BinlogMessage): void => {
    queue.push(message);
    if (!paused && queue.length > HIGH_WATER) {
      paused = true;
      zongji.connection?.pause();
    }
    void pump();
  };
  const here = (): BinlogPosition => ({ file: zongji.options.filename ?? options.start.file, offset: zongji.options.position ?? options.start.offset });

  const relationOf = (entry: TableMapEntry): CapturedRelation => {
    let relation = relations.get(entry);
    if (!relation) {
      relation = { schema: entry.parentSchema, name: entry.tableName, columns: entry.columnSchemas.map((c) => ({ name: c.COLUMN_NAME })) };
      relations.set(entry, relation);
    }
    return relation;
  };
  const tuple = (relation: CapturedRelation, row: Record<string, unknown>): CapturedValue[] => relation.columns.map((c) => binlogValueText(row[c.name]));

  const onEvent = (event: AnyBinlogEvent): void => {
    if (stopping) return;
    try {
      switch (event.getEventName()) {
        case 'mariadbgtid':
          // A transaction's start; a standalone group (DDL) has no commit and ends with its statement.
          if (!('standalone' in event) || !event.standalone) {
            inTransaction = true;
            changesInTransaction = 0;
            push({ tag: 'begin' });
          }
          return;
        case 'writerows': case 'updaterows': case 'deleterows': {
          if (!('tableId' in event) || !('rows' in event)) return;
          const entry = event.tableMap[event.tableId];
          if (!entry) throw new Error(`a row event of table id ${event.tableId} without its table map`);
          const relation = relationOf(entry);
          changesInTransaction += event.rows.length;
          for (const row of event.rows) {
            if (event.getEventName() === 'updaterows') {
              const update = row as { before: Record<string, unknown>; after: Record<string, unknown> };
              push({ tag: 'change', change: { kind: 'update', relation, old: tuple(relation, update.before), row: tuple(relation, update.after) } });
            } else if (event.getEventName() === 'writerows') {
              push({ tag: 'change', change: { kind: 'insert', relation, row: tuple(relation, row as Record<string, unknown>) } });
            } else {
              push({ tag: 'change', change: { kind: 'delete', relation, old: tuple(relation, row as Record<string, unknown>) } });
            }
          }
          return;
        }
        case 'xid':
          inTransaction = false;
          push({ tag: 'commit', position: here(), commitTime: new Date(event.timestamp) });
          return;
        case 'xaprepare':
          // The rows of an XA transaction are logged at its PREPARE; it may still roll back (XA COMMIT or XA ROLLBACK comes later, as a statement).
          if (changesInTransaction > 0) throw new Error('an XA transaction changed a captured table on the source: change capture does not follow XA transactions (their outcome is logged apart from their rows)');
          inTransaction = false;
          push({ tag: 'commit', position: here(), commitTime: new Date(event.timestamp) });
          return;
        case 'query': {
          if (!('query' in event)) return;
          const statement = event.query.trim();
          if (/^BEGIN$/i.test(statement)) {
            inTransaction = true;
            changesInTransaction = 0;
            push({ tag: 'begin' });
          } else if (/^(COMMIT|ROLLBACK)$/i.test(statement)) {
            // Non-transactional tables end their groups with a COMMIT (or a ROLLBACK that undid nothing of theirs).
            inTransaction = false;
            push({ tag: 'commit', position: here(), commitTime: new Date(event.timestamp) });
          } else {
            inTransaction = false;
            push({ tag: 'statement', schema: event.schema, query: statement, position: here() });
          }
          return;
        }
        case 'heartbeat':
          if (!inTransaction && queue.length === 0 && !pumping && 'binlogName' in event && event.nextPosition > 0) {
            options.onIdle({ file: event.binlogName, offset: event.nextPosition });
          }
          return;
        default:
          return;
      }
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
    }
  };

  zongji.on('binlog', onEvent);
  zongji.on('error', (error: Error) => { fail(error); });
  const ready = new Promise<void>((resolve) => { zongji.once('ready', () => { resolve(); }); });
  zongji.start({
    serverId: options.serverId, filename: options.start.file, position: options.start.offset,
    includeEvents: EVENTS, includeSchema: options.tables,
  });
  // Queued on the binlog connection before the dump command: heartbeats while idle tell where the server is.
  zongji.connection?.query(`SET @master_heartbeat_period = ${String(Math.round((options.heartbeatMs ?? 1000) * 1e6))}`, () => undefined);
  await Promise.race([ready, ended]);

  return {
    get queued() {
      return queue.length;
    },
    get connectionId() {
      return zongji.connection?.threadId ?? undefined;
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        queue.length = 0;
        halt();
        settle?.resolve();
      }
      await ended.catch(() => undefined);
    },
    ended,
  };
}
