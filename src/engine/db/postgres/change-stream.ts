// The stream of a capture's slot: pgoutput messages in commit order through pg-logical-replication's
// LogicalReplicationService (the replication connection, START_REPLICATION, CopyBoth framing,
// keepalives, flow control), decoded by our own pgoutput.ts (exact text values).
//
// How it is used, and why:
// - Flow control on: the next message waits until the handler of the previous one resolved, and
//   the socket is paused meanwhile, so memory is bounded by what the driver has read ahead.
// - No automatic acknowledgement (the library's would confirm what was received, not applied):
//   the caller acknowledges an LSN once the target committed everything before it, so a killed
//   applier resumes from the slot without loss.
// - The library reports LSN+1 as the flushed position (physical replication's "last byte + 1").
//   For a logical slot that is one byte too far: a transaction whose commit record starts right at
//   the acknowledged commit's end would be skipped on restart. acknowledge() hands it lsn - 1, so
//   the server receives exactly `lsn`; should the library stop adding 1, the server would get
//   lsn - 1 and resend at most the last applied transaction, which the applier's checkpoint skips.
import { LogicalReplicationService } from 'pg-logical-replication';
import type pg from 'pg';
import { postgresAdapter } from './adapter.ts';
import type { CaptureSource } from '../change-capture.ts';
import { replicationConfig, type CaptureNames } from './change-capture.ts';
import { formatLsn, parseLsn, PgoutputDecoder, type Lsn, type PgoutputMessage } from './pgoutput.ts';

type Plugin = Parameters<LogicalReplicationService['subscribe']>[0];

export interface ChangeStreamOptions {
  source: CaptureSource;
  names: CaptureNames;
  /** Stream from here; the server starts at the slot's confirmed position when that is later (0n: from it). */
  startLsn: Lsn;
  /** pgoutput protocol: 1 (PostgreSQL 10+) or 2 (14+); neither streams transactions in progress unless asked, and we do not. */
  protocolVersion?: 1 | 2;
  /** Each message in stream order; the next one waits for the promise. A rejection ends the stream. */
  onMessage(message: PgoutputMessage): Promise<void>;
  /**
   * The server has sent everything before `sentLsn` and every message received so far has been
   * handled: what the caller has applied is complete up to `sentLsn` (see LogicalDecoding's keepalive).
   */
  onIdle(sentLsn: Lsn): void;
  applicationName?: string;
}

export interface ChangeStream {
  /** Confirms to the server that everything before `lsn` is applied: the slot may release that WAL and resumes there. */
  acknowledge(lsn: Lsn, requestReply?: boolean): void;
  /** Asks the server for a keepalive (and so, when caught up, an onIdle). */
  requestKeepalive(): void;
  /** What was last acknowledged. */
  readonly acknowledged: Lsn;
  stop(): Promise<void>;
  /** Resolves after stop(); rejects when the stream fails (connection lost, an undecodable message, a handler's error). */
  readonly ended: Promise<void>;
}

function startStatement(names: CaptureNames, lsn: string, protocolVersion: number): string {
  const options = [`proto_version '${protocolVersion}'`, `publication_names ${postgresAdapter.quoteLiteral(names.publication)}`];
  return `START_REPLICATION SLOT ${postgresAdapter.quoteIdent(names.slot)} LOGICAL ${lsn} (${options.join(', ')})`;
}

/** Connects and starts streaming; resolves once the server accepted START_REPLICATION. */
export async function openChangeStream(options: ChangeStreamOptions): Promise<ChangeStream> {
  const decoder = new PgoutputDecoder();
  const service = new LogicalReplicationService(replicationConfig(options.source, options.applicationName ?? 'datamigration-capture'), {
    acknowledge: { auto: false, timeoutSeconds: 0 },
    flowControl: { enabled: true },
  });
  let received = 0;
  let handled = 0;
  let acknowledged = options.startLsn;
  let stopping = false;
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const ended = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
  // A failure before anyone awaits `ended` must not be an unhandled rejection.
  ended.catch(() => undefined);
  const fail = (error: Error): void => {
    if (stopping) return;
    stopping = true;
    settle?.reject(error);
    void service.stop().catch(() => undefined);
  };

  // See the header: the library adds 1 to what it is given. Before anything is acknowledged, 1 (below any slot's position) only answers.
  const send = (lsn: Lsn, requestReply: boolean): void => {
    void service.acknowledge(formatLsn(lsn > 0n ? lsn - 1n : 0n), requestReply).catch(() => undefined);
  };

  const plugin: Plugin = {
    options: {},
    name: 'pgoutput',
    // Called for each XLogData as it arrives (before the queue): counts what is not handled yet.
    parse(buffer: Buffer): PgoutputMessage {
      received++;
      return decoder.decode(buffer);
    },
    start(client: pg.Client, _slot: string, lsn: string) {
      return client.query(startStatement(options.names, lsn, options.protocolVersion ?? 1));
    },
  };

  service.on('data', async (_lsn: string, message: PgoutputMessage) => {
    if (stopping) return;
    try {
      if (message.tag === 'error') throw new Error(message.message);
      await options.onMessage(message);
      handled++;
    } catch (error) {
      fail(error instanceof Error ? error : new Error(String(error)));
    }
  });
  service.on('heartbeat', (lsn: string, _timestamp: number, shouldRespond: boolean) => {
    if (stopping) return;
    if (received === handled) options.onIdle(parseLsn(lsn));
    if (shouldRespond) send(acknowledged, false);
  });
  service.on('error', (error: Error) => { fail(error); });

  const started = new Promise<void>((resolve) => { service.once('start', () => { resolve(); }); });
  const subscribed = service.subscribe(plugin, options.names.slot, formatLsn(options.startLsn));
  subscribed.then(
    () => {
      if (stopping) settle?.resolve();
      else fail(new Error('the source server ended the replication stream'));
    },
    (error: unknown) => { fail(error instanceof Error ? error : new Error(String(error))); },
  );
  await Promise.race([started, ended]);

  return {
    acknowledge(lsn, requestReply = false) {
      if (lsn > acknowledged) acknowledged = lsn;
      send(acknowledged, requestReply);
    },
    requestKeepalive() {
      send(acknowledged, true);
    },
    get acknowledged() {
      return acknowledged;
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        await service.stop().catch(() => undefined);
        settle?.resolve();
      }
      await ended.catch(() => undefined);
    },
    ended,
  };
}
