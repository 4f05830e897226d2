// The annotation protocol people (and their tools: kubectl-dm, Argo CD actions) use to steer a
// DataMigration, written as the merge patches that carry it. The operator's side of the protocol
// is in src/controller/decide.ts (isApproved, isAbortRequested, retryToken); this module only
// builds requests that it accepts.
import { randomBytes } from 'node:crypto';
import { ABORT_ANNOTATION, APPROVE_ANNOTATION, RETRY_ANNOTATION } from './constants.ts';

/** Longest retry token the operator keeps (run ids end up in Job names and label values). */
export const RETRY_TOKEN_LENGTH = 8;

/** A JSON merge patch (RFC 7386) of a DataMigration: null deletes a key. */
export interface MigrationPatch {
  metadata?: { annotations: Record<string, string | null> };
  spec?: { suspend: boolean };
}

/** The token the operator reads from a retry annotation's value: a-z and 0-9 lower-cased, the last 8 (undefined when none is left). */
export function normalizeRetryToken(value: string): string | undefined {
  const token = value.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-RETRY_TOKEN_LENGTH);
  return token === '' ? undefined : token;
}

/** A fresh retry token: the time in base 36 (so later retries sort later) and random characters, 8 in all. */
export function newRetryToken(now: Date = new Date(), random: Buffer = randomBytes(4)): string {
  const time = Math.floor(now.getTime() / 1000).toString(36).slice(-5);
  const noise = random.readUInt32BE(0).toString(36).padStart(3, '0').slice(-3);
  return `${time}${noise}`.padStart(RETRY_TOKEN_LENGTH, '0').slice(-RETRY_TOKEN_LENGTH);
}

/**
 * Approves the Manual cutover of this generation only: the operator accepts "true" or the current
 * generation, and naming the generation keeps a later spec change from riding on an old approval.
 */
export function approvePatch(generation: number): MigrationPatch {
  return { metadata: { annotations: { [APPROVE_ANNOTATION]: String(generation) } } };
}

/** Aborts the running migration (Failed, reason Aborted); like approve, pinned to the generation. */
export function abortPatch(generation: number): MigrationPatch {
  return { metadata: { annotations: { [ABORT_ANNOTATION]: String(generation) } } };
}

/** Retries the failed step under a new token; a set abort annotation would refuse the retry, so it goes. */
export function retryPatch(token: string): MigrationPatch {
  const normalized = normalizeRetryToken(token);
  if (normalized === undefined) throw new Error(`retry token ${JSON.stringify(token)} has no a-z or 0-9 character`);
  return { metadata: { annotations: { [RETRY_ANNOTATION]: normalized, [ABORT_ANNOTATION]: null } } };
}

/** Pauses (true) or resumes (false) the migration through spec.suspend. */
export function suspendPatch(suspend: boolean): MigrationPatch {
  return { spec: { suspend } };
}
