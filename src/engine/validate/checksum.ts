// Checksums per key range computed inside both databases, bisection of the ranges that differ,
// and the value-by-value comparison of the rows left in them (see bisect.ts for the ranges and
// canonical.ts for what is hashed). Source and target queries run at the same time.
import type { SqlSession, SqlValue } from '../db/session.ts';
import { keyAfter, sqlLiteral } from '../copy/source-query.ts';
import type { KeyValue } from '../copy/checkpoint.ts';
import {
  addToBucket, bucketCount, differingBuckets, isLeaf, levelZeroIds, levelZeroRange, levelZeroWidth, sampleIndexes,
  subRange, subWidth, type BisectTuning, type BucketFigures, type BucketMap, type HashSegment, type Segment,
} from './bisect.ts';
import { clientCanonical, hash60, hash60Sql, hashBucketSql, rowText } from './canonical.ts';
import type { RowDifference } from './report.ts';
import type { SideSql, TableCheckPlan } from './table-plan.ts';

export interface Sessions {
  source: SqlSession;
  target: SqlSession;
}

/** Opens another read-only session per side (for the first pass in parallel key ranges). */
export interface SessionOpeners {
  source: () => Promise<SqlSession>;
  target: () => Promise<SqlSession>;
}

/**
 * The sessions a validation uses: the main pair, and up to size - 1 more pairs opened on first
 * use, so the first pass over a large table reads `size` key ranges at once on each side.
 */
export class SessionPool {
  readonly main: Sessions;
  readonly size: number;
  private readonly openers: SessionOpeners | undefined;
  private readonly extra: Promise<Sessions>[] = [];

  constructor(main: Sessions, openers?: SessionOpeners, size = 1) {
    this.main = main;
    this.openers = openers;
    this.size = openers ? Math.max(1, Math.floor(size)) : 1;
  }

  /** The i-th pair (0: the main one). */
  get(i: number): Promise<Sessions> {
    const openers = this.openers;
    if (i === 0 || !openers) return Promise.resolve(this.main);
    while (this.extra.length < i) {
      this.extra.push((async () => {
        const source = await openers.source();
        try {
          return { source, target: await openers.target() };
        } catch (error) {
          await source.close();
          throw error;
        }
      })());
    }
    return this.extra[i - 1] ?? Promise.resolve(this.main);
  }

  async close(): Promise<void> {
    const opened = await Promise.allSettled(this.extra);
    for (const pair of opened) {
      if (pair.status === 'fulfilled') await Promise.allSettled([pair.value.source.close(), pair.value.target.close()]);
    }
    this.extra.length = 0;
  }
}

/** A row named by its key, as the source spells it and as the target does. */
export interface KeyedRow {
  source: readonly SqlValue[];
  target: readonly SqlValue[];
}

/** One fetched row: its key's canonical values and every compared column's canonical value. */
export interface FetchedRow {
  key: (string | null)[];
  values: (string | null)[];
}

const text = (value: SqlValue | undefined): string | null => (value === null || value === undefined ? null : typeof value === 'string' ? value : value.toString('utf8'));
const CLIENT_PAGE = 5000;

/** Rows differing between the two sides, matched by key (order does not matter). */
export function compareRows(source: readonly FetchedRow[], target: readonly FetchedRow[], columns: readonly string[]): RowDifference[] {
  const id = (row: FetchedRow): string => JSON.stringify(row.key);
  const targets = new Map(target.map((row) => [id(row), row]));
  const differences: RowDifference[] = [];
  const seen = new Set<string>();
  for (const row of source) {
    const k = id(row);
    seen.add(k);
    const other = targets.get(k);
    if (!other) {
      differences.push({ kind: 'missing', key: row.key });
      continue;
    }
    const differing = columns.filter((_, i) => (row.values[i] ?? null) !== (other.values[i] ?? null));
    if (differing.length > 0) differences.push({ kind: 'different', key: row.key, columns: differing });
  }
  for (const row of target) {
    if (!seen.has(id(row))) differences.push({ kind: 'extra', key: row.key });
  }
  return differences;
}

function whereOf(conditions: readonly string[]): string {
  return conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
}

function integerLiteral(value: bigint): string {
  return value.toString();
}

