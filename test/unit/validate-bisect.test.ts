// Validation's key ranges: first-level ranges of an integer key (key DIV width, truncating like
// SQL), their bounds, sub-ranges for bisection, leaves, differing buckets and sampling.
import test from 'ava';
import {
  addToBucket, bucketCount, DEFAULT_TUNING, differingBuckets, isLeaf, levelZeroIds, levelZeroRange, levelZeroWidth, sampleIndexes,
  subRange, subWidth, totalRows, truncDiv, type BucketMap,
} from '../../src/engine/validate/bisect.ts';

test('bucket count follows the table size, bounded', (t) => {
  t.is(bucketCount(0, DEFAULT_TUNING), 1);
  t.is(bucketCount(2_000_000, DEFAULT_TUNING), 1000);
  t.is(bucketCount(1e12, DEFAULT_TUNING), DEFAULT_TUNING.maxBuckets);
});

test('first-level ranges: every key falls in exactly the range of its bucket id, negatives and extremes included', (t) => {
  const min = -1000n;
  const max = 1000n;
  const width = levelZeroWidth(min, max, 7);
  t.is(width, 286n);
  const ids = levelZeroIds(min, max, width);
  const covered = new Map<bigint, bigint>();
  for (const id of ids) {
    const { lo, hi } = levelZeroRange(id, width, min, max);
    for (let k = lo; k <= hi; k++) {
      t.false(covered.has(k), `key ${k} in two ranges`);
      covered.set(k, id);
      if (truncDiv(k, width) !== id) t.fail(`key ${k}: id ${truncDiv(k, width)} ≠ ${id}`);
    }
  }
  t.is(covered.size, 2001);
  const extremes = levelZeroWidth(-(2n ** 63n), 2n ** 63n - 1n, 4);
  t.is(extremes, 2n ** 62n);
  t.deepEqual(levelZeroRange(truncDiv(2n ** 63n - 1n, extremes), extremes, -(2n ** 63n), 2n ** 63n - 1n).hi, 2n ** 63n - 1n);
  t.is(truncDiv(-7n, 5n), -1n, 'truncating toward zero like DIV');
});

test('bisection: sub-ranges split a range evenly and cover it', (t) => {
  const width = subWidth(100n, 199n, 16);
  t.is(width, 7n);
  const parts = Array.from({ length: 15 }, (_, i) => subRange(100n, 199n, width, BigInt(i)));
  t.deepEqual(parts[0], { lo: 100n, hi: 106n });
  t.deepEqual(parts.at(-1), { lo: 198n, hi: 199n });
  t.is(parts.reduce((n, p) => n + (p.hi - p.lo + 1n), 0n), 100n);
  t.is(subWidth(5n, 5n, 16), 1n);
});

test('leaves: few rows, a single key value, or the last hash level', (t) => {
  const tuning = { ...DEFAULT_TUNING, leafRows: 10 };
  t.true(isLeaf({ kind: 'range', lo: 1n, hi: 1000n, depth: 0 }, 10, tuning));
  t.false(isLeaf({ kind: 'range', lo: 1n, hi: 1000n, depth: 0 }, 11, tuning));
  t.true(isLeaf({ kind: 'range', lo: 7n, hi: 7n, depth: 3 }, 500, tuning));
  t.false(isLeaf({ kind: 'hash', path: [1, 2], depth: 1 }, 500, tuning));
  t.true(isLeaf({ kind: 'hash', path: [1, 2, 3, 4], depth: 3 }, 500, tuning));
});

test('differing buckets: counts or sums differ, buckets on one side only included, numeric order', (t) => {
  const source: BucketMap = new Map();
  const target: BucketMap = new Map();
  addToBucket(source, '10', 5n, 100n);
  addToBucket(target, '10', 5n, 100n);
  addToBucket(source, '2', 5n, 100n);
  addToBucket(target, '2', 5n, 101n);
  addToBucket(source, '-1', 1n, 7n);
  addToBucket(target, '3', 1n, 7n);
  addToBucket(target, '3', 1n, 1n);
  t.deepEqual(differingBuckets(source, target).map((d) => d.id), ['-1', '2', '3']);
  t.is(totalRows(target), 12n);
  t.deepEqual(target.get('3'), { rows: 2n, sum: 8n });
});

test('sampling: the percentage of ranges, spread over the whole table', (t) => {
  t.deepEqual(sampleIndexes(10, 100), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.deepEqual(sampleIndexes(100, 10, () => 0), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  t.is(sampleIndexes(1000, 1, () => 0.5).length, 10);
  t.is(sampleIndexes(5, 1).length, 1, 'at least one');
  t.deepEqual(sampleIndexes(0, 50), []);
});
