// The cutover Service's consent and record (pure). The operator switches a Service's selector on
// behalf of whoever may create a DataMigration, who may have no right to touch the Service: so a
// Service is switched only when it opted in (the annotation dataops.dev/cutover-by naming the
// DataMigration, or labels matching the operator's CUTOVER_OPT_IN_SELECTOR) and only off the side
// the migration names (its selector contains fromSelector). The switch writes a record on the
// Service in the same patch (SWITCH_RECORD: the migration's uid, run, the selectors before and
// after); the switch counts as done, and abort or rollback restore it, only by that record with
// this migration's uid and the selector still as the switch left it. A Service switched by hand or
// by another DataMigration is never flipped back.
import { CUTOVER_BY_ANNOTATION, REASONS, SWITCH_RECORD } from '../api/constants.ts';
import type { Reason } from '../api/constants.ts';
import type { CutoverSpec } from '../api/types.generated.ts';
import type { Context } from './context.ts';
import type { ObservedService, PatchServiceSelectorAction } from './model.ts';
import {
  containsSelector, matchesLabels, parseSelectorJson, replaceSelector, sameSelector, selectorJson, selectorText, selectsSide, type LabelSelector,
} from './selectors.ts';

/** Who is asking: the DataMigration's name and uid, and its run. */
export interface Switcher {
  name: string;
  uid: string;
  runId: string;
}

export function switcherOf(ctx: Pick<Context, 'migration' | 'runId'>): Switcher {
  return { name: ctx.migration.metadata?.name ?? '', uid: ctx.migration.metadata?.uid ?? '', runId: ctx.runId };
}

export interface SwitchRecord {
  migration: string;
  uid: string;
  run: string;
  /** Undefined when the annotation is missing or not a JSON object of strings. */
  before: Record<string, string> | undefined;
  after: Record<string, string> | undefined;
}

export function switchRecord(service: ObservedService): SwitchRecord | undefined {
  const annotations = service.annotations;
  const uid = annotations[SWITCH_RECORD.uid];
  if (uid === undefined || uid === '') return undefined;
  return {
    uid, migration: annotations[SWITCH_RECORD.migration] ?? '', run: annotations[SWITCH_RECORD.run] ?? '',
    before: parseSelectorJson(annotations[SWITCH_RECORD.before]), after: parseSelectorJson(annotations[SWITCH_RECORD.after]),
  };
}

/** This migration's switch, still in place: its record (uid), and the selector exactly as the switch left it. */
export function switchInPlace(service: ObservedService, who: Switcher): { before: Record<string, string>; after: Record<string, string> } | undefined {
  const record = switchRecord(service);
  if (record === undefined || who.uid === '' || record.uid !== who.uid) return undefined;
  const { before, after } = record;
  if (before === undefined || after === undefined || !sameSelector(service.selector, after)) return undefined;
  return { before, after };
}

