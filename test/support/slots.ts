// A bound on how many of a file's tests run at once. ava runs a file's tests concurrently; an e2e
// test that drives a whole migration starts an operator and a pod per step, and a dozen of them
// at once on two cores make every step slow enough to hit the tests' own deadlines. A test
// wrapped here waits for a slot before it starts (its deadlines start with it).
import type { ExecutionContext } from 'ava';

export type Implementation<Context = unknown> = (t: ExecutionContext<Context>) => Promise<void>;

/** Returns a wrapper: at most `limit` wrapped implementations run at once, the others queue in order. */
export function limitConcurrency(limit: number): <Context>(implementation: Implementation<Context>) => Implementation<Context> {
  let running = 0;
  const queue: Array<() => void> = [];
  const acquire = async (): Promise<void> => {
    if (running < limit) {
      running += 1;
      return;
    }
    // The slot is handed over by release(): `running` stays as it is.
    await new Promise<void>((resolve) => { queue.push(resolve); });
  };
  const release = (): void => {
    const next = queue.shift();
    if (next) next();
    else running -= 1;
  };
  return (implementation) => async (t) => {
    await acquire();
    try {
      await implementation(t);
    } finally {
      release();
    }
  };
}
