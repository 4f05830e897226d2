// The controller's work queue and rate limiters: client-go's guarantees, checked directly.
import test from 'ava';
import { bucketLimiter, exponentialLimiter, maxOfLimiters } from '../../src/controller/rate-limiter.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';

test('a key added many times while waiting is handed out once', async (t) => {
  const queue = new WorkQueue();
  for (let i = 0; i < 5; i++) queue.add('ns/a');
  queue.add('ns/b');
  t.is(queue.length, 2);
  t.is(await queue.get(), 'ns/a');
  t.is(await queue.get(), 'ns/b');
  t.is(queue.length, 0);
});

test('a key in progress is not handed to a second worker; re-added, it comes back after done', async (t) => {
  const queue = new WorkQueue();
  queue.add('ns/a');
  const first = await queue.get();
  queue.add('ns/a');
  t.is(queue.length, 0, 'not queued while processing');
  let second: string | undefined;
  const waiting = queue.get().then((key) => { second = key; });
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(second, undefined);
  queue.done(first ?? '');
  await waiting;
  t.is(second, 'ns/a');
});

test('addAfter keeps the earliest pending time and shutDown releases waiting workers', async (t) => {
  const queue = new WorkQueue();
  const keepAlive = setTimeout(() => undefined, 5000); // the queue's timers do not hold the process open
  t.teardown(() => { clearTimeout(keepAlive); });
  queue.addAfter('ns/a', 30);
  queue.addAfter('ns/a', 10_000);
  const started = Date.now();
  t.is(await queue.get(), 'ns/a');
  t.true(Date.now() - started < 1000);
  const waiting = queue.get();
  queue.shutDown();
  t.is(await waiting, undefined);
});

test('per-item backoff doubles from the base up to the cap and restarts after forget', (t) => {
  const limiter = exponentialLimiter(5, 100);
  t.deepEqual([1, 2, 3, 4, 5, 6].map(() => limiter.when('k')), [5, 10, 20, 40, 80, 100]);
  t.is(limiter.when('other'), 5);
  limiter.forget('k');
  t.is(limiter.when('k'), 5);
  t.is(limiter.failures('k'), 1);
});

test('the bucket allows a burst, then spaces requests at its rate; the slower limiter wins', (t) => {
  let now = 0;
  const bucket = bucketLimiter(10, 3, () => now);
  t.deepEqual([0, 0, 0].map(() => bucket.when('x')), [0, 0, 0]);
  t.is(Math.round(bucket.when('x')), 100);
  now += 1000;
  t.is(bucket.when('x'), 0);
  const combined = maxOfLimiters(exponentialLimiter(5, 1000), bucketLimiter(10, 100, () => 0));
  t.is(combined.when('k'), 5);
});
