// Defaults for the step pods from the operator's configuration (the chart's engine.podDefaults,
// ENGINE_POD_DEFAULTS as JSON): resources, node selector, tolerations, affinity, priority class and
// pull secrets that every step pod gets unless its DataMigration's spec.jobTemplate sets the same
// field (the spec's value replaces the default whole, as a Pod's author expects). Checked at start
// against the CRD's own schema for spec.jobTemplate, so a default is exactly what a spec could say.
import { dataMigrationCrd } from '../api/crd.ts';
import type { JobTemplateSpec } from '../api/types.ts';
// The structural checker the CLI's lint and the tests use (pure): the same rules as the API server's.
import { celErrors } from '../cli/crd-cel-rules.ts';
import { isObject, schemaErrors, type CrdSchema } from '../cli/crd-schema-check.ts';
import { crdSchemaOf } from '../cli/lint.ts';

/** The fields a default may set: where and how big the pods are, never what they run or as whom. */
export const POD_DEFAULT_FIELDS = ['resources', 'nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'imagePullSecrets'] as const;
export type PodDefaults = Pick<JobTemplateSpec, (typeof POD_DEFAULT_FIELDS)[number]>;

const jobTemplateSchema = (): CrdSchema => crdSchemaOf(dataMigrationCrd()).properties?.spec?.properties?.jobTemplate ?? {};

/** ENGINE_POD_DEFAULTS parsed and checked; errors say what is wrong (the operator stops at start). */
export function podDefaultsFromEnv(text: string | undefined): { defaults: PodDefaults; errors: string[] } {
  if (text === undefined || text.trim() === '') return { defaults: {}, errors: [] };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    return { defaults: {}, errors: [`ENGINE_POD_DEFAULTS is not JSON: ${error instanceof Error ? error.message : String(error)}`] };
  }
  if (!isObject(value)) return { defaults: {}, errors: ['ENGINE_POD_DEFAULTS must be a JSON object'] };
  const other = Object.keys(value).filter((key) => !(POD_DEFAULT_FIELDS as readonly string[]).includes(key));
  const errors = other.length > 0 ? [`ENGINE_POD_DEFAULTS: ${other.join(', ')} cannot be defaulted (only ${POD_DEFAULT_FIELDS.join(', ')})`] : [];
  // The structure and the CEL rules (a toleration without a key must use Exists, …): all the API server checks.
  errors.push(...schemaErrors(jobTemplateSchema(), value, 'ENGINE_POD_DEFAULTS'), ...celErrors(jobTemplateSchema(), value, 'ENGINE_POD_DEFAULTS'));
  return errors.length > 0 ? { defaults: {}, errors } : { defaults: value, errors: [] };
}

/** The pods' template: each field from the spec when it sets it, else the operator's default. */
export function withPodDefaults(template: JobTemplateSpec | undefined, defaults: PodDefaults | undefined): JobTemplateSpec {
  const merged: JobTemplateSpec = { ...template };
  for (const field of POD_DEFAULT_FIELDS) {
    if (merged[field] === undefined && defaults?.[field] !== undefined) Object.assign(merged, { [field]: defaults[field] });
  }
  return merged;
}
