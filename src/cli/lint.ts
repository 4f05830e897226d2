// dmctl lint -f FILE: the verdict the API server would give each DataMigration of a manifest,
// without a cluster: the CRD's defaults, its structural schema, and its CEL rules, from the same
// CRD object that crds/ is generated from (or from --crd FILE, to check against an installed,
// older or newer CRD). Exit 0 when every DataMigration would be accepted, 2 when one would not.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { documentData } from './manifest.ts';
import { GROUP, KIND, VERSION } from '../api/constants.ts';
import { dataMigrationCrd } from '../api/crd.ts';
import { celErrors } from './crd-cel-rules.ts';
import { applyCrdDefaults, isObject, schemaErrors, type CrdSchema } from './crd-schema-check.ts';
import { CliError, EXIT, type ExitCode } from './exit-codes.ts';

export const LINT_USAGE = `usage: dmctl lint -f manifest.yaml [--crd crd.yaml] [--json]
  Checks every DataMigration in the file as the API server would on create: defaults, schema, CEL rules.
  -f, --file <path>   the manifest (other kinds in it are ignored)
      --crd <path>    check against this CRD (default: the one this dmctl was built with)
      --json          one JSON object per DataMigration on stdout`;

/** The verdict on one DataMigration of a manifest. */
export interface LintResult {
  /** metadata.name, or "(document N)" when it has none. */
  name: string;
  errors: string[];
  /** The object with the CRD's defaults applied, as the API server would store it. */
  defaulted: unknown;
}

/** A DNS-1123 subdomain: what the API server asks of a custom resource's name. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function metadataErrors(object: Record<string, unknown>): string[] {
  const metadata = object.metadata;
  if (!isObject(metadata)) return ['metadata.name: Required value: name or generateName is required'];
  const name = metadata.name ?? metadata.generateName;
  if (typeof name !== 'string' || name === '') return ['metadata.name: Required value: name or generateName is required'];
  if (name.length > 253 || !DNS_SUBDOMAIN.test(metadata.name === undefined ? `${name}a` : name)) {
    return [`metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`];
  }
  return [];
}

/** The openAPIV3Schema of a CRD object's served version `VERSION`. */
export function crdSchemaOf(crd: unknown): CrdSchema {
  const versions = isObject(crd) && isObject(crd.spec) && Array.isArray(crd.spec.versions) ? crd.spec.versions as unknown[] : [];
  const version = versions.find((v) => isObject(v) && v.name === VERSION);
  const schema = isObject(version) && isObject(version.schema) ? version.schema.openAPIV3Schema : undefined;
  if (!isObject(schema)) throw new Error(`the CRD has no openAPIV3Schema for version ${VERSION}`);
  return schema;
}

/** Checks one DataMigration object (parsed JSON) against the CRD's schema. */
export function lintObject(object: unknown, schema: CrdSchema = crdSchemaOf(dataMigrationCrd())): Omit<LintResult, 'name'> {
  if (!isObject(object)) return { errors: ['the document is not an object'], defaulted: object };
  const errors: string[] = [];
  if (object.apiVersion !== `${GROUP}/${VERSION}`) errors.push(`apiVersion: no version ${JSON.stringify(object.apiVersion)} of ${KIND}: use ${GROUP}/${VERSION}`);
  errors.push(...metadataErrors(object));
  // On a create the API server drops status (the status subresource's to write) before it validates.
  const created = Object.fromEntries(Object.entries(object).filter(([key]) => key !== 'status'));
  const defaulted = applyCrdDefaults(schema, created);
  const structural = schemaErrors(schema, defaulted, '');
  errors.push(...structural);
  // Like the API server, CEL rules are only trusted on a value whose structure is right.
  if (structural.length === 0) errors.push(...celErrors(schema, defaulted, ''));
  return { errors, defaulted };
}

/**
 * Every DataMigration in a YAML text, checked. YAML 1.1, as kubectl reads manifests (so `yes` is a
 * boolean, as it is for the API server behind kubectl).
 */
export function lintText(text: string, schema?: CrdSchema): LintResult[] {
  const documents = parseAllDocuments(text, { version: '1.1' });
  const results: LintResult[] = [];
  documents.forEach((document, index) => {
    if (document.errors.length > 0) {
      results.push({ name: `(document ${index + 1})`, errors: document.errors.map((e) => `YAML: ${e.message}`), defaulted: undefined });
      return;
    }
    const object = documentData(document, `(document ${String(index + 1)})`);
    if (!isObject(object) || object.kind !== KIND || typeof object.apiVersion !== 'string' || !object.apiVersion.startsWith(`${GROUP}/`)) return;
    const metadata = isObject(object.metadata) ? object.metadata : {};
    const name = typeof metadata.name === 'string' ? metadata.name : `(document ${index + 1})`;
    results.push({ name, ...lintObject(object, schema) });
  });
  return results;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
}

/** The lint subcommand; prints the verdicts and returns the exit code. */
export async function lintCommand(argv: readonly string[]): Promise<ExitCode> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv], allowPositionals: false, strict: true,
      options: { file: { type: 'string', short: 'f' }, crd: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    }));
  } catch (error) {
    throw new CliError(`${error instanceof Error ? error.message : String(error)}\n${LINT_USAGE}`, EXIT.usage);
  }
  if (values.help) {
    process.stdout.write(`${LINT_USAGE}\n`);
    return EXIT.ok;
  }
  if (!values.file) throw new CliError(`-f manifest.yaml is required\n${LINT_USAGE}`, EXIT.usage);
  let schema: CrdSchema | undefined;
  if (values.crd) {
    const crdPath = values.crd;
    const crd = parseAllDocuments(await readText(crdPath)).map((d) => documentData(d, crdPath)).find((d) => isObject(d) && d.kind === 'CustomResourceDefinition');
    try {
      schema = crdSchemaOf(crd);
    } catch (error) {
      throw new CliError(`${values.crd}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
    }
  }
  const results = lintText(await readText(values.file), schema);
  if (results.length === 0) throw new CliError(`${values.file} holds no ${KIND}`, EXIT.usage);
  for (const result of results) {
    if (values.json) process.stdout.write(`${JSON.stringify({ name: result.name, valid: result.errors.length === 0, errors: result.errors })}\n`);
    else if (result.errors.length === 0) process.stdout.write(`ok       ${KIND}/${result.name}\n`);
    else process.stdout.write(`invalid  ${KIND}/${result.name}\n${result.errors.map((e) => `  ${e}`).join('\n')}\n`);
  }
  return results.every((r) => r.errors.length === 0) ? EXIT.ok : EXIT.usage;
}
