// A small vocabulary for writing the CRD's OpenAPI v3 schema in TypeScript. The schema written
// with it (datamigration-schema.ts) is the one source of truth: the CRD YAML, the TypeScript
// types and the API reference are all generated from it (scripts/generate-api.ts), and a unit
// test fails when a generated file is stale.

export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath (relative to this node) of the field the message is about, for the API error. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'boolean';

/** An OpenAPI v3 schema node, as the CRD carries it, plus the name its generated TypeScript type gets. */
export interface SchemaNode {
  type?: SchemaType;
  description: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: SchemaNode;
  items?: SchemaNode;
  enum?: string[];
  default?: unknown;
  format?: string;
  /** null is a value ("none"), not the field's absence. */
  nullable?: true;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  /** Not part of the CRD: the name of the generated TypeScript interface for this object. */
  typeName?: string;
  /** Not part of the CRD: a TypeScript type from @kubernetes/client-node to use instead. */
  tsType?: string;
}

type Extra = Partial<Omit<SchemaNode, 'type' | 'description'>>;

/** A property of an object: its schema and whether it is required. */
export interface Field {
  node: SchemaNode;
  required: boolean;
}

export const required = (node: SchemaNode): Field => ({ node, required: true });
export const optional = (node: SchemaNode): Field => ({ node, required: false });

export function object(typeName: string, description: string, fields: Record<string, Field>, extra: Extra = {}): SchemaNode {
  const properties: Record<string, SchemaNode> = {};
  const requiredNames: string[] = [];
  for (const [name, field] of Object.entries(fields)) {
    properties[name] = field.node;
    if (field.required) requiredNames.push(name);
  }
  return { type: 'object', description, properties, ...(requiredNames.length > 0 ? { required: requiredNames } : {}), ...extra, typeName };
}

/** The same node, with null as a value of its own (the field present, saying "none"). */
export const nullable = (node: SchemaNode): SchemaNode => ({ ...node, nullable: true });

export const string = (description: string, extra: Extra = {}): SchemaNode => ({ type: 'string', description, ...extra });
export const integer = (description: string, extra: Extra = {}): SchemaNode => ({ type: 'integer', description, ...extra });
export const boolean = (description: string, extra: Extra = {}): SchemaNode => ({ type: 'boolean', description, ...extra });

export function enumOf(values: readonly string[], description: string, extra: Extra = {}): SchemaNode {
  return { type: 'string', description, enum: [...values], ...extra };
}

export function array(items: SchemaNode, description: string, extra: Extra = {}): SchemaNode {
  return { type: 'array', description, items, ...extra };
}

/** A string-to-string map (labels, selectors, annotations). */
export function stringMap(description: string, extra: Extra = {}): SchemaNode {
  return { type: 'object', description, additionalProperties: { type: 'string', description: '' }, ...extra };
}

export function intOrString(description: string, extra: Extra = {}): SchemaNode {
  return { description, 'x-kubernetes-int-or-string': true, ...extra };
}

/** The node as the CRD carries it: the TypeScript-only keys removed, recursively. */
export function toCrdSchema(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'typeName' || key === 'tsType') continue;
    if (key === 'description' && value === '') continue;
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, SchemaNode>).map(([name, child]) => [name, toCrdSchema(child)]));
    } else if (key === 'items' || key === 'additionalProperties') {
      out[key] = toCrdSchema(value as SchemaNode);
    } else {
      out[key] = value;
    }
  }
  return out;
}