/** key BETWEEN lo AND hi on the first key column. */
function rangeCondition(side: SideSql, lo: bigint, hi: bigint): string {
  return `${side.rangeColumn} BETWEEN ${integerLiteral(lo)} AND ${integerLiteral(hi)}`;
}

/** The first-level bucket of an integer key: key DIV width (truncating, the same on both engines). */
export function levelZeroBucketSql(side: SideSql, width: bigint): string {
  return side.dialect.truncatingDivisionSql(side.rangeColumn, width, !side.rangeNumeric);
}

/** The sub-range of [lo, …] a key falls in: (key - lo) DIV width, in decimal arithmetic (no overflow). */
export function subBucketSql(side: SideSql, lo: bigint, width: bigint): string {
  return side.dialect.offsetDivisionSql(side.rangeColumn, lo, width);
}

export interface ChecksumRun {
  /** Buckets per side at the first level. */
  source: BucketMap;
  target: BucketMap;
  ranges: number;
  rangesChecked: number;
  rangesDiffering: number;
  bisectQueries: number;
  rowsCompared: number;
  differences: RowDifference[];
  differenceCount: number;
  truncated: boolean;
  /** Whether the first level covered every row (Full mode): its totals are the exact row counts. */
  complete: boolean;
}

interface Segmented {
  segment: Segment;
  rows: bigint;
}

export class TableChecksum {
  private readonly plan: TableCheckPlan;
  private readonly sessions: Sessions;
  private readonly tuning: BisectTuning;
  private readonly maxDifferences: number;
  private readonly columnNames: string[];
  private readonly sqlColumns: number[];
  private readonly clientColumns: number[];
  bisectQueries = 0;
  rowsCompared = 0;

  private readonly pool: SessionPool;

  constructor(plan: TableCheckPlan, sessions: Sessions | SessionPool, tuning: BisectTuning, maxDifferences: number) {
    this.plan = plan;
    this.pool = sessions instanceof SessionPool ? sessions : new SessionPool(sessions);
    this.sessions = this.pool.main;
    this.tuning = tuning;
    this.maxDifferences = maxDifferences;
    this.columnNames = plan.columns.map((c) => c.name);
    this.sqlColumns = plan.columns.flatMap((c, i) => (c.client ? [] : [i]));
    this.clientColumns = plan.columns.flatMap((c, i) => (c.client ? [i] : []));
  }

  private both<T>(fn: (side: SideSql, session: SqlSession) => Promise<T>): Promise<[T, T]> {
    return Promise.all([fn(this.plan.source, this.sessions.source), fn(this.plan.targetSide, this.sessions.target)]);
  }

  /** Per bucket: rows and the sum of row hashes (SQL columns), plus the client's hashes of json columns. */
  private async aggregate(side: SideSql, session: SqlSession, bucket: string, conditions: readonly string[]): Promise<BucketMap> {
    const all = [...side.conditions, ...conditions];
    const rows = await session.query(`SELECT ${bucket} AS b, count(*) AS n, sum(${hash60Sql(side.engine, side.rowText)}) AS s FROM ${side.from}${whereOf(all)} GROUP BY 1`);
    const map: BucketMap = new Map();
    for (const row of rows) addToBucket(map, text(row.b) ?? 'NULL', BigInt(text(row.n) ?? '0'), BigInt(text(row.s) ?? '0'));
    if (this.clientColumns.length > 0) await this.addClientHashes(side, session, bucket, all, map);
    return map;
  }

  /** json columns across engines: read key and values page by page, hash them here, add per bucket. */
  private async addClientHashes(side: SideSql, session: SqlSession, bucket: string, conditions: readonly string[], map: BucketMap): Promise<void> {
    const keyCount = side.keyRaw.length;
    const select = [
      `${bucket} AS b`,
      ...side.keyRaw.map((k, i) => `${k} AS r${i}`),
      ...side.keyCanonical.map((k, i) => `${k} AS k${i}`),
      ...side.clientRaw.map((c, i) => `${c} AS j${i}`),
    ].join(', ');
    let after: KeyValue[] | undefined;
    const keyNames = side.keyRaw.map((k) => k);
    for (;;) {
      const page = [...conditions, ...(after ? [keyAfterQuoted(side, keyNames, after)] : [])];
      const rows = await session.query(`SELECT ${select} FROM ${side.from}${whereOf(page)} ORDER BY ${side.keyRaw.join(', ')} LIMIT ${CLIENT_PAGE}`);
      for (const row of rows) {
        const key = side.keyCanonical.map((_, i) => text(row[`k${i}`]));
        const values = this.clientColumns.map((column, i) => ({ kind: this.plan.columns[column]?.kind ?? 'json', value: clientCanonical(this.plan.columns[column]?.kind ?? 'json', row[`j${i}`]) }));
        addToBucket(map, text(row.b) ?? 'NULL', 0n, hash60(`${JSON.stringify(key)}|${rowText(values)}`));
      }
      const last = rows.at(-1);
      if (rows.length < CLIENT_PAGE || !last) break;
      after = Array.from({ length: keyCount }, (_, i) => {
        const value = last[`r${i}`];
        return value === null || value === undefined ? '' : value;
      });
    }
  }

