// The label-selector algebra of the cutover: a Service's selector as text, one side swapped for
// the other (other labels kept), which side a selector selects, and the operator's opt-in label
// selector (CUTOVER_OPT_IN_SELECTOR: Kubernetes' label-selector syntax). Pure.

export function selectorText(selector: Record<string, string>): string {
  return Object.keys(selector).sort().map((key) => `${key}=${selector[key] ?? ''}`).join(',');
}

/** `current` with the labels of `from` replaced by those of `to` (other labels are kept). */
export function replaceSelector(current: Record<string, string>, from: Record<string, string>, to: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(current)) if (!(key in from)) out[key] = value;
  for (const [key, value] of Object.entries(to)) out[key] = value;
  return out;
}

/** `selector` selects the `side`: every label of it, and no label of `other` that `side` does not set. */
export function selectsSide(selector: Record<string, string>, side: Record<string, string>, other: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(side)) if (selector[key] !== value) return false;
  for (const key of Object.keys(other)) if (!(key in side) && key in selector) return false;
  return true;
}

/** Every label of `part` is in `selector` with the same value. */
export function containsSelector(selector: Record<string, string>, part: Record<string, string>): boolean {
  return Object.entries(part).every(([key, value]) => Object.hasOwn(selector, key) && selector[key] === value);
}

export function sameSelector(a: Record<string, string>, b: Record<string, string>): boolean {
  return Object.keys(a).length === Object.keys(b).length && containsSelector(a, b);
}

/** A selector as canonical JSON (sorted keys), as the switch records it on the Service. */
export function selectorJson(selector: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.keys(selector).sort().map((key) => [key, selector[key] ?? ''])));
}

/** A recorded selector read back: a JSON object of strings, else undefined (a record no one can trust). */
export function parseSelectorJson(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') return undefined;
    out[key] = value;
  }
  return out;
}

// ---- label selectors (the operator's opt-in) ------------------------------------------------

export type LabelRequirement =
  | { key: string; op: 'exists' | 'notExists' }
  | { key: string; op: 'in' | 'notIn'; values: readonly string[] };

export interface LabelSelector {
  /** As configured, for messages. */
  text: string;
  requirements: readonly LabelRequirement[];
}

const NAME = '[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const PREFIX = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*';
const KEY = `(?:${PREFIX}/)?${NAME}`;
const VALUE = `(?:${NAME})?`;
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`);
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const VALUE_ONLY = new RegExp(`^${VALUE}$`);

/** Commas outside parentheses separate requirements. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth < 0) throw new Error('unbalanced ")"');
    if (char === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else {
      current += char;
    }
  }
  if (depth !== 0) throw new Error('unbalanced "("');
  parts.push(current.trim());
  return parts;
}

function checkKey(key: string): void {
  const prefix = key.includes('/') ? key.slice(0, key.indexOf('/')) : '';
  if (prefix.length > 253) throw new Error(`the prefix of label key "${key}" is longer than 253 characters`);
}

function requirementOf(part: string): LabelRequirement {
  const set = SET.exec(part);
  if (set) {
    const [, key = '', op, list = ''] = set;
    const values = list.split(',').map((value) => value.trim());
    if (values.some((value) => !VALUE_ONLY.test(value))) throw new Error(`"${part}": a value is not a label value`);
    checkKey(key);
    return { key, op: op === 'in' ? 'in' : 'notIn', values };
  }
  const equality = EQUALITY.exec(part);
  if (equality) {
    const [, key = '', op, value = ''] = equality;
    checkKey(key);
    return { key, op: op === '!=' ? 'notIn' : 'in', values: [value] };
  }
  const exists = EXISTS.exec(part);
  if (exists) {
    const [, not, key = ''] = exists;
    checkKey(key);
    return { key, op: not === '!' ? 'notExists' : 'exists' };
  }
  throw new Error(`"${part}" is not a label selector requirement (key, !key, key=value, key!=value, key in (a,b), key notin (a,b))`);
}

/**
 * The operator's opt-in selector. Empty text: none (no Service opts in by its labels; unlike an
 * empty Kubernetes selector, it never matches everything). At least one requirement must ask for a
 * label (key, key=value, key in (…)): a selector of negations alone matches Services that never
 * opted in. Throws with a message on anything else.
 */
export function parseLabelSelector(text: string): LabelSelector | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const requirements = splitRequirements(trimmed).map((part) => {
    if (part === '') throw new Error('an empty requirement (two commas, or a comma at an end)');
    return requirementOf(part);
  });
  if (!requirements.some((r) => r.op === 'exists' || r.op === 'in')) {
    throw new Error('it must require a label (key, key=value or key in (…)): negations alone match Services that never opted in');
  }
  return { text: trimmed, requirements };
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string>): boolean {
  return selector.requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'exists': return has;
      case 'notExists': return !has;
      case 'in': return has && r.values.includes(labels[r.key] ?? '');
      case 'notIn': return !has || !r.values.includes(labels[r.key] ?? '');
    }
  });
}
