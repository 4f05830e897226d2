// How far a ChangeCapture sync is behind its source, as the sync pod last measured it. The pod
// writes it into the target's checkpoint table (a row of its own, beside the capture's position)
// every few seconds; the operator reads it with its read-only progress session, so lag reaches
// status and metrics without the engine pods needing any Kubernetes access.
import { captureOwner, readCheckpointJson, writeCheckpointJson, type CheckpointId } from '../copy/checkpoint.ts';
import type { SqlSession } from '../db/session.ts';

export interface CaptureLagReport {
  /** The source position (LSN, or binlog file:position) up to which every change is on the target. */
  appliedPosition: string;
  /** The source's own position when measured. */
  sourcePosition: string;
  /** 0 when everything the source committed is applied, else milliseconds since the target was last caught up. */
  lagMs: number;
  /** Change-log bytes written by the source and not applied yet. */
  pendingBytes: number;
  /** Source transactions and row changes applied by the pod that wrote this. */
  transactions: number;
  changes: number;
  /** When measured (ISO 8601). */
  sampledAt: string;
}

/** Seconds a report may age before the operator says the sync pod stopped reporting. */
export const LAG_REPORT_INTERVAL_MS = 5_000;

const captureLagId = (uid: string): CheckpointId => ({ migration: captureOwner(uid), table: 'lag', shard: 0 });

export async function writeCaptureLag(target: SqlSession, uid: string, report: CaptureLagReport): Promise<void> {
  await writeCheckpointJson(target, captureLagId(uid), report, report.changes);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isText = (value: unknown, max: number): value is string => typeof value === 'string' && value.length <= max;

/** The last report, or undefined when none was written or it cannot be read as one (never a guess). */
export async function readCaptureLag(target: SqlSession, uid: string): Promise<CaptureLagReport | undefined> {
  const r = await readCheckpointJson(target, captureLagId(uid));
  if (r === undefined) return undefined;
  if (!isText(r.appliedPosition, 128) || !isText(r.sourcePosition, 128) || !isCount(r.lagMs) || !isCount(r.pendingBytes)
    || !isCount(r.transactions) || !isCount(r.changes) || !isText(r.sampledAt, 64) || Number.isNaN(Date.parse(r.sampledAt))) return undefined;
  return {
    appliedPosition: r.appliedPosition, sourcePosition: r.sourcePosition, lagMs: r.lagMs, pendingBytes: r.pendingBytes,
    transactions: r.transactions, changes: r.changes, sampledAt: r.sampledAt,
  };
}

