// A work queue with client-go's guarantees: a key waiting is queued once however often it is
// added; a key being processed is never handed to a second worker, and if it was added again
// meanwhile it is queued once more when the first worker is done. Delayed and rate-limited adds
// for requeues and retries. Its metrics are client-go's (metrics.ts names them): adds, the time a
// key waited and was worked on, retries, and at scrape time the depth and the work in flight.
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.ts';

/** What the queue is at a scrape: keys waiting (client-go's depth: dirty keys), and since when each key in progress (ms). */
export interface WorkQueueState { depth: number; running: readonly number[]; now: number }

/** The queue's metric hooks, as client-go's workqueue MetricsProvider (durations in ms). */
export interface WorkQueueMetrics {
  /** Called once with a reader of the queue's state, for the gauges computed at scrape time. */
  track(read: () => WorkQueueState): void;
  added(): void;
  waited(ms: number): void;
  worked(ms: number): void;
  retried(): void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly limiter: RateLimiter;
  private readonly metrics: WorkQueueMetrics | undefined;
  private readonly clock: () => number;
  /** When each waiting key was added, and when each key in progress was handed out (ms). */
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private shuttingDown = false;

  constructor(limiter: RateLimiter = defaultControllerRateLimiter(), metrics?: WorkQueueMetrics, clock: () => number = () => performance.now()) {
    this.limiter = limiter;
    this.metrics = metrics;
    this.clock = clock;
    metrics?.track(() => ({ depth: this.dirty.size, running: [...this.startedAt.values()], now: this.clock() }));
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.metrics?.added();
    this.addedAt.set(key, this.clock());
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** A dirty key not in progress: to a waiting worker, else to the back of the queue. */
  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.handOut(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds after a delay; an earlier pending add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    this.metrics?.retried();
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: string): void {
    this.limiter.forget(key);
  }

  failures(key: string): number {
    return this.limiter.failures(key);
  }

  /** The next key to work on, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.handOut(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private handOut(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
    const now = this.clock();
    this.metrics?.waited(now - (this.addedAt.get(key) ?? now));
    this.addedAt.delete(key);
    this.startedAt.set(key, now);
  }

  done(key: string): void {
    const started = this.startedAt.get(key);
    if (started !== undefined) this.metrics?.worked(this.clock() - started);
    this.startedAt.delete(key);
    this.processing.delete(key);
    // Added again while in progress: queued now, counted and timed from that add (as client-go).
    if (!this.dirty.has(key)) return;
    if (this.shuttingDown) this.dirty.delete(key);
    else this.enqueue(key);
  }

  get length(): number {
    return this.queue.length;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }
}