  /** Fetches the rows of a segment on one side, canonical. */
  private async fetch(side: SideSql, session: SqlSession, conditions: readonly string[]): Promise<FetchedRow[]> {
    const select = [
      ...side.keyCanonical.map((k, i) => `${k} AS k${i}`),
      ...side.fields.map((f, i) => `${f} AS c${i}`),
      ...side.clientRaw.map((c, i) => `${c} AS j${i}`),
    ].join(', ');
    const rows = await session.query(`SELECT ${select} FROM ${side.from}${whereOf([...side.conditions, ...conditions])}`);
    return rows.map((row) => {
      const values: (string | null)[] = new Array<string | null>(this.plan.columns.length).fill(null);
      this.sqlColumns.forEach((column, i) => { values[column] = text(row[`c${i}`]); });
      this.clientColumns.forEach((column, i) => { values[column] = clientCanonical(this.plan.columns[column]?.kind ?? 'json', row[`j${i}`]); });
      return { key: side.keyCanonical.map((_, i) => text(row[`k${i}`])), values };
    });
  }

  /** Hash bucket expressions of levels 0..depth-1 on one side. */
  private hashColumns(side: SideSql, depth: number, levels: HashLevels): string[] {
    return Array.from({ length: depth }, (_, level) => hashBucketSql(side.engine, side.keyText, level, levels.modulus(level)));
  }

  /** Rows in any of the hash segments (all of one depth): (b0, b1, …) IN ((…), …), each hash computed once per row. */
  private hashCondition(side: SideSql, segments: readonly HashSegment[], levels: HashLevels): string {
    const depth = segments[0]?.path.length ?? 0;
    const columns = this.hashColumns(side, depth, levels);
    if (depth === 1) return `${columns[0] ?? ''} IN (${segments.map((x) => x.path[0] ?? 0).join(', ')})`;
    return `(${columns.join(', ')}) IN (${segments.map((x) => `(${x.path.join(', ')})`).join(', ')})`;
  }

  /** Compares the rows of segments value by value: one range, or several hash segments of one depth at once. */
  private async compareSegments(segments: readonly Segment[], levels: HashLevels): Promise<RowDifference[]> {
    const first = segments[0];
    if (!first) return [];
    const condition = (side: SideSql): string => (first.kind === 'range'
      ? rangeCondition(side, first.lo, first.hi)
      : this.hashCondition(side, segments.filter((x) => x.kind === 'hash'), levels));
    const [source, target] = await this.both((side, session) => this.fetch(side, session, [condition(side)]));
    this.rowsCompared += source.length + target.length;
    return compareRows(source, target, this.columnNames);
  }

  /** Splits differing segments one level down (one range, or hash segments of one depth together); returns the differing parts. */
  private async split(segments: readonly Segment[], levels: HashLevels): Promise<Segmented[]> {
    const first = segments[0];
    if (!first) return [];
    this.bisectQueries++;
    if (first.kind === 'range') {
      const width = subWidth(first.lo, first.hi, this.tuning.fanout);
      const [s, t] = await this.both((side, session) => this.aggregate(side, session, subBucketSql(side, first.lo, width), [rangeCondition(side, first.lo, first.hi)]));
      return differingBuckets(s, t).map((d) => {
        const range = subRange(first.lo, first.hi, width, BigInt(d.id));
        return { segment: { kind: 'range', lo: range.lo, hi: range.hi, depth: first.depth + 1 }, rows: maxOf(d.sourceRows, d.targetRows) };
      });
    }
    const hashes = segments.filter((x) => x.kind === 'hash');
    const depth = first.path.length;
    // The bucket id is the whole path, "b0/b1/…/bn", so one query splits every segment of this depth.
    const bucket = (side: SideSql): string => {
      const columns = this.hashColumns(side, depth + 1, levels);
      return side.dialect.joinAsTextSql(columns, "'/'");
    };
    const [s, t] = await this.both((side, session) => this.aggregate(side, session, bucket(side), [this.hashCondition(side, hashes, levels)]));
    return differingBuckets(s, t).map((d) => ({
      segment: { kind: 'hash', path: d.id.split('/').map(Number), depth: first.depth + 1 },
      rows: maxOf(d.sourceRows, d.targetRows),
    }));
  }

