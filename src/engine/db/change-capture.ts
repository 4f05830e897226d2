// Change capture (strategy.incremental.mode ChangeCapture) as the engine asks it of a source,
// whatever the database: what the source must allow, what an earlier attempt left, the snapshot
// the copy reads in, the follower that starts where that snapshot ends, and what to drop at the
// end. Each engine declares it once (postgres/capture-driver.ts: a slot and a publication, an
// exported snapshot; mysql/capture-driver.ts: a binlog reader, one connection holding the
// snapshot); captureDriverFor is the only place that picks one by the engine's name.
// The followers' modules (and their stream libraries) are loaded by the drivers when first needed,
// so the commands that never follow do not load them.
import type { SourceSnapshot } from '../copy/copy-shard.ts';
import type { CaptureMethod, CaptureTable } from '../sync/cdc-apply.ts';
import type { Engine } from './dialect.ts';
import { mysqlCaptureDriver } from './mysql/capture-driver.ts';
import { postgresCaptureDriver } from './postgres/capture-driver.ts';
import type { SqlSession, TlsOptions } from './session.ts';

/** The source a capture connects to. */
export interface CaptureSource {
  url: string;
  tls?: TlsOptions;
}

/** A table to capture, as the source names it, and the key the target matches rows by (source column names). */
export interface CapturedTableSpec {
  schema: string;
  name: string;
  key: readonly string[];
}
export { CaptureBusy } from './postgres/change-capture.ts';

/** What an earlier attempt of this migration's capture left. */
export interface EarlierCapture {
  /** The capture the copy was made for is still there for a follower to start from. */
  inPlace: boolean;
  /** Something of it on the source (PostgreSQL's slot or publication), to drop before starting over. */
  sourceObjects: boolean;
}

/** The capture's snapshot, begun for the copy: every table of the copy reads `snapshot`. */
export interface CaptureSnapshot {
  readonly snapshot: SourceSnapshot;
  /** The copy is done: records where the follower starts if the source does not keep it, lets go of the snapshot, returns that start. */
  finish(): Promise<string>;
  /** The copy failed: lets go of the snapshot and drops what the capture created (best effort, never throws). */
  abandon(): Promise<void>;
}

export interface CaptureRelease {
  /** Nothing of the capture is left on the source. */
  released: boolean;
  slotDropped?: boolean;
  publicationDropped?: boolean;
  problems: string[];
}

/** The source's position when it was read, and the wait for the follower to apply everything before it. */
export interface PositionMark {
  readonly text: string;
  /** When it was read (ms since the epoch). */
  readonly readAt: number;
  /** Resolves once everything the source committed before the mark is applied; rejects on timeout, failure or stop. */
  reached(timeoutMs: number): Promise<void>;
}

export interface FollowOptions {
  source: CaptureSource;
  /** A writable target session for the follower alone (the caller closes it). */
  target: SqlSession;
  uid: string;
  tables: readonly CaptureTable[];
  applicationName: string;
  /** Wait until then (ms since the epoch) for the capture to be free of another process's follower, else CaptureBusy. */
  slotFreeBy?: number;
}

/** The follower itself: sync/cdc-follow.ts's or sync/cdc-follow-mysql.ts's, as a run drives it. */
export interface FollowedStream {
  progress(): { transactions: number; changes: number };
  /** Ends following (the source lets go of it); idempotent. */
  stop(): Promise<void>;
  /** Rejects when following fails; resolves once stopped. */
  readonly ended: Promise<void>;
}

/** A snapshot of the source the target was cut at (CaptureFollower.cut). */
export interface SourceCut {
  /** The snapshot's position: it holds every transaction the source committed before it, none after. */
  readonly position: string;
  /** A read-only source session inside the snapshot. */
  readonly session: SqlSession;
  /** Ends the snapshot and its session. */
  release(): Promise<void>;
}

/** A follower applying the source's changes, and what is read on a source session of its own. */
export interface CaptureFollower {
  readonly stream: FollowedStream;
  /**
   * Takes a snapshot of the source and cuts the target exactly at its position while following
   * goes on (sync/cdc-batcher.ts cutAt): `onCut` runs once the target holds everything the source
   * committed before it and nothing after. Rejects, with nothing left open, when it cannot.
   */
  cut(onCut: () => Promise<void>, timeoutMs: number): Promise<SourceCut>;
  /** Reads the source's current position. */
  mark(): Promise<PositionMark>;
  /** Change-log bytes the source wrote past what is applied. */
  pendingBytes(): Promise<number>;
  appliedPosition(): string;
  /** Closes the session positions are read on. */
  closeSource(): Promise<void>;
}

export interface ChangeCaptureDriver {
  /** How the follower reads changes (what the applier expects of each table). */
  readonly method: CaptureMethod;
  /** Why these tables cannot be followed on this source (empty: they can); catalog reads on a read-only session. */
  problems(source: SqlSession, tables: readonly CapturedTableSpec[]): Promise<string[]>;
  /** What the copy does differently when it reads the capture's snapshot. */
  copyWarnings(parallelism: number): string[];
  /** Whether an earlier attempt left a capture (`source`: read-only, `target`: the checkpoints). */
  earlierCapture(source: SqlSession, target: SqlSession, uid: string): Promise<EarlierCapture>;
  /** Drops what the capture keeps on the source; idempotent. */
  release(source: CaptureSource, uid: string): Promise<CaptureRelease>;
  /**
   * Starts the capture and the snapshot the copy reads in (`target`: where a start the source
   * does not keep is recorded). A prerequisite found missing throws an error isRefusal() knows,
   * nothing created; after any other failure nothing it created is left.
   */
  beginSnapshot(source: CaptureSource, target: SqlSession, uid: string, tables: readonly CapturedTableSpec[]): Promise<CaptureSnapshot>;
  /** A prerequisite checked again as the capture starts, found missing. */
  isRefusal(error: unknown): error is Error;
  /** Starts following where the copy (or the last follower) left off; refused when the copy never set up the capture. */
  follow(options: FollowOptions): Promise<CaptureFollower>;
}

const DRIVERS: Record<Engine, ChangeCaptureDriver> = { postgres: postgresCaptureDriver, mysql: mysqlCaptureDriver };

export function captureDriverFor(engine: Engine): ChangeCaptureDriver {
  return DRIVERS[engine];
}

/** The source a capture connects to, as an endpoint names it. */
export const captureSourceOf = (endpoint: { url: string; tls?: TlsOptions }): CaptureSource => ({ url: endpoint.url, ...(endpoint.tls ? { tls: endpoint.tls } : {}) });
