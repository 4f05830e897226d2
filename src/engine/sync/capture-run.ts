// One change-capture follower as the sync and catch-up steps drive it, whatever the source:
// PostgreSQL's slot (cdc-follow.ts) or a MySQL/MariaDB binlog (cdc-follow-mysql.ts), with a source
// session of its own to read the source's current position. A position is read as a mark; the
// follower has caught up with a mark once everything the source committed before it is applied.
// PostgreSQL's current WAL position moves without commits of ours (other databases, checkpoints),
// so caught up is the follower's own notion: it asks the server for a keepalive, which says where
// the server is once nothing is in flight (the binlog: heartbeats while idle).
import type { CaptureMethod } from './cdc-apply.ts';
import { captureDriverFor, type CaptureFollower, type FollowOptions, type PositionMark, type SourceCut } from '../db/change-capture.ts';
import type { Engine } from '../db/dialect.ts';

export interface CaptureRun {
  readonly method: CaptureMethod;
  /** Reads the source's current position. */
  mark(): Promise<PositionMark>;
  /** Change-log bytes the source wrote past what is applied. */
  pendingBytes(): Promise<number>;
  appliedPosition(): string;
  /** A snapshot of the source, and the target cut exactly at its position (CaptureFollower.cut). */
  cut(onCut: () => Promise<void>, timeoutMs: number): Promise<SourceCut>;
  progress(): { transactions: number; changes: number };
  /** Ends following (the slot is let go); idempotent. */
  stop(): Promise<void>;
  /** Rejects when following fails; resolves once stopped. */
  readonly ended: Promise<void>;
  /** Stops, and closes the source session and the follower's target session. */
  close(): Promise<void>;
}

/**
 * `target` is closed by close(). `slotFreeBy` (PostgreSQL): wait until then for the slot to be free
 * of another process's walsender (a sync pod still stopping), else CaptureBusy; without it, the stream waits 30 s.
 */
export interface CaptureRunOptions extends FollowOptions {
  sourceEngine: Engine;
}

/** Starts following where the copy (or the last follower) left off: refused when the copy never set up the capture. */
export async function startCaptureRun(options: CaptureRunOptions): Promise<CaptureRun> {
  const driver = captureDriverFor(options.sourceEngine);
  let follower: CaptureFollower;
  try {
    follower = await driver.follow(options);
  } catch (error) {
    await options.target.close().catch(() => undefined);
    throw error;
  }
  return wrap(options, driver.method, follower);
}

function wrap(options: CaptureRunOptions, method: CaptureMethod, follower: CaptureFollower): CaptureRun {
  let closed = false;
  return {
    method,
    mark: () => follower.mark(),
    pendingBytes: () => follower.pendingBytes(),
    appliedPosition: () => follower.appliedPosition(),
    cut: (onCut, timeoutMs) => follower.cut(onCut, timeoutMs),
    progress: () => {
      const { transactions, changes } = follower.stream.progress();
      return { transactions, changes };
    },
    stop: () => follower.stream.stop(),
    ended: follower.stream.ended,
    async close() {
      if (closed) return;
      closed = true;
      await follower.stream.stop().catch(() => undefined);
      await follower.closeSource().catch(() => undefined);
      await options.target.close().catch(() => undefined);
    },
  };
}
