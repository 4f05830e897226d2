// The step-result contract at run time: the types generated from step-result-schema.ts, and a
// reader that checks an unknown value (the JSON a Job left) against that schema. The engine writes
// these types (src/cli/termination.ts), the operator reads them (src/controller/step-results.ts),
// so a field renamed on one side fails the typecheck on the other.
//
// The reader is lenient where leniency loses nothing and strict where a wrong value would be
// recorded as true: null counts as absent (unless the schema says null is a value: nullable); a number where text is expected is read as text; text
// longer than the schema allows is shortened (with …) to its maxLength; an integer must be a safe
// integer at or above its minimum (0 unless the schema says otherwise); fields the schema does not
// name are dropped. Lists are not cut to maxItems here: the operator decides what to keep.
import type { Step } from './constants.ts';
import type { SchemaNode } from './schema-builder.ts';
import { stepResultSchema } from './step-result-schema.ts';
import type { StepResults } from './step-result.generated.ts';

export type * from './step-result.generated.ts';

/** The result type of each step. */
export type StepResultOf<S extends Step> = StepResults[S];

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const bound = (text: string, max: number | undefined): string => (max !== undefined && text.length > max ? `${text.slice(0, max - 1)}…` : text);

function describe(node: SchemaNode): string {
  if (node.enum) return `one of ${node.enum.join(', ')}`;
  switch (node.type) {
    case 'string': return 'text';
    case 'integer': return 'a non-negative integer';
    case 'boolean': return 'true or false';
    case 'array': return 'a list';
    default: return 'an object';
  }
}

/** Reads `value` as `node` says; problems go to `errors` (path first), and what could be read is returned. */
function read(node: SchemaNode, value: unknown, path: string, errors: string[]): unknown {
  if (node.enum) {
    const found = node.enum.find((item) => item === value);
    if (found === undefined) errors.push(`${path} is not one of ${node.enum.join(', ')}`);
    return found;
  }
  switch (node.type) {
    case 'string':
      if (typeof value === 'string') return bound(value, node.maxLength);
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      errors.push(`${path} is not a string`);
      return undefined;
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= (node.minimum ?? 0)) return value;
      errors.push(`${path} is not a non-negative integer`);
      return undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      errors.push(`${path} is not true or false`);
      return undefined;
    case 'array': {
      if (!Array.isArray(value)) {
        errors.push(`${path} is not a list`);
        return undefined;
      }
      const items = node.items;
      if (items === undefined) return [];
      const out: unknown[] = [];
      (value as unknown[]).forEach((item, index) => {
        // A list of scalars says what it holds once; a list of objects names the item that is wrong.
        if (items.type !== 'object') {
          const itemErrors: string[] = [];
          const read1 = read(items, item, `${path}[${String(index)}]`, itemErrors);
          if (itemErrors.length > 0) {
            if (!errors.some((e) => e.startsWith(`${path} holds`))) errors.push(`${path} holds something other than ${describe(items)}`);
            return;
          }
          out.push(read1);
          return;
        }
        const read1 = read(items, item, `${path}[${String(index)}]`, errors);
        if (read1 !== undefined) out.push(read1);
      });
      return out;
    }
    case 'object': {
      if (!isRecord(value)) {
        errors.push(`${path} is not an object`);
        return undefined;
      }
      const out: Record<string, unknown> = {};
      if (node.properties === undefined) {
        const values = node.additionalProperties;
        if (values === undefined) return out;
        for (const [key, item] of Object.entries(value)) {
          if (item === null || item === undefined) continue;
          const read1 = read(values, item, `${path}.${key}`, errors);
          if (read1 !== undefined) out[key] = read1;
        }
        return out;
      }
      const required = new Set(node.required ?? []);
      let complete = true;
      for (const [key, child] of Object.entries(node.properties)) {
        const item = value[key];
        if (item === null && child.nullable === true) {
          out[key] = null;
          continue;
        }
        if (item === null || item === undefined) {
          if (required.has(key)) {
            errors.push(`${path}.${key} is missing`);
            complete = false;
          }
          continue;
        }
        const read1 = read(child, item, `${path}.${key}`, errors);
        if (read1 === undefined && required.has(key)) complete = false;
        if (read1 !== undefined) out[key] = read1;
      }
      // An object without a required field is not kept (its errors say why).
      return complete ? out : undefined;
    }
    default:
      return value;
  }
}

const TITLES: Record<Step, string> = { schema: 'schema', copy: 'copy', sync: 'sync', validate: 'validation', fence: 'write fence', catchup: 'catch-up', unfence: 'lift of the write fence', release: 'release', rollback: 'rollback' };

/**
 * A step's result read against the contract. Absent (undefined or null) is `{ ok: true, value:
 * undefined }`: whether a step may end without a result is the reader's decision.
 */
export function parseStepResult<S extends Step>(step: S, result: unknown): Parsed<StepResultOf<S> | undefined> {
  if (result === undefined || result === null) return { ok: true, value: undefined };
  const errors: string[] = [];
  const node = stepResultSchema.properties?.[step];
  if (node === undefined) throw new Error(`no result schema for step ${step}`);
  const value = read(node, result, 'result', errors);
  if (errors.length > 0) return { ok: false, error: `the ${TITLES[step]} result is unreadable: ${errors.slice(0, 3).join('; ')}` };
  return { ok: true, value: value as StepResultOf<S> };
}
