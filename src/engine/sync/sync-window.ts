// Sequence mode's overlap window, measured by the wall clock: a short history of readings (when,
// the source's maximum of the incremental column then), kept in the watermark's checkpoint row.
// A round re-reads from the maximum read overlapSeconds ago, so a transaction that took a lower
// value but committed after a higher one was read is still copied if it commits within that time.
// The clock is the sync process's own; a run on another machine with a clock behind would only
// widen the window.

/** [epoch milliseconds, the maximum read then]. Time 0: the starting watermark, older than any window. */
export type Reading = [number, string];

/** Readings kept at most: dropping one only moves the window's start to an older (lower) one. */
const MAX_READINGS = 64;

/** The readings stored with a watermark; none when absent or unreadable (the window then starts at the watermark). */
export function parseHistory(stored: unknown): Reading[] {
  if (typeof stored !== 'string') return [];
  try {
    const parsed: unknown = JSON.parse(stored);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter((r): r is Reading => Array.isArray(r) && r.length === 2 && typeof r[0] === 'number' && typeof r[1] === 'string');
  } catch {
    return [];
  }
}

/** Whether sequence value `a` is above `b`; undefined when either does not read as a number. */
function above(a: string, b: string): boolean | undefined {
  const integer = /^-?\d+$/;
  if (integer.test(a) && integer.test(b)) return BigInt(a) > BigInt(b);
  const [x, y] = [Number(a), Number(b)];
  return a.trim() === '' || b.trim() === '' || Number.isNaN(x) || Number.isNaN(y) ? undefined : x > y;
}

/**
 * Where a round starts reading: the newest reading taken at or before `cutoff`, else the oldest
 * one, else the watermark; never above the watermark. A reading above it (the source's maximum
 * fell since, its top rows deleted; or a history forged in the target's checkpoint row, which the
 * target's users can write) would start the copy above rows the round found newer than the
 * watermark, and the watermark then moves past them: skipped for ever. A window only widens.
 */
export function windowStart(history: readonly Reading[], watermark: string, cutoff: number): string {
  let start: Reading | undefined;
  for (const reading of history) if (reading[0] <= cutoff && (!start || reading[0] >= start[0])) start = reading;
  const value = (start ?? history[0])?.[1] ?? watermark;
  // Values that do not compare as numbers: no window rather than a guess.
  return above(value, watermark) === false ? value : watermark;
}

/**
 * The history after a reading: the starting watermark first (time 0) when there was none, the
 * readings of the last overlapSeconds, and the newest older one (the next window's start).
 */
export function withReading(history: readonly Reading[], reading: Reading, watermark: string | null, overlapSeconds: number): Reading[] {
  const all: Reading[] = history.length === 0 && watermark !== null ? [[0, watermark]] : [...history];
  all.push(reading);
  all.sort((a, b) => a[0] - b[0]);
  const cutoff = reading[0] - overlapSeconds * 1000;
  let firstKept = 0;
  for (const [i, r] of all.entries()) if (r[0] <= cutoff) firstKept = i;
  const kept = all.slice(firstKept);
  while (kept.length > MAX_READINGS) kept.splice(1, 1);
  return kept;
}
