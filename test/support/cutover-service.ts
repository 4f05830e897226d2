// The cutover Service as decide() observes it (src/controller/model.ts ObservedService), for the
// controller's unit tests: opted in or not, and as the API server leaves it after a patch action
// (selector and annotations merged, null removes, a new resourceVersion), so a test follows the
// decisions' own patches instead of writing the switch record by hand.
import { CUTOVER_BY_ANNOTATION } from '../../src/api/constants.ts';
import type { CutoverSpec } from '../../src/api/types.generated.ts';
import type { ObservedService, PatchServiceSelectorAction } from '../../src/controller/model.ts';
import { switchAction } from '../../src/controller/service-switch.ts';

export interface ServiceOptions {
  /** The DataMigration names the opt-in annotation lists; null: no opt-in annotation. Default: orders. */
  optIn?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
}

export function observedService(selector: Record<string, string>, options: ServiceOptions = {}): ObservedService {
  const optIn = options.optIn === undefined ? 'orders' : options.optIn;
  return {
    selector: { ...selector },
    labels: { ...options.labels },
    annotations: { ...(optIn === null ? {} : { [CUTOVER_BY_ANNOTATION]: optIn }), ...options.annotations },
    resourceVersion: options.resourceVersion ?? '100',
  };
}

/** The Service after the API server applied the action (refused, as it would be, at another version). */
export function afterPatch(service: ObservedService, action: PatchServiceSelectorAction): ObservedService {
  if (action.resourceVersion !== service.resourceVersion) throw new Error(`409: the patch is for version ${action.resourceVersion}, the Service is at ${service.resourceVersion}`);
  const merged: Record<string, string | null> = { ...service.annotations, ...action.annotations };
  const annotations = Object.fromEntries(Object.entries(merged).flatMap(([key, value]) => (value === null ? [] : [[key, value]])));
  return { ...service, selector: { ...action.selector }, annotations, resourceVersion: String(Number(service.resourceVersion) + 1) };
}

/** A Service that `who` switched from `before` (its switch, as switchAction writes it, applied). */
export function switchedService(before: Record<string, string>, cutover: CutoverSpec, who: { name: string; uid: string; runId: string }, options: ServiceOptions = {}): ObservedService {
  const service = observedService(before, { optIn: who.name, ...options });
  return afterPatch(service, switchAction(cutover.service, service, cutover, who));
}
