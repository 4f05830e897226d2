// A running copy's progress is read from its databases in the background, never inside a
// work-queue worker: a reconcile asks for a sample (at most one read in flight per migration, at
// most one started per interval) and takes the latest one that arrived, without waiting. A database
// that never answers so holds only its own migration's progress, never a worker (two such
// migrations would otherwise stall every namespace). Each read has a deadline on top of the
// sessions' own connect and statement timeouts (copy-progress.ts).
import type { ProgressSample } from './copy-progress.ts';

export interface SamplerOptions {
  /** A new read starts at most this often per migration. */
  intervalMs: number;
  /** A read still running after this long is given up on (reported, its result ignored). */
  deadlineMs: number;
  now?: () => number;
  /** A read that failed or passed its deadline. */
  onError?: (key: string, error: Error) => void;
  /**
   * Asks for a reconcile of the key: a sample arrived (the status can say it now, not at the next
   * requeue), or the next read is due (a read ended an interval ago and the key is still sampled).
   */
  wake?: (key: string) => void;
}

interface KeyState<S> {
  latest?: S;
  startedAt?: number;
  /** A read is running (it may have passed its deadline and still not settled). */
  reading: boolean;
  /** Wakes the key when its next read is due. */
  due?: NodeJS.Timeout;
}

export class DeadlineError extends Error {}

/** S: what one read brings (a copy's progress; a change stream's lag). */
export class ProgressSampler<S = ProgressSample> {
  private readonly options: SamplerOptions;
  private readonly keys = new Map<string, KeyState<S>>();

  constructor(options: SamplerOptions) {
    this.options = options;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The latest sample that arrived for this migration, if any. */
  latest(key: string): S | undefined {
    return this.keys.get(key)?.latest;
  }

  /**
   * Starts `read` in the background unless one is running or the last started within the interval.
   * Never waits for it: the result is there for a later reconcile (latest()).
   */
  request(key: string, read: (previous: S | undefined) => Promise<S>): void {
    let state = this.keys.get(key);
    if (state === undefined) {
      state = { reading: false };
      this.keys.set(key, state);
    }
    const now = this.now();
    if (state.reading || (state.startedAt !== undefined && now - state.startedAt < this.options.intervalMs)) return;
    const current = state;
    current.reading = true;
    current.startedAt = now;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => { reject(new DeadlineError(`the progress read took over ${String(this.options.deadlineMs / 1000)} s; given up`)); }, this.options.deadlineMs);
      timer.unref();
    });
    const reading = read(current.latest);
    // The read's own settling frees the slot (a read past its deadline still holds it: one per key).
    reading.then(
      (sample) => {
        current.reading = false;
        // A migration forgotten meanwhile keeps nothing.
        if (this.keys.get(key) !== current) return;
        current.latest = sample;
        this.options.wake?.(key);
        this.wakeWhenDue(key, current);
      },
      () => {
        current.reading = false;
        this.wakeWhenDue(key, current);
      },
    ).finally(() => { clearTimeout(timer); });
    Promise.race([reading, deadline]).catch((error: unknown) => {
      this.options.onError?.(key, error instanceof Error ? error : new Error(String(error)));
    });
  }

  /** The migration's copy is over, or it is gone: its samples go (a read still running is ignored when it ends). */
  forget(key: string): void {
    clearTimeout(this.keys.get(key)?.due);
    this.keys.delete(key);
  }

  /** The next read is due an interval after the last one started: the key's reconcile asks for it then. */
  private wakeWhenDue(key: string, state: KeyState<S>): void {
    if (this.keys.get(key) !== state || this.options.wake === undefined) return;
    clearTimeout(state.due);
    const wait = Math.max(0, (state.startedAt ?? 0) + this.options.intervalMs - this.now());
    state.due = setTimeout(() => { if (this.keys.get(key) === state) this.options.wake?.(key); }, wait);
    state.due.unref();
  }
}
