// The cutover's write fence for ChangeCapture (pure). ScaleDown scales the blue Deployment to zero
// and holds once none of its pods is left (a terminating pod may still write); the patch that scales it
// writes a record on the Deployment (FENCE_RECORD_ANNOTATION: this migration's uid, run and the
// replicas before) in the same request, and lifting the fence (the cutover failed after it) scales
// back to exactly those replicas, only while the record is this migration's and nobody has scaled
// the Deployment since. As for the Service, the Deployment must consent: the operator scales it on
// behalf of someone who may have no right to, so it must list the DataMigration in its
// dataops.dev/cutover-by annotation. External trusts a person: the annotation dataops.dev/fenced
// "true" on the DataMigration says writes have stopped.
import { CUTOVER_BY_ANNOTATION, FENCE_RECORD_ANNOTATION, FENCED_ANNOTATION } from '../api/constants.ts';
import type { DataMigration } from '../api/types.generated.ts';
import type { ObservedFenceDeployment, ScaleDeploymentAction } from './model.ts';
import type { Switcher } from './service-switch.ts';

export interface FenceRecord {
  uid: string;
  run: string;
  replicas: number;
}

/** The record on the Deployment; undefined when absent or unreadable (then it is not ours). */
export function fenceRecordOf(deployment: ObservedFenceDeployment): FenceRecord | undefined {
  const text = deployment.annotations[FENCE_RECORD_ANNOTATION];
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { uid, run, replicas } = parsed as Record<string, unknown>;
    if (typeof uid !== 'string' || typeof run !== 'string' || typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 0) return undefined;
    return { uid, run, replicas };
  } catch {
    return undefined;
  }
}

export function deploymentConsents(deployment: ObservedFenceDeployment, migration: string): boolean {
  return (deployment.annotations[CUTOVER_BY_ANNOTATION] ?? '').split(',').some((name) => name.trim() === migration && migration !== '');
}

export type FenceState =
  /** Nothing was fenced and nothing may be: why. */
  | { kind: 'refused'; message: string }
  /** Send this patch (scale to zero with the record). */
  | { kind: 'scale'; action: ScaleDeploymentAction }
  /** Scaled by us; its pods are still ending. */
  | { kind: 'waiting'; message: string }
  /** Writes have stopped. */
  | { kind: 'held'; replicasBefore?: number };

/** Whether the fence may be put up on this Deployment (checked before the cutover is cleared to go). */
export function scaleDownRefusal(name: string, deployment: ObservedFenceDeployment | undefined, who: Switcher): string | undefined {
  if (deployment === undefined) return `the fence's Deployment ${name} does not exist`;
  const record = fenceRecordOf(deployment);
  if (record !== undefined && record.uid !== who.uid) return `Deployment ${name} is fenced by another migration (uid ${record.uid}); it is left alone`;
  if (!deploymentConsents(deployment, who.name)) {
    return `Deployment ${name} has not opted in to be scaled by this migration: its owner must list "${who.name}" in its annotation ${CUTOVER_BY_ANNOTATION}`;
  }
  return undefined;
}

/** Where a ScaleDown fence stands, and what to send. */
export function scaleDownFence(name: string, deployment: ObservedFenceDeployment | undefined, who: Switcher): FenceState {
  const refusal = scaleDownRefusal(name, deployment, who);
  if (refusal !== undefined || deployment === undefined) return { kind: 'refused', message: refusal ?? `the fence's Deployment ${name} does not exist` };
  const record = fenceRecordOf(deployment);
  if (record === undefined) {
    const annotations = { [FENCE_RECORD_ANNOTATION]: JSON.stringify({ uid: who.uid, run: who.runId, replicas: deployment.replicas }) };
    return { kind: 'scale', action: { kind: 'scaleDeployment', deployment: name, resourceVersion: deployment.resourceVersion, replicas: 0, annotations } };
  }
  if (deployment.replicas !== 0) {
    // Ours, yet scaled up again since: a person or an autoscaler is undoing the fence.
    return { kind: 'refused', message: `Deployment ${name} was scaled to ${String(deployment.replicas)} replicas after the fence scaled it to 0: writes are not fenced` };
  }
  if (deployment.pods > 0) return { kind: 'waiting', message: `waiting for ${String(deployment.pods)} pod(s) of Deployment ${name} to end` };
  return { kind: 'held', replicasBefore: record.replicas };
}

export type LiftState =
  | { kind: 'lifted' }
  | { kind: 'scale'; action: ScaleDeploymentAction; message: string }
  /** Not ours to lift (gone, another record, scaled by someone since): said, not touched. */
  | { kind: 'leave'; message: string };

/** Lifting a ScaleDown fence: back to the replicas the record holds. */
export function liftScaleDown(name: string, deployment: ObservedFenceDeployment | undefined, who: Switcher): LiftState {
  if (deployment === undefined) return { kind: 'leave', message: `Deployment ${name} is gone; nothing to scale back` };
  const record = fenceRecordOf(deployment);
  if (record === undefined || record.uid !== who.uid) return { kind: 'lifted' };
  if (deployment.replicas !== 0) {
    return { kind: 'scale', action: { kind: 'scaleDeployment', deployment: name, resourceVersion: deployment.resourceVersion, replicas: deployment.replicas, annotations: { [FENCE_RECORD_ANNOTATION]: null } }, message: `Deployment ${name} was scaled to ${String(deployment.replicas)} by someone else meanwhile: left at that, the fence's record removed` };
  }
  return {
    kind: 'scale', message: `Deployment ${name} scaled back to ${String(record.replicas)} replicas`,
    action: { kind: 'scaleDeployment', deployment: name, resourceVersion: deployment.resourceVersion, replicas: record.replicas, annotations: { [FENCE_RECORD_ANNOTATION]: null } },
  };
}

/** fence.type External: a person said writes have stopped. */
export function externalFenceHeld(migration: DataMigration): boolean {
  return migration.metadata?.annotations?.[FENCED_ANNOTATION] === 'true';
}

/**
 * Why a fence that held no longer does, until the switch is sent (after it, blue takes no traffic):
 * the Deployment scaled up again (a person, an autoscaler), its record gone or another's (Argo CD
 * re-created it), or gone with pods that may still run; an External claim withdrawn. A catch-up
 * position taken behind such a fence is not the last write.
 */
export function fenceBroken(migration: DataMigration, deployment: ObservedFenceDeployment | undefined, who: Switcher): string | undefined {
  const fence = migration.spec.cutover?.fence;
  if (fence === undefined) return undefined;
  if (fence.type === 'External') return externalFenceHeld(migration) ? undefined : `the annotation ${FENCED_ANNOTATION} is no longer "true": writes to the source may have resumed`;
  // The database's setting is the engine's to see, not the operator's: the catch-up reads the source's position after it.
  if (fence.type === 'SourceReadOnly') return undefined;
  const name = fence.deployment ?? '';
  if (deployment === undefined) return `Deployment ${name} is gone behind the fence (re-created, its pods not counted): writes are not known to be fenced`;
  const record = fenceRecordOf(deployment);
  if (record?.uid !== who.uid) return `Deployment ${name} no longer carries this migration's fence record (re-created or changed by someone): writes are not fenced`;
  if (deployment.replicas !== 0 || deployment.pods > 0) return `Deployment ${name} was scaled to ${String(deployment.replicas)} replicas (${String(deployment.pods)} pod(s)) behind the fence: writes are not fenced`;
  return undefined;
}