/** The names the Service's opt-in annotation lists (comma-separated). */
export function optedInNames(service: ObservedService): string[] {
  return (service.annotations[CUTOVER_BY_ANNOTATION] ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
}

export function optedIn(service: ObservedService, name: string, optInSelector: LabelSelector | undefined): boolean {
  return optedInNames(service).includes(name) || (optInSelector !== undefined && matchesLabels(optInSelector, service.labels));
}

/** Another migration's record, in words (for messages). */
function recordText(record: SwitchRecord | undefined, who: Switcher): string {
  if (record === undefined) return 'it carries no switch record';
  if (record.uid === who.uid) return 'it was changed since this migration switched it';
  return `it was switched by DataMigration ${record.migration === '' ? '(unnamed)' : record.migration} (uid ${record.uid}${record.run === '' ? '' : `, run ${record.run}`})`;
}

/** Why this migration may not switch the Service now (undefined: it may). Consent first, so a Service that did not opt in tells nothing about its selector. */
export function switchRefusal(serviceName: string, service: ObservedService, cutover: CutoverSpec, who: Switcher, optInSelector: LabelSelector | undefined): { reason: Reason; message: string } | undefined {
  if (!optedIn(service, who.name, optInSelector)) {
    const byLabels = optInSelector === undefined ? '' : `, or labels it to match the operator's opt-in selector ${optInSelector.text}`;
    return {
      reason: REASONS.ServiceNotOptedIn,
      message: `Service ${serviceName} has not opted in to being switched by DataMigration ${who.name}: nothing is patched until whoever owns the Service `
        + `annotates it with ${CUTOVER_BY_ANNOTATION}=${who.name}${byLabels}`,
    };
  }
  if (containsSelector(service.selector, cutover.fromSelector)) return undefined;
  const from = selectorText(cutover.fromSelector);
  const now = selectorText(service.selector);
  if (selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    return {
      reason: REASONS.ServiceSelectorMismatch,
      message: `Service ${serviceName} selects ${now} (toSelector) already, but not by this migration's switch: ${recordText(switchRecord(service), who)}; `
        + `it is left as it is (point it back to fromSelector ${from} for this migration to switch it)`,
    };
  }
  return {
    reason: REASONS.ServiceSelectorMismatch,
    message: `Service ${serviceName} selects ${now === '' ? 'nothing' : now}, which does not contain fromSelector ${from}: not switched (a cutover only moves a Service off the side it names)`,
  };
}

/** The switch: fromSelector's labels replaced by toSelector's, and the record, in one patch at the observed version. */
export function switchAction(serviceName: string, service: ObservedService, cutover: CutoverSpec, who: Switcher): PatchServiceSelectorAction {
  const selector = replaceSelector(service.selector, cutover.fromSelector, cutover.toSelector);
  return {
    kind: 'patchServiceSelector', service: serviceName, resourceVersion: service.resourceVersion, from: { ...service.selector }, selector,
    annotations: {
      [SWITCH_RECORD.migration]: who.name, [SWITCH_RECORD.uid]: who.uid, [SWITCH_RECORD.run]: who.runId,
      [SWITCH_RECORD.before]: selectorJson(service.selector), [SWITCH_RECORD.after]: selectorJson(selector),
    },
  };
}

export type RestoreVerdict =
  /** This migration's switch is in place: back to the recorded selector, the record removed. */
  | { kind: 'restore'; action: PatchServiceSelectorAction; before: Record<string, string>; message: string }
  /** The Service selects toSelector (or carries this migration's record) but not as this migration's switch left it: left alone. */
  | { kind: 'leave'; message: string }
  /** Nothing of this migration's to undo. */
  | { kind: 'nothing' };

/** What abort and rollback may do to the Service: undo this migration's own switch, never anything else. */
export function restoreVerdict(serviceName: string, service: ObservedService, cutover: CutoverSpec, who: Switcher): RestoreVerdict {
  const now = selectorText(service.selector);
  const mine = switchInPlace(service, who);
  if (mine !== undefined) {
    const annotations = Object.fromEntries(Object.values(SWITCH_RECORD).map((key) => [key, null]));
    return {
      kind: 'restore', before: mine.before,
      action: { kind: 'patchServiceSelector', service: serviceName, resourceVersion: service.resourceVersion, from: { ...service.selector }, selector: { ...mine.before }, annotations },
      message: `Service ${serviceName} set back from ${now} to ${selectorText(mine.before)} (the selector this migration's switch recorded)`,
    };
  }
  const record = switchRecord(service);
  if (record !== undefined && record.uid === who.uid && who.uid !== '') {
    const why = record.before === undefined || record.after === undefined
      ? 'its switch record cannot be read (the selectors are not JSON objects of strings)'
      : `it was changed since this migration switched it to ${selectorText(record.after)}`;
    return { kind: 'leave', message: `Service ${serviceName} (selecting ${now}) was not restored: ${why}; it is left as it is` };
  }
  if (selectsSide(service.selector, cutover.toSelector, cutover.fromSelector)) {
    return { kind: 'leave', message: `Service ${serviceName} selects ${now} (toSelector), but this migration did not switch it (${recordText(record, who)}); it is left as it is` };
  }
  return { kind: 'nothing' };
}
