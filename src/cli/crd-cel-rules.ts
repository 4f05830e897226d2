// The CRD's CEL rules (x-kubernetes-validations), evaluated as the API server evaluates them on a
// create: each rule at every place its schema node's value is present, with `self` bound to that
// value. Transition rules (those naming oldSelf) only run on an update, so they are skipped here.
// The CEL library (@marcbachmann/cel-js) lacks functions of the Kubernetes CEL libraries that the
// rules use: the list library's sum(), the strings extension's replace() and the regex library's
// find(); they are registered below as custom functions with those libraries' semantics.
import { Environment } from '@marcbachmann/cel-js';
import { isObject, type CrdSchema } from './crd-schema-check.ts';

/** Kubernetes' CEL list library functions the CRD's rules use, which cel-js does not have. */
export const KUBERNETES_CEL_EXTENSIONS = [
  'list<int>.sum(): int', 'list<double>.sum(): double', 'string.replace(string, string): string', 'string.find(string): string',
] as const;

function celEnvironment(): Environment {
  return new Environment({ homogeneousAggregateLiterals: false })
    .registerVariable('self', 'dyn')
    .registerFunction('list<int>.sum(): int', (list: bigint[]) => list.reduce((sum, item) => sum + item, 0n))
    .registerFunction('list<double>.sum(): double', (list: number[]) => list.reduce((sum, item) => sum + item, 0))
    // Every occurrence, as Go's strings.ReplaceAll (the strings extension's replace without a limit).
    .registerFunction('string.replace(string, string): string', (text: string, from: string, to: string) => text.replaceAll(from, to))
    // The first match of a regular expression, or "" when there is none (RE2 and JavaScript agree on the rules' patterns).
    .registerFunction('string.find(string): string', (text: string, pattern: string) => new RegExp(pattern, 'u').exec(text)?.[0] ?? '');
}

const environment = celEnvironment();

/** Whether a rule compares with the old object, which only exists on an update. */
export const isTransitionRule = (rule: string): boolean => /\boldSelf\b/.test(rule);

/** A rule that does not compile in this environment (a function cel-js lacks), with the reason. */
export function compileError(rule: string): string | undefined {
  if (isTransitionRule(rule)) return undefined;
  const checked = environment.check(rule);
  return checked.valid ? undefined : (checked.error?.message ?? 'invalid');
}

/** The value as CEL sees it: integers of integer-typed fields are CEL ints (BigInt), the rest as JSON. */
function toCel(node: CrdSchema | undefined, value: unknown): unknown {
  if (typeof value === 'number') return (node?.type === 'integer' || node?.['x-kubernetes-int-or-string']) && Number.isInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map((item) => toCel(node?.items, item));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => {
      const child = node?.properties?.[key] ?? (isObject(node?.additionalProperties) ? node.additionalProperties : undefined);
      return [key, toCel(child, item)];
    }));
  }
  return value;
}

/** A failed rule in the API server's words: the field (fieldPath, when given), the kind of error, the message. */
function ruleError(path: string, rule: NonNullable<CrdSchema['x-kubernetes-validations']>[number], value: unknown): string {
  const field = `${path}${rule.fieldPath ?? ''}`.replace(/^\./, '');
  const message = rule.message ?? `failed rule: ${rule.rule}`;
  switch (rule.reason) {
    case 'FieldValueRequired': return `${field}: Required value: ${message}`;
    case 'FieldValueForbidden': return `${field}: Forbidden: ${message}`;
    case 'FieldValueDuplicate': return `${field}: Duplicate value: ${message}`;
    default: return `${field}: Invalid value: "${Array.isArray(value) ? 'array' : typeof value}": ${message}`;
  }
}

/** Every failed CEL rule of a (defaulted, structurally valid) value. `path` is "" at the root. */
export function celErrors(node: CrdSchema, value: unknown, path: string): string[] {
  if (value === undefined || value === null) return [];
  const errors: string[] = [];
  for (const rule of node['x-kubernetes-validations'] ?? []) {
    if (isTransitionRule(rule.rule)) continue;
    let passed: unknown;
    try {
      passed = environment.evaluate(rule.rule, { self: toCel(node, value) });
    } catch (error) {
      errors.push(`${path || '<root>'}: Invalid value: rule ${JSON.stringify(rule.rule)} could not be evaluated: ${(error instanceof Error ? error.message : String(error)).split('\n')[0] ?? ''}`);
      continue;
    }
    if (passed !== true) errors.push(ruleError(path, rule, value));
  }
  if (Array.isArray(value) && node.items) value.forEach((item, index) => errors.push(...celErrors(node.items as CrdSchema, item, `${path}[${index}]`)));
  if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      const child = node.properties?.[key] ?? (isObject(node.additionalProperties) ? node.additionalProperties : undefined);
      if (child) errors.push(...celErrors(child, item, path === '' ? key : `${path}.${key}`));
    }
  }
  return errors;
}
