// What the API server does to a custom resource before CEL: defaulting, then the structural
// checks of the CRD's OpenAPI v3 schema, with its error texts (field path, "Required value",
// "Unsupported value", "Invalid value", "Duplicate value", unknown fields under strict field
// validation). Generic over any openAPIV3Schema, so it also checks against an older CRD.

/** An openAPIV3Schema node as the CRD carries it (JSON). */
export interface CrdSchema {
  type?: string;
  properties?: Record<string, CrdSchema>;
  required?: string[];
  additionalProperties?: CrdSchema | boolean;
  items?: CrdSchema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string; fieldPath?: string; reason?: string }[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
}

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Go's %v-ish rendering the API server uses for a value in an error ("orders", 10, 0). */
const shown = (value: unknown): string => JSON.stringify(value);

/** A string's length as the API server counts it: in Unicode code points. */
const codePoints = (value: string): number => value.length - (value.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);

/** A schema's child for a property (undefined: the property is unknown). */
function propertySchema(node: CrdSchema, name: string): CrdSchema | undefined {
  const own = node.properties?.[name];
  if (own) return own;
  if (isObject(node.additionalProperties)) return node.additionalProperties;
  return undefined;
}

/** Fills in defaults as the API server does: a missing property with a default gets it (a copy), then its own defaults. */
export function applyCrdDefaults(node: CrdSchema, value: unknown): unknown {
  if (Array.isArray(value)) return node.items ? value.map((item) => applyCrdDefaults(node.items as CrdSchema, item)) : value;
  if (!isObject(value)) return value;
  // Nulls of non-nullable fields are pruned before defaulting (a default then fills them in).
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(value).filter(([name, item]) => item !== null || propertySchema(node, name)?.nullable === true));
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    if (out[name] === undefined && child.default !== undefined) out[name] = structuredClone(child.default);
  }
  for (const [name, item] of Object.entries(out)) {
    const child = propertySchema(node, name);
    if (child) out[name] = applyCrdDefaults(child, item);
  }
  return out;
}

const TYPE_CHECKS: Record<string, (value: unknown) => boolean> = {
  object: isObject,
  array: Array.isArray,
  string: (v) => typeof v === 'string',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
};

/** The JSON type name the API server reports for a value of the wrong type. */
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function formatError(format: string | undefined, value: string): string | undefined {
  if (format === 'date-time' && !DATE_TIME.test(value)) return 'a date-time';
  return undefined;
}

/** The key of a list-map item: its map keys' values (undefined when one is missing). */
function listMapKey(item: unknown, keys: readonly string[]): string | undefined {
  if (!isObject(item)) return undefined;
  return JSON.stringify(keys.map((key) => item[key]));
}

function listErrors(node: CrdSchema, value: unknown[], path: string): string[] {
  const errors: string[] = [];
  if (node.minItems !== undefined && value.length < node.minItems) errors.push(`${path}: Invalid value: ${value.length}: ${path} in body should have at least ${node.minItems} items`);
  if (node.maxItems !== undefined && value.length > node.maxItems) errors.push(`${path}: Too many: ${value.length}: must have at most ${node.maxItems} items`);
  const listType = node['x-kubernetes-list-type'];
  if (listType === 'set' || listType === 'map') {
    const seen = new Set<string>();
    value.forEach((item, index) => {
      const key = listType === 'set' ? JSON.stringify(item) : listMapKey(item, node['x-kubernetes-list-map-keys'] ?? []);
      if (key === undefined) return;
      if (seen.has(key)) errors.push(`${path}[${index}]: Duplicate value: ${shown(item)}`);
      seen.add(key);
    });
  }
  value.forEach((item, index) => { if (node.items) errors.push(...schemaErrors(node.items, item, `${path}[${index}]`)); });
  return errors;
}

function objectErrors(node: CrdSchema, value: Record<string, unknown>, path: string): string[] {
  const errors: string[] = [];
  const at = (name: string): string => (path === '' ? name : `${path}.${name}`);
  for (const name of node.required ?? []) if (value[name] === undefined) errors.push(`${at(name)}: Required value`);
  for (const [name, child] of Object.entries(value)) {
    const schema = propertySchema(node, name);
    if (!schema) {
      if (!node['x-kubernetes-preserve-unknown-fields']) errors.push(`unknown field "${at(name)}"`);
      continue;
    }
    errors.push(...schemaErrors(schema, child, at(name)));
  }
  const size = Object.keys(value).length;
  if (node.minProperties !== undefined && size < node.minProperties) errors.push(`${path}: Invalid value: ${size}: ${path} in body should have at least ${node.minProperties} properties`);
  if (node.maxProperties !== undefined && size > node.maxProperties) errors.push(`${path}: Too many: ${size}: must have at most ${node.maxProperties} items`);
  return errors;
}

function scalarErrors(node: CrdSchema, value: unknown, path: string): string[] {
  if (node.enum && !node.enum.includes(value)) {
    return [`${path}: Unsupported value: ${shown(value)}: supported values: ${node.enum.map(shown).join(', ')}`];
  }
  const errors: string[] = [];
  if (typeof value === 'string') {
    if (node.maxLength !== undefined && codePoints(value) > node.maxLength) errors.push(`${path}: Too long: may not be more than ${node.maxLength} bytes`);
    if (node.minLength !== undefined && codePoints(value) < node.minLength) errors.push(`${path}: Invalid value: ${shown(value)}: ${path} in body should be at least ${node.minLength} chars long`);
    if (node.pattern !== undefined && !new RegExp(node.pattern, 'u').test(value)) errors.push(`${path}: Invalid value: ${shown(value)}: ${path} in body should match '${node.pattern}'`);
    const format = formatError(node.format, value);
    if (format) errors.push(`${path}: Invalid value: ${shown(value)}: ${path} in body must be of type ${format}`);
  }
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) errors.push(`${path}: Invalid value: ${value}: ${path} in body should be greater than or equal to ${node.minimum}`);
    if (node.maximum !== undefined && value > node.maximum) errors.push(`${path}: Invalid value: ${value}: ${path} in body should be less than or equal to ${node.maximum}`);
  }
  return errors;
}

/** Every structural error of a (defaulted) value, in the API server's words. `path` is "" at the root. */
export function schemaErrors(node: CrdSchema, value: unknown, path: string): string[] {
  if (value === null && node.nullable) return [];
  if (node['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) {
      return [`${path}: Invalid value: ${shown(jsonType(value))}: ${path} in body must be of type integer,string: ${shown(value)}`];
    }
    return scalarErrors(node, value, path);
  }
  if (node.type !== undefined) {
    const check = TYPE_CHECKS[node.type];
    if (check && !check(value)) return [`${path}: Invalid value: ${shown(jsonType(value))}: ${path} in body must be of type ${node.type}: ${shown(value)}`];
  }
  if (Array.isArray(value)) return listErrors(node, value, path);
  if (isObject(value)) {
    // metadata is validated by the API server's own rules (see lint.ts), not by the CRD schema.
    if (node['x-kubernetes-embedded-resource'] || (node.type === 'object' && !node.properties && !node.additionalProperties)) {
      return node['x-kubernetes-preserve-unknown-fields'] || path === 'metadata' ? [] : objectErrors(node, value, path);
    }
    return objectErrors(node, value, path);
  }
  return scalarErrors(node, value, path);
}