  /**
   * Bisects differing segments down to rows, depth first (so the first differences come early
   * and the search stops at maxDifferences without reading the rest). Ranges are read one by
   * one through the key index; hash buckets (no index) are read a batch at a time, one scan each.
   */
  async locate(start: Segmented[], levels: HashLevels): Promise<{ differences: RowDifference[]; count: number; truncated: boolean }> {
    const differences: RowDifference[] = [];
    let truncated = false;
    const explore = async (segments: readonly Segmented[]): Promise<void> => {
      const leaves: Segment[] = [];
      const splits: Segment[] = [];
      for (const x of segments) (isLeaf(x.segment, Number(x.rows), this.tuning) ? leaves : splits).push(x.segment);
      const work = [...batches(leaves).map((group) => ({ leaf: true, group })), ...batches(splits).map((group) => ({ leaf: false, group }))];
      for (const { leaf, group } of work) {
        if (truncated) return;
        if (differences.length >= this.maxDifferences) {
          truncated = true; // segments left unexplored may hold more
          return;
        }
        if (leaf) differences.push(...await this.compareSegments(group, levels));
        else await explore(await this.split(group, levels));
      }
    };
    await explore(start);
    if (differences.length > this.maxDifferences) truncated = true;
    return { differences: differences.slice(0, this.maxDifferences), count: differences.length, truncated };
  }

  /**
   * The first pass over every range: one scan per side, or (a session pool) the ranges split in
   * contiguous parts read at the same time on several sessions per side.
   */
  private async levelZeroInParts(ids: readonly bigint[], rangeOf: (id: bigint) => { lo: bigint; hi: bigint }, bucket: (side: SideSql) => string): Promise<[BucketMap, BucketMap]> {
    const parts = Math.min(this.pool.size, Math.floor(ids.length / 2));
    if (parts <= 1) return this.both((side, session) => this.aggregate(side, session, bucket(side), []));
    const per = Math.ceil(ids.length / parts);
    const chunks = Array.from({ length: parts }, (_, i) => ids.slice(i * per, (i + 1) * per)).filter((chunk) => chunk.length > 0);
    const results = await Promise.all(chunks.map(async (chunk, i) => {
      const sessions = await this.pool.get(i);
      const lo = rangeOf(chunk[0] ?? 0n).lo;
      const hi = rangeOf(chunk.at(-1) ?? 0n).hi;
      return Promise.all([
        this.aggregate(this.plan.source, sessions.source, bucket(this.plan.source), [rangeCondition(this.plan.source, lo, hi)]),
        this.aggregate(this.plan.targetSide, sessions.target, bucket(this.plan.targetSide), [rangeCondition(this.plan.targetSide, lo, hi)]),
      ]);
    }));
    const source: BucketMap = new Map();
    const target: BucketMap = new Map();
    for (const [s, t] of results) {
      for (const [id, f] of s) addToBucket(source, id, f.rows, f.sum);
      for (const [id, f] of t) addToBucket(target, id, f.rows, f.sum);
    }
    return [source, target];
  }

