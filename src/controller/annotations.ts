// The annotation protocol people drive a migration with: approve (a Manual cutover), abort (a
// running migration) and retry (a failed one), read from the object. What each one does is in
// abort.ts, retry.ts and phases/awaiting-approval.ts.
import { ABORT_ANNOTATION, APPROVE_ANNOTATION, RETRY_ANNOTATION } from '../api/constants.ts';
import type { DataMigration } from '../api/types.generated.ts';

/** Whether the annotation is "true" or the current generation (the convention of approve and abort). */
function annotationSaysYes(migration: DataMigration, annotation: string): boolean {
  const value = migration.metadata?.annotations?.[annotation]?.trim();
  return value === 'true' || (value !== undefined && value === String(migration.metadata?.generation ?? 0));
}

/** Whether a Manual cutover is approved: the annotation is "true" or the current generation. */
export function isApproved(migration: DataMigration): boolean {
  return annotationSaysYes(migration, APPROVE_ANNOTATION);
}

/** Whether an abort is asked for: the abort annotation is "true" or the current generation. */
export function isAbortRequested(migration: DataMigration): boolean {
  return annotationSaysYes(migration, ABORT_ANNOTATION);
}

/** Longest retry token kept: run ids end up in Job names and label values (63 characters). */
export const MAX_RETRY_TOKEN = 8;
/** The suffix a retry adds to the run id it retries. */
const RETRY_SUFFIX = new RegExp(`-r[a-z0-9]{1,${MAX_RETRY_TOKEN}}$`);

/** The retry annotation's token: lower-cased, only a-z and 0-9, the last 8 of them (undefined when none is left). */
export function retryToken(migration: DataMigration): string | undefined {
  const value = migration.metadata?.annotations?.[RETRY_ANNOTATION];
  if (value === undefined) return undefined;
  const token = value.toLowerCase().replace(/[^a-z0-9]/g, '').slice(-MAX_RETRY_TOKEN);
  return token === '' ? undefined : token;
}

/** The run a run id retries (itself when it is not a retry): `g1-r123` → `g1`. */
export function baseRunId(runId: string): string {
  return runId.replace(RETRY_SUFFIX, '');
}
