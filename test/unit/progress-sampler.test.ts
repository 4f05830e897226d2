// The background progress reads: at most one per interval and key, and each sample that arrives
// wakes its migration's reconcile (the status says it then, not at the next requeue); a failed
// read, or one for a migration forgotten meanwhile, wakes nothing.
import test from 'ava';
import type { ProgressSample } from '../../src/controller/copy-progress.ts';
import { ProgressSampler } from '../../src/controller/progress-sampler.ts';

const sample = (rows: number): ProgressSample => ({ progress: { rowsCopied: rows }, rows, at: rows });
const settle = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve); });

test('each sample that arrives wakes its key once; within the interval no new read starts', async (t) => {
  let now = 0;
  const woken: string[] = [];
  const sampler = new ProgressSampler({ intervalMs: 1000, deadlineMs: 5000, now: () => now, wake: (key) => { woken.push(key); } });
  let reads = 0;
  const read = (): Promise<ProgressSample> => Promise.resolve(sample(++reads * 10));
  sampler.request('shop/a', read);
  await settle();
  t.deepEqual(woken, ['shop/a']);
  t.is(sampler.latest('shop/a')?.rows, 10);
  now = 500;
  sampler.request('shop/a', read);
  await settle();
  t.is(reads, 1, 'within the interval: no read');
  t.deepEqual(woken, ['shop/a']);
  now = 1000;
  sampler.request('shop/a', read);
  await settle();
  t.deepEqual(woken, ['shop/a', 'shop/a']);
  t.is(sampler.latest('shop/a')?.rows, 20);
});

test('a failed read and a read for a forgotten migration wake nothing', async (t) => {
  const woken: string[] = [];
  const errors: string[] = [];
  const sampler = new ProgressSampler({ intervalMs: 0, deadlineMs: 5000, wake: (key) => { woken.push(key); }, onError: (key) => { errors.push(key); } });
  sampler.request('shop/failing', () => Promise.reject(new Error('connection refused')));
  let finish: (value: ProgressSample) => void = () => undefined;
  sampler.request('shop/gone', () => new Promise((resolve) => { finish = resolve; }));
  sampler.forget('shop/gone');
  finish(sample(5));
  await settle();
  t.deepEqual(woken, []);
  t.deepEqual(errors, ['shop/failing']);
  t.is(sampler.latest('shop/gone'), undefined);
});

test('an interval after a read started, its key is woken for the next read; forgetting the key stops that', async (t) => {
  const woken: string[] = [];
  const sampler = new ProgressSampler({ intervalMs: 30, deadlineMs: 5000, wake: (key) => { woken.push(key); } });
  sampler.request('shop/a', () => Promise.resolve(sample(1)));
  sampler.request('shop/b', () => Promise.resolve(sample(2)));
  await settle();
  t.deepEqual(woken.sort(), ['shop/a', 'shop/b'], 'the samples arrived');
  sampler.forget('shop/b');
  await new Promise((resolve) => { setTimeout(resolve, 80); });
  t.deepEqual(woken.sort(), ['shop/a', 'shop/a', 'shop/b'], 'a is due again; b, forgotten, is not');
});
