// Spreading a copy over the pods of an Indexed Job: which (table, shard) units each pod takes,
// how a pod learns its share, and how the operator adds the pods' results up into one.
import test from 'ava';
import type * as k8s from '@kubernetes/client-node';
import { podShareOf } from '../../src/cli/main.ts';
import { CliError } from '../../src/cli/exit-codes.ts';
import { indexedResult, mergeCopyResults, observeJob } from '../../src/controller/observe.ts';
import { parsePodShare, unitsOf, type TableSplit } from '../../src/engine/copy/units.ts';

const splits: TableSplit[] = [
  { table: 'customers', boundaries: [] },
  { table: 'orders', boundaries: ['100', '200', '300', '400', '500', '600', '700'] },
  { table: 'notes', boundaries: [] },
  { table: 'items', boundaries: ['10', '20', '30'] },
];
const key = (unit: { table: string; shard: number }): string => `${unit.table}#${String(unit.shard)}`;

test('every unit goes to exactly one pod, in the tables\' order, and the shares are even', (t) => {
  const all = unitsOf(splits, { index: 0, count: 1 }).map(key);
  t.deepEqual(all.slice(0, 3), ['customers#0', 'orders#0', 'orders#1']);
  t.is(all.length, 14);
  for (const count of [2, 3, 4, 5, 14, 20]) {
    const shares = Array.from({ length: count }, (_, index) => unitsOf(splits, { index, count }).map(key));
    t.deepEqual(shares.flat().sort(), [...all].sort(), `${String(count)} pods cover every unit once`);
    const sizes = shares.map((share) => share.length);
    t.true(Math.max(...sizes) - Math.min(...sizes) <= 1, `${String(count)} pods: ${sizes.join(',')}`);
    // Position % count: pod i of n takes units i, i + n, i + 2n, ...
    shares.forEach((share, index) => { t.deepEqual(share, all.filter((_, position) => position % count === index)); });
  }
});

test('the assignment depends on the recorded split only: the same input gives the same shares', (t) => {
  const share = unitsOf(splits, { index: 1, count: 3 });
  t.deepEqual(unitsOf(structuredClone(splits), { index: 1, count: 3 }), share);
  t.deepEqual(share.map(key), ['orders#0', 'orders#3', 'orders#6', 'items#0', 'items#3']);
  t.true(share.every((unit) => unit.shards === (splits.find((s) => s.table === unit.table)?.boundaries.length ?? 0) + 1));
  t.deepEqual(unitsOf([], { index: 0, count: 2 }), []);
});

test('a pod share is i/n with 0 <= i < n', (t) => {
  t.deepEqual(parsePodShare('1/4'), { index: 1, count: 4 });
  t.deepEqual(parsePodShare(' 0/1 '), { index: 0, count: 1 });
  for (const bad of ['4/4', '1/0', '-1/2', '1', 'a/b', '1/2/3', '']) t.is(parsePodShare(bad), undefined, bad);
});

test('dmctl step copy: --pod wins, then JOB_COMPLETION_INDEX of strategy.copyPods, else the whole copy', (t) => {
  t.deepEqual(podShareOf('step copy', '2/3', '0', 2), { index: 2, count: 3 });
  t.deepEqual(podShareOf('step copy', undefined, '1', 2), { index: 1, count: 2 });
  t.is(podShareOf('step copy', undefined, undefined, 4), undefined);
  t.is(podShareOf('run', undefined, '1', 2), undefined, 'only the copy step is shared out');
  const usage = (fn: () => unknown): void => {
    const error = t.throws(fn);
    t.true(error instanceof CliError && error.exitCode === 2, error.message);
  };
  usage(() => podShareOf('run', '0/2', undefined, 1));
  usage(() => podShareOf('step copy', '2/2', undefined, 1));
  usage(() => podShareOf('step copy', undefined, '2', 2));
});

function pod(index: number, finishedAt: string, message: string, exitCode = 0): k8s.V1Pod {
  return {
    metadata: { name: `copy-${String(index)}-${finishedAt}`, annotations: { 'batch.kubernetes.io/job-completion-index': String(index) } },
    status: { containerStatuses: [{ name: 'engine', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, finishedAt: new Date(finishedAt), message } } }] },
  };
}

