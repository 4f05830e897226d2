// Outside a cluster (the CLI), a manifest gets what the API server would give it: the schema's
// defaults, and its structural checks (types, required fields, enums, bounds). CEL rules are
// the API server's alone; the engine's planner repeats the ones that matter for correctness.
import { dataMigrationSchema } from './datamigration-schema.ts';
import type { SchemaNode } from './schema-builder.ts';
import type { DatabaseEndpoint, DataMigration } from './types.generated.ts';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Fills in defaults the way the API server does: a missing property with a default gets it, then its own defaults. */
export function applyDefaults(node: SchemaNode, value: unknown): unknown {
  if (Array.isArray(value)) return node.items ? value.map((item) => applyDefaults(node.items as SchemaNode, item)) : value;
  if (!isObject(value) || !node.properties) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [name, child] of Object.entries(node.properties)) {
    if (out[name] === undefined && child.default !== undefined) out[name] = structuredClone(child.default);
    if (out[name] !== undefined) out[name] = applyDefaults(child, out[name]);
  }
  return out;
}

/** Structural errors, each naming its field path like the API server does. */
export function structuralErrors(node: SchemaNode, value: unknown, path: string): string[] {
  if (node['x-kubernetes-int-or-string']) {
    return typeof value === 'number' || typeof value === 'string' ? [] : [`${path}: must be an integer or a string`];
  }
  if (node.tsType) return isObject(value) ? [] : [`${path}: must be an object`];
  switch (node.type) {
    case 'object': {
      if (!isObject(value)) return [`${path}: must be an object`];
      const errors: string[] = [];
      for (const name of node.required ?? []) if (value[name] === undefined) errors.push(`${path}.${name}: Required value`);
      for (const [name, child] of Object.entries(value)) {
        const schema = node.properties?.[name] ?? node.additionalProperties;
        if (!schema) {
          if (!node['x-kubernetes-preserve-unknown-fields']) errors.push(`${path}: unknown field "${name}"`);
          continue;
        }
        errors.push(...structuralErrors(schema, child, `${path}.${name}`));
      }
      const size = Object.keys(value).length;
      if (node.minProperties !== undefined && size < node.minProperties) errors.push(`${path}: must have at least ${node.minProperties} entries`);
      return errors;
    }
    case 'array': {
      if (!Array.isArray(value)) return [`${path}: must be a list`];
      const errors: string[] = [];
      if (node.minItems !== undefined && value.length < node.minItems) errors.push(`${path}: must have at least ${node.minItems} items`);
      if (node.maxItems !== undefined && value.length > node.maxItems) errors.push(`${path}: must have at most ${node.maxItems} items`);
      value.forEach((item, index) => { if (node.items) errors.push(...structuralErrors(node.items, item, `${path}[${index}]`)); });
      return errors;
    }
    case 'string': {
      if (typeof value !== 'string') return [`${path}: must be a string`];
      if (node.enum && !node.enum.includes(value)) return [`${path}: Unsupported value: ${JSON.stringify(value)}: supported values: ${node.enum.join(', ')}`];
      if (node.pattern && !new RegExp(node.pattern).test(value)) return [`${path}: Invalid value: ${JSON.stringify(value)}: must match ${node.pattern}`];
      if (node.maxLength !== undefined && value.length > node.maxLength) return [`${path}: Too long: at most ${node.maxLength} characters`];
      if (node.minLength !== undefined && value.length < node.minLength) return [`${path}: must have at least ${node.minLength} characters`];
      return [];
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return [`${path}: must be an integer`];
      if (node.minimum !== undefined && value < node.minimum) return [`${path}: Invalid value: ${value}: must be greater than or equal to ${node.minimum}`];
      if (node.maximum !== undefined && value > node.maximum) return [`${path}: Invalid value: ${value}: must be less than or equal to ${node.maximum}`];
      return [];
    }
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${path}: must be true or false`];
    default:
      return [];
  }
}

/** A parsed DataMigration object, defaulted and structurally checked; throws with every error found. */
export function normalizeDataMigration(object: unknown): DataMigration {
  const defaulted = applyDefaults(dataMigrationSchema, object);
  const errors = structuralErrors(dataMigrationSchema, defaulted, '');
  if (errors.length > 0) throw new Error(`invalid DataMigration:\n  ${errors.map((e) => e.replace(/^\./, '')).join('\n  ')}`);
  return defaulted as DataMigration;
}

/** A key of a Secret, as a step reads it. */
export interface SecretKeyRef { name: string; key: string }

/** The Secret keys an endpoint needs (its URL, its CA), with the schema's default key names. */
export function endpointSecrets(endpoint: DatabaseEndpoint): { url: SecretKeyRef; ca?: SecretKeyRef } {
  const ca = endpoint.tls?.caSecretRef;
  return {
    url: { name: endpoint.secretRef.name, key: endpoint.secretRef.key ?? 'url' },
    ...(ca ? { ca: { name: ca.name, key: ca.key ?? 'ca.crt' } } : {}),
  };
}
