// What the ChangeCapture decision tests share (test/unit/controller-capture.test.ts, attack-16.test.ts):
// a migration with a ScaleDown fence, its Jobs and observations as the reconciler would gather
// them, and one decision as the reconciler makes it (the preflight only when something may start).
import { FENCE_RECORD_ANNOTATION } from '../../src/api/constants.ts';
import type { Step } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationSpec } from '../../src/api/types.generated.ts';
import { findCondition } from '../../src/controller/conditions.ts';
import { decide, preflightNeeded } from '../../src/controller/decide.ts';
import type { Action, CaptureObservation, Decision, ObservedFenceDeployment, ObservedJob } from '../../src/controller/decide.ts';
import { observedService, switchedService } from './cutover-service.ts';

export const UID = '0f8fad5b-d9cb-469f-a165-70867728950e';
export const OTHER_UID = 'aa1f3a52-1b7e-4c3e-9a43-2f8e0d1b9a10';
export const T0 = '2025-01-01T00:00:00Z';
export const at = (seconds: number): string => new Date(Date.parse(T0) + seconds * 1000).toISOString();
export const BLUE = { app: 'orders', track: 'blue' };
export const CUTOVER = { service: 'orders-api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } };
type Cutover = NonNullable<DataMigrationSpec['cutover']>;

/** PostgreSQL → PostgreSQL, ChangeCapture, a ScaleDown fence on orders-blue (120 s), maxLagSeconds 2; `extra` overrides the cutover's fields. */
export function captureSpec(extra: Partial<Cutover> = {}): DataMigrationSpec {
  return {
    source: { engine: 'postgres', secretRef: { name: 'src', key: 'url' } }, target: { engine: 'postgres', secretRef: { name: 'dst', key: 'url' } },
    strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } }, validation: {}, rollback: {},
    cutover: { ...CUTOVER, maxLagSeconds: 2, fence: { type: 'ScaleDown', deployment: 'orders-blue', timeoutSeconds: 120 }, ...extra },
  };
}

export function captureMigration(s: DataMigrationSpec = captureSpec(), annotations: Record<string, string> = {}): DataMigration {
  return { apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop', uid: UID, generation: 1, annotations }, spec: s };
}

export const job = (step: Step, state: ObservedJob['state'], result?: unknown, extra: Partial<ObservedJob> = {}): ObservedJob =>
  ({ name: `orders-g1-${step}`, step, runId: 'g1', state, ...(result !== undefined ? { result } : {}), ...extra });
/** The blue Deployment, consenting to this migration: 3 replicas, 3 pods. */
export const blue = (extra: Partial<ObservedFenceDeployment> = {}): ObservedFenceDeployment =>
  ({ replicas: 3, pods: 3, resourceVersion: '10', annotations: { 'dataops.dev/cutover-by': 'orders' }, ...extra });
/** Blue as this migration's fence left it: 0 replicas, its record, `pods` still ending. */
export const fenced = (pods = 0, extra: Partial<ObservedFenceDeployment> = {}): ObservedFenceDeployment =>
  blue({ replicas: 0, pods, resourceVersion: '11', annotations: { 'dataops.dev/cutover-by': 'orders', [FENCE_RECORD_ANNOTATION]: JSON.stringify({ uid: UID, run: 'g1', replicas: 3 }) }, ...extra });
export const lag = (lagMs: number, sampledAt = T0): NonNullable<CaptureObservation['lag']> =>
  ({ appliedPosition: '0/16B3748', lagMs, pendingBytes: lagMs * 10, transactions: 40, changes: 120, sampledAt });
export const copied = job('copy', 'Succeeded', { tables: [{ name: 'orders', rowsCopied: 10 }] });
export const runningSync = job('sync', 'Running');

export interface Seen { jobs?: ObservedJob[]; capture?: Partial<CaptureObservation>; now?: string; switched?: boolean }

/** One decision as the reconciler makes it, and the migration as it would be after the status write. */
export function step(m: DataMigration, seen: Seen = {}): { d: Decision; m: DataMigration } {
  const service = seen.switched === true ? switchedService(BLUE, CUTOVER, { name: 'orders', uid: UID, runId: 'g1' }) : observedService(BLUE);
  const base = { migration: m, jobs: seen.jobs ?? [], service, capture: { syncPods: 0, ...seen.capture }, now: seen.now ?? T0 };
  const d = decide(preflightNeeded(base) ? { ...base, preflight: { missing: [] } } : base);
  return { d, m: { ...m, status: d.status } };
}

/** A copy with these annotations (V1ObjectMeta is a class type: no spreading). */
export function annotated(m: DataMigration, annotations: Record<string, string>): DataMigration {
  const copy = structuredClone(m);
  copy.metadata ??= {};
  copy.metadata.annotations = annotations;
  return copy;
}

export const kinds = (d: Decision): string[] => d.actions.map((a) => (a.kind === 'event' ? `event:${a.reason}` : a.kind === 'createJob' ? `createJob:${a.step}` : a.kind));
export const scaleOf = (d: Decision): Extract<Action, { kind: 'scaleDeployment' }> | undefined => d.actions.find((a): a is Extract<Action, { kind: 'scaleDeployment' }> => a.kind === 'scaleDeployment');
export const ready = (d: Decision) => findCondition(d.status.conditions, 'Ready');

/** A migration whose copy is done and whose sync Job was asked for (Syncing, or AwaitingApproval when Manual). */
export function syncing(s: DataMigrationSpec = captureSpec(), annotations: Record<string, string> = {}): DataMigration {
  let m = captureMigration(s, annotations);
  ({ m } = step(m));
  ({ m } = step(m, { jobs: [copied] }));
  return m;
}