const share = (index: number, rows: Record<string, number>, extra: Record<string, unknown> = {}): string => JSON.stringify({
  pod: { index, count: 2 }, tables: Object.entries(rows).map(([name, rowsCopied]) => ({ name, target: name, state: 'Copied', rowsCopied })),
  rowsThisRun: Object.values(rows).reduce((a, b) => a + b, 0), postCopy: index === 1 ? 'ran' : 'pending', postCopyStatements: index === 1 ? 3 : 0, ...extra,
});

test('an Indexed copy Job\'s result: the newest succeeded pod of each index, rows summed per table', (t) => {
  const pods = [
    pod(0, '2026-01-01T00:00:05Z', share(0, { orders: 400, customers: 10 })),
    pod(0, '2026-01-01T00:00:01Z', share(0, { orders: 999 })), // an earlier attempt of index 0
    pod(1, '2026-01-01T00:00:04Z', 'boom', 1), // a failed attempt of index 1, retried
    pod(1, '2026-01-01T00:00:06Z', share(1, { orders: 600 })),
  ];
  const result = indexedResult(pods) as Record<string, unknown>;
  t.deepEqual(result.tables, [
    { name: 'orders', target: 'orders', state: 'Copied', rowsCopied: 1000 },
    { name: 'customers', target: 'customers', state: 'Copied', rowsCopied: 10 },
  ]);
  t.is(result.rowsThisRun, 1010);
  t.is(result.postCopyStatements, 3);
  t.deepEqual(result.pods, [{ pod: { index: 0, count: 2 }, rowsThisRun: 410, postCopy: 'pending' }, { pod: { index: 1, count: 2 }, rowsThisRun: 600, postCopy: 'ran' }]);

  const job: k8s.V1Job = {
    metadata: { name: 'm-g1-copy', uid: 'job-uid', labels: { 'dataops.dev/step': 'copy', 'dataops.dev/run': 'g1' } },
    spec: { completionMode: 'Indexed', completions: 2, template: {} },
    status: { conditions: [{ type: 'Complete', status: 'True' }] },
  };
  // The Job controller's pods carry its controller reference (only those are read: test/unit/pod-policy.test.ts).
  const owned = pods.map((p) => {
    const copy = structuredClone(p);
    copy.metadata = { name: p.metadata?.name ?? '', annotations: p.metadata?.annotations ?? {}, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'm-g1-copy', uid: 'job-uid', controller: true }] };
    return copy;
  });
  t.deepEqual(observeJob(job, owned)?.result, result);
  t.is(indexedResult([]), undefined);
  t.is(indexedResult([pod(0, '2026-01-01T00:00:05Z', 'not json')]), 'pod 0: not json', 'decide() reports it as unreadable');
});

test('merging keeps the worst table state, a truncation, and passes malformed tables on', (t) => {
  const merged = mergeCopyResults([
    { tables: [{ name: 'a', state: 'Copied', rowsCopied: 1 }, 'junk'], rowsThisRun: 1 },
    { tables: [{ name: 'a', state: 'Failed', rowsCopied: 2, message: 'disk full' }], rowsThisRun: -5, truncated: true },
  ]);
  t.deepEqual(merged.tables, [{ name: 'a', state: 'Failed', rowsCopied: 3, message: 'disk full' }, 'junk']);
  t.is(merged.rowsThisRun, 1);
  t.true(merged.truncated);
});

test('merging adds up the pods\' zero dates per column and keeps each warning once', (t) => {
  const merged = mergeCopyResults([
    { tables: [], zeroDates: { 'orders.created': 2 }, warnings: ['orders.x: lossy'] },
    { tables: [], zeroDates: { 'orders.created': 3, 'items.made': 1 }, warnings: ['orders.x: lossy', 'items.y: lossy'] },
    { tables: [] },
  ]);
  t.deepEqual(merged.zeroDates, { 'orders.created': 5, 'items.made': 1 });
  t.deepEqual(merged.warnings, ['orders.x: lossy', 'items.y: lossy']);
});
