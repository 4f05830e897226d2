// PostgreSQL's change capture (db/change-capture.ts): a publication and a logical replication slot
// (change-capture.ts), whose exported snapshot every session of the copy imports; the slot keeps
// the follower's start, so nothing is recorded on the target. The follower (sync/cdc-follow.ts,
// and pg-logical-replication under it) is imported when a run starts: only sync and catchup follow.
import type pg from 'pg';
import type { ChangeCaptureDriver, CaptureFollower, FollowOptions } from '../change-capture.ts';
import type { SqlSession } from '../session.ts';
import {
  CaptureBusy, CaptureRefused, captureNames, captureProblems, currentLsn, dropCapture, longTransactionOpen, openCutSnapshot, prepareCapture, slotState,
} from './change-capture.ts';
import { CutNotReached } from '../../sync/cdc-batcher.ts';
import { connectPostgres } from './connection.ts';
import { formatLsn, parseLsn } from './pgoutput.ts';
import { readRecordedPosition } from '../../sync/cdc-batcher.ts';

/**
 * The catalog checks take a driver connection and only call query(text, values), reading `.rows`:
 * a read-only session answers them the same way.
 */
function asPostgresClient(session: SqlSession): pg.Client {
  const client = { query: async (text: string, values: readonly unknown[] = []) => ({ rows: await session.query(text, values) }) };
  return client as unknown as pg.Client;
}

async function sourceHas(source: SqlSession, sql: string, name: string): Promise<boolean> {
  return (await source.query(sql, [name])).length > 0;
}

/**
 * A transaction open this long on the source server defers a cut (its slot would wait for it, and
 * the stream with it): a batch job's transaction may end soon, an idle one may last hours.
 */
const LONG_TRANSACTION_MS = 5000;

async function follow(options: FollowOptions): Promise<CaptureFollower> {
  const client = await connectPostgres(options.source.url, {
    readOnly: true, side: 'source', applicationName: options.applicationName, ...(options.source.tls ? { tls: options.source.tls } : {}),
  });
  try {
    const slot = captureNames(options.uid).slot;
    let state = await slotState(client, options.uid);
    if (!state) {
      throw new Error(`the source has no replication slot ${slot} for this migration: the copy step creates it (run step copy first); after step release it is gone and the migration must start over`);
    }
    while (state?.active && options.slotFreeBy !== undefined) {
      if (Date.now() >= options.slotFreeBy) throw new CaptureBusy(`replication slot ${slot} is still streamed by another process (a sync pod that has not stopped yet?)`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      state = await slotState(client, options.uid);
    }
    const { captureCheckpointId, followCapture } = await import('../../sync/cdc-follow.ts');
    // The target's record of what is applied is writable by the target's users: one ahead of
    // everything the source ever wrote was not written by a follower, and would skip changes.
    const recorded = await readRecordedPosition(options.target, captureCheckpointId(options.uid), parseLsn);
    const now = await currentLsn(client);
    if (recorded !== undefined && recorded > now) {
      throw new Error(`the capture position recorded on the target for this migration (${formatLsn(recorded)}) is ahead of the source's current position (${formatLsn(now)}): `
        + 'no follower wrote it (the target\'s bookkeeping table was altered?), and following from it would skip changes; the migration must start over');
    }
    const follower = await followCapture({ source: options.source, target: options.target, uid: options.uid, tables: options.tables });
    return {
      stream: follower,
      async mark() {
        const lsn = await currentLsn(client);
        return { text: formatLsn(lsn), readAt: Date.now(), reached: (timeoutMs) => follower.waitForLsn(lsn, timeoutMs) };
      },
      pendingBytes: async () => Number((await follower.lag(client)).bytes),
      appliedPosition: () => formatLsn(follower.progress().appliedLsn),
      async cut(onCut, timeoutMs) {
        // The slot would wait for it, holding the stream all the while: not now.
        const open = await longTransactionOpen(client, LONG_TRANSACTION_MS);
        if (open !== undefined) throw new CutNotReached(`a transaction (xid ${open}) has been open on the source server for over ${String(LONG_TRANSACTION_MS / 1000)} s; the cut's snapshot would wait for it to end`);
        let session: SqlSession | undefined;
        try {
          const lsn = await follower.cutAt(async (signal) => {
            const opened = await openCutSnapshot(options.source, options.uid, signal);
            if (signal.aborted) {
              await opened.session.close().catch(() => undefined);
              throw signal.reason;
            }
            session = opened.session;
            return opened.lsn;
          }, onCut, timeoutMs);
          const held = session as SqlSession;
          return { position: formatLsn(lsn), session: held, release: () => held.close() };
        } catch (error) {
          await session?.close().catch(() => undefined);
          throw error;
        }
      },
      closeSource: () => client.end(),
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

export const postgresCaptureDriver: ChangeCaptureDriver = {
  method: 'logical-decoding',
  problems: (source, tables) => captureProblems(asPostgresClient(source), tables),
  // Every session of the copy imports the exported snapshot: the copy runs as parallel as it would.
  copyWarnings: () => [],
  async earlierCapture(source, _target, uid) {
    const names = captureNames(uid);
    const inPlace = await sourceHas(source, 'SELECT 1 AS found FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1', names.slot);
    const sourceObjects = inPlace || await sourceHas(source, 'SELECT 1 AS found FROM pg_catalog.pg_publication WHERE pubname OPERATOR(pg_catalog.=) $1', names.publication);
    return { inPlace, sourceObjects };
  },
  async release(source, uid) {
    const outcome = await dropCapture(source, uid);
    return { released: outcome.problems.length === 0, slotDropped: outcome.slotDropped, publicationDropped: outcome.publicationDropped, problems: outcome.problems };
  },
  async beginSnapshot(source, _target, uid, tables) {
    let prepared: Awaited<ReturnType<typeof prepareCapture>>;
    try {
      prepared = await prepareCapture(source, uid, tables);
    } catch (error) {
      // A refusal created nothing; after anything else the publication may be left: dropped.
      if (!(error instanceof CaptureRefused)) await dropCapture(source, uid).catch(() => undefined);
      throw error;
    }
    return {
      snapshot: { kind: 'exported', name: prepared.snapshotName },
      async finish() {
        // Every session of the copy imported it long ago; the slot keeps the follower's start.
        await prepared.releaseSnapshot();
        return formatLsn(prepared.consistentPoint);
      },
      async abandon() {
        // The slot would retain WAL, and the next attempt starts over anyway.
        await prepared.releaseSnapshot();
        await dropCapture(source, uid).catch(() => undefined);
      },
    };
  },
  isRefusal: (error): error is Error => error instanceof CaptureRefused,
  follow,
};
