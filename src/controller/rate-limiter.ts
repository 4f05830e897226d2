// Requeue delays with controller-runtime's defaults: per item, exponential from 5 ms to 1000 s
// (so one broken resource backs off without slowing the rest); overall, a token bucket of
// 10 per second with a burst of 100 (so a thousand failing resources cannot flood the API server).
// The slower of the two wins.

export interface RateLimiter {
  /** Delay before the item may be processed again, counting this as one more failure. */
  when(key: string): number;
  /** The item succeeded: its backoff starts again from the base. */
  forget(key: string): void;
  failures(key: string): number;
}

export function exponentialLimiter(baseMs = 5, maxMs = 1_000_000): RateLimiter {
  const counts = new Map<string, number>();
  return {
    when(key) {
      const count = counts.get(key) ?? 0;
      counts.set(key, count + 1);
      return Math.min(maxMs, baseMs * 2 ** count);
    },
    forget: (key) => { counts.delete(key); },
    failures: (key) => counts.get(key) ?? 0,
  };
}

export function bucketLimiter(perSecond = 10, burst = 100, now: () => number = () => performance.now()): RateLimiter {
  let tokens = burst;
  let last = now();
  return {
    when() {
      const current = now();
      tokens = Math.min(burst, tokens + ((current - last) / 1000) * perSecond);
      last = current;
      tokens -= 1; // reserve a token; a negative balance is a wait
      return tokens >= 0 ? 0 : (-tokens / perSecond) * 1000;
    },
    forget: () => undefined,
    failures: () => 0,
  };
}

export function maxOfLimiters(...limiters: RateLimiter[]): RateLimiter {
  return {
    when: (key) => Math.max(...limiters.map((l) => l.when(key))),
    forget: (key) => { for (const l of limiters) l.forget(key); },
    failures: (key) => Math.max(...limiters.map((l) => l.failures(key))),
  };
}

export const defaultControllerRateLimiter = (): RateLimiter => maxOfLimiters(exponentialLimiter(), bucketLimiter());
