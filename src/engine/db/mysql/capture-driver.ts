// MySQL/MariaDB's change capture (db/change-capture.ts): a binlog reader, which creates nothing on
// the source. The copy reads on the one connection holding the consistent snapshot (a snapshot
// cannot be shared between connections), and its binlog position is recorded on the target
// (sync/cdc-follow-mysql.ts's checkpoint: the follower's only record of where it is). That module,
// and @vlasky/zongji under it, is imported when first needed: only capture's steps use it.
import type { Connection as MysqlConnection } from 'mysql2';
import type mysql from 'mysql2/promise';
import { readCheckpoint, writeCheckpoint } from '../../copy/checkpoint.ts';
import type { SourceSnapshot } from '../../copy/copy-shard.ts';
import { readRecordedPosition } from '../../sync/cdc-batcher.ts';
import type { ChangeCaptureDriver, CaptureFollower, FollowOptions } from '../change-capture.ts';
import { readOnlyTransactions, type SqlSession } from '../session.ts';
import { BinlogCaptureRefused, binlogCaptureProblems, currentBinlogPosition, openBinlogSnapshot, type BinlogSnapshot } from './binlog-capture.ts';
import { compareBinlogPositions, formatBinlogPosition, parseBinlogPosition, type BinlogPosition } from './binlog-position.ts';
import { connectMysql, mysqlSession } from './connection.ts';

const binlogFollowing = () => import('../../sync/cdc-follow-mysql.ts');

/**
 * The catalog checks take a driver connection and only call query(text, values), reading the rows
 * (mysql2: the first element): a read-only session answers them the same way.
 */
function asMysqlConnection(session: SqlSession): mysql.Connection {
  const connection = { query: async (text: string, values: readonly unknown[] = []) => [await session.query(text, values)] };
  return connection as unknown as mysql.Connection;
}

/** The binlog position the copy's snapshot recorded (or the follower has applied up to since); undefined before one. */
export async function recordedBinlogStart(target: SqlSession, uid: string): Promise<BinlogPosition | undefined> {
  const { binlogCheckpointId } = await binlogFollowing();
  return readRecordedPosition(target, binlogCheckpointId(uid), parseBinlogPosition);
}

/**
 * The copy's view of a MySQL snapshot connection (openBinlogSnapshot's): mysql2's promise
 * connection wraps the callback connection the copy streams rows on, and keeps it as `connection`.
 */
export function mysqlSourceSnapshot(connection: mysql.Connection): SourceSnapshot {
  const core = (connection as unknown as { connection?: MysqlConnection }).connection;
  if (typeof core?.query !== 'function') throw new Error('the MySQL snapshot connection does not expose its callback connection');
  return { kind: 'held', connection: core };
}

async function follow(options: FollowOptions): Promise<CaptureFollower> {
  // The copy recorded where its snapshot ends; a follower since, where it got to. The source keeps nothing for us.
  const recorded = await recordedBinlogStart(options.target, options.uid);
  if (!recorded) throw new Error('the target holds no binlog position for this migration: the copy step records it (run step copy first)');
  const connection = await connectMysql(options.source.url, {
    readOnly: true, side: 'source', applicationName: options.applicationName, ...(options.source.tls ? { tls: options.source.tls } : {}),
  });
  try {
    // The target's record is writable by the target's users: a position past the end of the
    // source's binlog was not written by a follower, and would skip changes.
    const now = await currentBinlogPosition(connection);
    if (compareBinlogPositions(recorded, now) > 0) {
      throw new Error(`the binlog position recorded on the target for this migration (${formatBinlogPosition(recorded)}) is ahead of the source's current position (${formatBinlogPosition(now)}): `
        + 'no follower wrote it (the target\'s bookkeeping table was altered?), and following from it would skip changes; the migration must start over');
    }
    const { followBinlog } = await binlogFollowing();
    const follower = await followBinlog({ source: options.source, target: options.target, uid: options.uid, tables: options.tables, start: recorded });
    return {
      stream: follower,
      async mark() {
        const position = await currentBinlogPosition(connection);
        return { text: formatBinlogPosition(position), readAt: Date.now(), reached: (timeoutMs) => follower.waitForPosition(position, timeoutMs) };
      },
      pendingBytes: async () => (await follower.lag(connection)).bytes,
      appliedPosition: () => formatBinlogPosition(follower.progress().appliedPosition),
      async cut(onCut, timeoutMs) {
        let snapshot: BinlogSnapshot | undefined;
        try {
          const position = await follower.cutAt(async (signal) => {
            const opened = await openBinlogSnapshot(options.source, options.tables.map((t) => ({ schema: t.sourceSchema, name: t.sourceTable, key: t.key })));
            if (signal.aborted) {
              await opened.release();
              throw signal.reason;
            }
            snapshot = opened;
            return opened.position;
          }, onCut, timeoutMs);
          const held = snapshot as BinlogSnapshot;
          // Inside the snapshot's READ ONLY transaction already: every statement runs in it.
          return { position: formatBinlogPosition(position), session: readOnlyTransactions(mysqlSession(held.connection, { readOnly: false, side: 'source' }), true), release: () => held.release() };
        } catch (error) {
          await snapshot?.release().catch(() => undefined);
          throw error;
        }
      },
      closeSource: () => connection.end(),
    };
  } catch (error) {
    await connection.end().catch(() => undefined);
    throw error;
  }
}

export const mysqlCaptureDriver: ChangeCaptureDriver = {
  method: 'binlog',
  problems: (source, tables) => binlogCaptureProblems(asMysqlConnection(source), tables),
  copyWarnings: (parallelism) => (parallelism > 1
    ? ['ChangeCapture on a MySQL/MariaDB source copies every table on the one connection holding the consistent snapshot '
      + '(a snapshot cannot be shared between connections): the copy runs one table or shard at a time, whatever strategy.parallelism says']
    : []),
  // The recorded position is the capture: the source holds nothing of it.
  async earlierCapture(_source, target, uid) {
    const { binlogCheckpointId } = await binlogFollowing();
    return { inPlace: (await readCheckpoint(target, binlogCheckpointId(uid))) !== undefined, sourceObjects: false };
  },
  release: () => Promise.resolve({ released: true, problems: [] }),
  async beginSnapshot(source, target, uid, tables) {
    const { binlogCheckpointId } = await binlogFollowing();
    const snapshot = await openBinlogSnapshot(source, tables);
    let held: SourceSnapshot;
    try {
      // The server stops writing to a client that reads slower than this (as beginMysqlSnapshot sets for the copy's own connections).
      await snapshot.connection.query('SET SESSION net_write_timeout = 3600');
      held = mysqlSourceSnapshot(snapshot.connection);
    } catch (error) {
      await snapshot.release();
      throw error;
    }
    return {
      snapshot: held,
      async finish() {
        try {
          // Recorded once the copy is done: the follower's start, and this attempt's mark of completion.
          const position = formatBinlogPosition(snapshot.position);
          await writeCheckpoint(target, binlogCheckpointId(uid), { lastKey: [position], rowsCopied: 0, done: false, boundaries: [] });
          return position;
        } finally {
          await snapshot.release();
        }
      },
      abandon: () => snapshot.release(),
    };
  },
  isRefusal: (error): error is Error => error instanceof BinlogCaptureRefused,
  follow,
};
