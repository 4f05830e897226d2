// The lag a ChangeCapture sync pod reports (capture-lag.ts): every few seconds it reads the
// source's position and gives the follower a moment to apply everything before it. Reached: the
// target was caught up when the position was read (lag 0). Not reached: the lag is the time since
// the target last was. So a follower applying within the probe's wait reads as caught up; one that
// falls further behind reads as behind from the last time it was caught up, and grows from there.
import { LAG_REPORT_INTERVAL_MS, readCaptureLag, writeCaptureLag, type CaptureLagReport } from './capture-lag.ts';
import type { CaptureRun } from './capture-run.ts';
import type { SqlSession } from '../db/session.ts';

/** How long a measurement waits for the follower to apply up to the position it read. */
export const LAG_PROBE_MS = 1500;
/** From the start of one measurement to the next: with the probe's wait, a report is never older than LAG_REPORT_INTERVAL_MS. */
export const LAG_SAMPLE_EVERY_MS = Math.min(2000, LAG_REPORT_INTERVAL_MS - LAG_PROBE_MS - 1000);

/** When the target was last caught up with the source. */
export class LagClock {
  private caughtUpAt: number;

  constructor(caughtUpAt: number) {
    this.caughtUpAt = caughtUpAt;
  }

  /** A measurement: `caughtUp` with the source position read at `markedAt`; the lag in ms it reports. */
  sample(caughtUp: boolean, markedAt: number, now: number): number {
    if (caughtUp) {
      this.caughtUpAt = Math.max(this.caughtUpAt, markedAt);
      return 0;
    }
    return Math.max(0, Math.round(now - this.caughtUpAt));
  }
}

/**
 * The clock as the last report left it (an earlier pod of this migration: the target has been
 * behind since at most when that one was last caught up), else as of now.
 */
export async function resumedLagClock(target: SqlSession, uid: string, now = Date.now()): Promise<LagClock> {
  const last = await readCaptureLag(target, uid);
  return new LagClock(last ? Math.min(now, Date.parse(last.sampledAt) - last.lagMs) : now);
}

/** Measures once: the source's position, whether the follower reaches it within `waitMs`, the lag. */
export async function measureLag(run: CaptureRun, clock: LagClock, waitMs: number): Promise<CaptureLagReport> {
  const mark = await run.mark();
  // A follower that is stopped or failed does not reach it: that is the measurement, not an error.
  const caughtUp = await mark.reached(waitMs).then(() => true, () => false);
  const now = Date.now();
  const lagMs = clock.sample(caughtUp, mark.readAt, now);
  const pendingBytes = caughtUp ? 0 : await run.pendingBytes();
  const { transactions, changes } = run.progress();
  return { appliedPosition: run.appliedPosition(), sourcePosition: mark.text, lagMs, pendingBytes, transactions, changes, sampledAt: new Date(now).toISOString() };
}

export interface LagReports {
  /** Rejects when a report cannot be measured or written. */
  readonly done: Promise<void>;
  /** Ends the reports (a measurement under way finishes first); rejects with their failure if any. */
  stop(): Promise<void>;
  /** The last report written. */
  readonly last: CaptureLagReport | undefined;
}

/** Measures and writes a report every LAG_SAMPLE_EVERY_MS until stopped (`target`: a session for the reports alone). */
export function startLagReports(run: CaptureRun, target: SqlSession, uid: string, clock: LagClock): LagReports {
  const state: { running: boolean; wake?: () => void; last?: CaptureLagReport } = { running: true };
  const running = (): boolean => state.running;
  const done = (async () => {
    while (running()) {
      const started = Date.now();
      const report = await measureLag(run, clock, LAG_PROBE_MS);
      await writeCaptureLag(target, uid, report);
      state.last = report;
      const rest = LAG_SAMPLE_EVERY_MS - (Date.now() - started);
      if (running() && rest > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, rest);
          state.wake = () => { clearTimeout(timer); resolve(); };
        });
      }
    }
  })();
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      state.running = false;
      state.wake?.();
      await done;
    },
    get last() {
      return state.last;
    },
  };
}