  /** The first level (all ranges in Full mode, `samplePercent` of them in Sample mode), then bisection. */
  async run(mode: 'Full' | 'Sample', samplePercent: number, random: () => number): Promise<ChecksumRun> {
    const plan = this.plan;
    let source: BucketMap;
    let target: BucketMap;
    let ranges: number;
    let rangesChecked: number;
    let toSegment: (id: string, rows: bigint) => Segmented;
    let levels: HashLevels;
    if (plan.partitioning === 'key-range') {
      const [s, t] = await this.both(async (side, session) => {
        const [row] = await session.query(`SELECT min(${side.rangeColumn}) AS lo, max(${side.rangeColumn}) AS hi FROM ${side.from}${whereOf(side.conditions)}`);
        const lo = text(row?.lo);
        const hi = text(row?.hi);
        return lo === null || hi === null ? undefined : { lo: BigInt(lo), hi: BigInt(hi) };
      });
      const bounds = [s, t].filter((b) => b !== undefined);
      if (bounds.length === 0) return emptyRun();
      const min = bounds.map((b) => b.lo).reduce((a, b) => (a < b ? a : b));
      const max = bounds.map((b) => b.hi).reduce((a, b) => (a > b ? a : b));
      const span = max - min + 1n;
      const spanBuckets = span > BigInt(this.tuning.maxBuckets * this.tuning.bucketRows) ? this.tuning.maxBuckets : Number((span + BigInt(this.tuning.bucketRows) - 1n) / BigInt(this.tuning.bucketRows));
      const buckets = Math.min(this.tuning.maxBuckets, Math.max(bucketCount(plan.estimatedRows, this.tuning), spanBuckets));
      const width = levelZeroWidth(min, max, buckets);
      const ids = levelZeroIds(min, max, width);
      levels = hashLevels(1, this.tuning.fanout);
      ranges = ids.length;
      toSegment = (id, rows) => {
        const range = levelZeroRange(BigInt(id), width, min, max);
        return { segment: { kind: 'range', lo: range.lo, hi: range.hi, depth: 0 }, rows };
      };
      if (mode === 'Full') {
        rangesChecked = ranges;
        [source, target] = await this.levelZeroInParts(ids, (id) => levelZeroRange(id, width, min, max), (side) => levelZeroBucketSql(side, width));
      } else {
        const chosen = sampleIndexes(ids.length, samplePercent, random).map((i) => ids[i] ?? 0n);
        rangesChecked = chosen.length;
        source = new Map();
        target = new Map();
        for (let i = 0; i < chosen.length; i += 64) {
          const batch = chosen.slice(i, i + 64).map((id) => levelZeroRange(id, width, min, max));
          const [s2, t2] = await this.both((side, session) => this.aggregate(side, session, levelZeroBucketSql(side, width), [`(${batch.map((r) => rangeCondition(side, r.lo, r.hi)).join(' OR ')})`]));
          for (const [id, f] of s2) addToBucket(source, id, f.rows, f.sum);
          for (const [id, f] of t2) addToBucket(target, id, f.rows, f.sum);
        }
      }
    } else {
      let estimate = plan.estimatedRows;
      if (estimate <= 0) {
        const [row] = await this.sessions.source.query(`SELECT count(*) AS n FROM ${plan.source.from}${whereOf(plan.source.conditions)}`);
        estimate = Number(text(row?.n) ?? '0');
      }
      const buckets = bucketCount(estimate, this.tuning);
      levels = hashLevels(buckets, this.tuning.fanout);
      ranges = buckets;
      toSegment = (id, rows) => ({ segment: { kind: 'hash', path: [Number(id)], depth: 0 }, rows });
      const bucketOf = (side: SideSql): string => hashBucketSql(side.engine, side.keyText, 0, buckets);
      if (mode === 'Full') {
        rangesChecked = buckets;
        [source, target] = await this.both((side, session) => this.aggregate(side, session, bucketOf(side), []));
      } else {
        const chosen = sampleIndexes(buckets, samplePercent, random);
        rangesChecked = chosen.length;
        [source, target] = chosen.length === 0
          ? [new Map<string, BucketFigures>(), new Map<string, BucketFigures>()]
          : await this.both((side, session) => this.aggregate(side, session, bucketOf(side), [`${bucketOf(side)} IN (${chosen.join(', ')})`]));
      }
    }
    const differing = differingBuckets(source, target);
    const located = await this.locate(differing.map((d) => toSegment(d.id, maxOf(d.sourceRows, d.targetRows))), levels);
    return {
      source, target, ranges, rangesChecked, rangesDiffering: differing.length, bisectQueries: this.bisectQueries, rowsCompared: this.rowsCompared,
      differences: located.differences, differenceCount: located.count, truncated: located.truncated, complete: mode === 'Full',
    };
  }

