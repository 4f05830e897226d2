// Planning of the key ranges that checksums compare, and of their bisection (pure: no I/O).
//
// Integer first key column: ranges of key values. The first pass groups the whole table by
// `key DIV width` (truncating division, the same on both engines), one scan per side; a range
// whose count or checksum differs is split into `fanout` equal sub-ranges, each pass reading
// only that range through the key index, until a range holds few enough rows to fetch and
// compare value by value.
//
// Any other key (text, uuid, dates, composite keys starting with one): the engines order text
// differently (collations), so ranges of values would not hold the same rows on both sides.
// Rows are bucketed by a hash of the key's canonical text instead: 32-bit slices of its sha256,
// modulo the bucket count at the first level and modulo `fanout` at each further level.

export interface RangeSegment {
  kind: 'range';
  /** Inclusive bounds of the first key column. */
  lo: bigint;
  hi: bigint;
  depth: number;
}

export interface HashSegment {
  kind: 'hash';
  /** Bucket at each level: path[0] modulo the first-level count, then modulo fanout. */
  path: number[];
  depth: number;
}

export type Segment = RangeSegment | HashSegment;

export interface BisectTuning {
  /** Rows per first-level range (default 2,000). */
  bucketRows: number;
  /** A range with at most this many rows (on the larger side) is compared row by row (default 256). */
  leafRows: number;
  /** Sub-ranges per split (default 16). */
  fanout: number;
  /** Most first-level ranges (default 20,000). */
  maxBuckets: number;
}

export const DEFAULT_TUNING: BisectTuning = { bucketRows: 2000, leafRows: 256, fanout: 16, maxBuckets: 20_000 };

/** Hash bucketing uses four 32-bit slices of the key's sha256: four levels. */
export const HASH_LEVELS = 4;

/** How many first-level ranges for a table of about `rows` rows. */
export function bucketCount(rows: number, tuning: BisectTuning): number {
  return Math.max(1, Math.min(tuning.maxBuckets, Math.ceil(Math.max(0, rows) / Math.max(1, tuning.bucketRows))));
}

/** The first-level range width covering [min, max] with about `buckets` ranges (at least 1). */
export function levelZeroWidth(min: bigint, max: bigint, buckets: number): bigint {
  if (max < min) return 1n;
  const span = max - min + 1n;
  const count = BigInt(Math.max(1, buckets));
  const width = (span + count - 1n) / count;
  return width < 1n ? 1n : width;
}

/** Truncating division, as SQL's DIV and PostgreSQL's integer "/" compute it. */
export function truncDiv(value: bigint, divisor: bigint): bigint {
  return value / divisor; // BigInt division truncates toward zero
}

/** The key interval of first-level bucket `id` (= key DIV width), clipped to [min, max]. */
export function levelZeroRange(id: bigint, width: bigint, min: bigint, max: bigint): { lo: bigint; hi: bigint } {
  let lo: bigint;
  let hi: bigint;
  if (id > 0n) {
    lo = id * width;
    hi = id * width + width - 1n;
  } else if (id < 0n) {
    lo = id * width - width + 1n;
    hi = id * width;
  } else {
    lo = -(width - 1n);
    hi = width - 1n;
  }
  return { lo: lo < min ? min : lo, hi: hi > max ? max : hi };
}

/** The width of the sub-ranges of [lo, hi] split `fanout` ways. */
export function subWidth(lo: bigint, hi: bigint, fanout: number): bigint {
  const span = hi - lo + 1n;
  const parts = BigInt(Math.max(2, fanout));
  const width = (span + parts - 1n) / parts;
  return width < 1n ? 1n : width;
}

/** Sub-range `index` (= (key - lo) DIV width) of [lo, hi]. */
export function subRange(lo: bigint, hi: bigint, width: bigint, index: bigint): { lo: bigint; hi: bigint } {
  const start = lo + index * width;
  const end = start + width - 1n;
  return { lo: start, hi: end > hi ? hi : end };
}

/** Whether a differing segment is compared row by row instead of split again. */
export function isLeaf(segment: Segment, rows: number, tuning: BisectTuning): boolean {
  if (rows <= tuning.leafRows) return true;
  if (segment.kind === 'range') return segment.hi <= segment.lo;
  return segment.path.length >= HASH_LEVELS;
}

/** Per first-level bucket: rows and checksum on one side. */
export interface BucketFigures {
  rows: bigint;
  sum: bigint;
}

export type BucketMap = Map<string, BucketFigures>;

/** Adds figures into a bucket map (client-side json checksums join the SQL ones this way). */
export function addToBucket(map: BucketMap, id: string, rows: bigint, sum: bigint): void {
  const current = map.get(id);
  if (current) {
    current.rows += rows;
    current.sum += sum;
  } else {
    map.set(id, { rows, sum });
  }
}

export interface BucketDifference {
  id: string;
  sourceRows: bigint;
  targetRows: bigint;
}

/** Buckets whose rows or checksum differ, in a stable order (numeric ids numerically). */
export function differingBuckets(source: BucketMap, target: BucketMap): BucketDifference[] {
  const ids = new Set([...source.keys(), ...target.keys()]);
  const result: BucketDifference[] = [];
  for (const id of ids) {
    const s = source.get(id) ?? { rows: 0n, sum: 0n };
    const t = target.get(id) ?? { rows: 0n, sum: 0n };
    if (s.rows !== t.rows || s.sum !== t.sum) result.push({ id, sourceRows: s.rows, targetRows: t.rows });
  }
  return result.sort((a, b) => compareIds(a.id, b.id));
}

function compareIds(a: string, b: string): number {
  if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Total rows over a bucket map. */
export function totalRows(map: BucketMap): bigint {
  let rows = 0n;
  for (const figures of map.values()) rows += figures.rows;
  return rows;
}

/**
 * `percent` of `count` items (at least one when count > 0), spread over the whole range: the
 * i-th of every stride, starting at a random offset, so a sample sees every part of the table.
 */
export function sampleIndexes(count: number, percent: number, random: () => number = Math.random): number[] {
  if (count <= 0 || percent <= 0) return [];
  if (percent >= 100) return Array.from({ length: count }, (_, i) => i);
  const wanted = Math.max(1, Math.round((count * percent) / 100));
  const stride = count / wanted;
  const offset = random() * stride;
  const picked = new Set<number>();
  for (let i = 0; i < wanted; i++) picked.add(Math.min(count - 1, Math.floor(offset + i * stride)));
  return [...picked].sort((a, b) => a - b);
}

/** First-level bucket ids of an integer key's range: every id `key DIV width` takes for keys in [min, max]. */
export function levelZeroIds(min: bigint, max: bigint, width: bigint): bigint[] {
  if (max < min) return [];
  const first = truncDiv(min, width);
  const last = truncDiv(max, width);
  const ids: bigint[] = [];
  for (let id = first; id <= last; id++) ids.push(id);
  return ids;
}