  /**
   * Random keys of the source compared value by value with the target's rows of the same keys
   * (finds missing and different rows; extra target rows need the checksum).
   */
  async sample(rows: number): Promise<{ picked: number; differences: RowDifference[] }> {
    const { source, targetSide } = this.plan;
    const picked = await this.sessions.source.query(
      `SELECT ${[...source.keyRaw.map((k, i) => `${k} AS r${i}`), ...source.keyCanonical.map((k, i) => `${k} AS k${i}`)].join(', ')} FROM ${source.from}${whereOf(source.conditions)} ORDER BY ${source.dialect.randomSql} LIMIT ${Math.max(0, Math.floor(rows))}`,
    );
    // The target is looked up by the canonical key text (valid literal text on both engines), bytes keys by their raw value.
    const keys = picked.map((row) => ({
      source: source.keyRaw.map((_, j) => row[`r${j}`] ?? null),
      target: targetSide.keyRaw.map((_, j) => (this.plan.keyKinds[j] === 'bytes' ? row[`r${j}`] : row[`k${j}`]) ?? null),
    }));
    const differences = (await this.compareKeys(keys)).filter((d) => d.kind !== 'extra');
    return { picked: picked.length, differences };
  }

  /**
   * The rows of these keys on both sides (each key as the source and as the target spell it),
   * compared value by value: missing, extra and different rows.
   */
  async compareKeys(keys: readonly KeyedRow[]): Promise<RowDifference[]> {
    const { source, targetSide } = this.plan;
    const differences: RowDifference[] = [];
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const [s, t] = await Promise.all([
        this.fetch(source, this.sessions.source, [inList(source.keyRaw, chunk.map((k) => k.source.map((v) => literalOf(source, v))))]),
        this.fetch(targetSide, this.sessions.target, [inList(targetSide.keyRaw, chunk.map((k) => k.target.map((v) => literalOf(targetSide, v))))]),
      ]);
      this.rowsCompared += s.length + t.length;
      differences.push(...compareRows(s, t, this.columnNames));
    }
    return differences;
  }

  /** Exact row counts (a scan per side) when the checksum did not count them. */
  async counts(): Promise<[number, number]> {
    const [s, t] = await this.both(async (side, session) => {
      const [row] = await session.query(`SELECT count(*) AS n FROM ${side.from}${whereOf(side.conditions)}`);
      return Number(text(row?.n) ?? '0');
    });
    return [s, t];
  }
}

function literalOf(side: SideSql, value: SqlValue | undefined): string {
  if (value === null || value === undefined) return 'NULL';
  return sqlLiteral(side.dialect, value);
}

function inList(columns: readonly string[], keys: readonly string[][]): string {
  if (keys.length === 0) return '1 = 0';
  if (columns.length === 1) return `${columns[0] ?? ''} IN (${keys.map((k) => k[0] ?? 'NULL').join(', ')})`;
  return `(${columns.join(', ')}) IN (${keys.map((k) => `(${k.join(', ')})`).join(', ')})`;
}

/** keyAfter over already-quoted key expressions. */
function keyAfterQuoted(side: SideSql, quotedKeys: readonly string[], values: readonly KeyValue[]): string {
  const identity = { ...side.dialect, quoteIdent: (name: string) => name };
  return keyAfter(identity, quotedKeys, values);
}

/** Ranges one by one; hash segments of one depth together (at most 500 per query). */
function batches(segments: readonly Segment[]): Segment[][] {
  const groups: Segment[][] = [];
  const hashes = new Map<number, HashSegment[]>();
  for (const segment of segments) {
    if (segment.kind === 'range') groups.push([segment]);
    else {
      const group = hashes.get(segment.path.length);
      if (group) group.push(segment);
      else hashes.set(segment.path.length, [segment]);
    }
  }
  for (const group of hashes.values()) {
    for (let i = 0; i < group.length; i += 500) groups.push(group.slice(i, i + 500));
  }
  return groups;
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Moduli of the hash levels: the first-level count, then fanout. */
export interface HashLevels {
  modulus(level: number): number;
}

function hashLevels(first: number, fanout: number): HashLevels {
  return { modulus: (level) => (level === 0 ? first : Math.max(2, fanout)) };
}

function emptyRun(): ChecksumRun {
  return {
    source: new Map(), target: new Map(), ranges: 0, rangesChecked: 0, rangesDiffering: 0, bisectQueries: 0, rowsCompared: 0,
    differences: [], differenceCount: 0, truncated: false, complete: true,
  };
}

