// Reads the DataMigration out of a manifest file (which may also hold its Secrets, ConfigMaps and
// Services, as the samples do) and gives it the API server's defaults and structural checks.
import { readFile, stat } from 'node:fs/promises';
import { parseAllDocuments, type Document } from 'yaml';
import { normalizeDataMigration } from '../api/defaults.ts';
import { GROUP, KIND } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import { CliError, EXIT } from './exit-codes.ts';

/**
 * A manifest larger than this is refused before it is parsed: the API server takes no object over
 * about 1.5 MiB, and a manifest file holds a few objects.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export async function loadManifest(path: string, name?: string): Promise<DataMigration> {
  let text: string;
  try {
    const size = (await stat(path)).size;
    if (size > MAX_MANIFEST_BYTES) throw new Error(`${String(size)} bytes, over the ${String(MAX_MANIFEST_BYTES)} a manifest may hold`);
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
  return parseManifest(text, path, name);
}

/**
 * A document as plain data. yaml refuses a document whose aliases would expand past its limit
 * (an alias bomb: a few lines that expand to millions of nodes) with a ReferenceError: bad input.
 */
export function documentData(document: Document, path: string): unknown {
  try {
    return document.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (error) {
    throw new CliError(`${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
}

/** The DataMigration in a YAML (or JSON) text; `origin` names it in errors (a path, or DMO_MANIFEST in a Job). */
export function parseManifest(text: string, path: string, name?: string): DataMigration {
  if (text.length > MAX_MANIFEST_BYTES) throw new CliError(`${path}: ${String(text.length)} characters, over the ${String(MAX_MANIFEST_BYTES)} a manifest may hold`, EXIT.usage);
  const documents = parseAllDocuments(text);
  for (const document of documents) {
    if (document.errors.length > 0) throw new CliError(`${path}: ${document.errors.map((e) => e.message).join('; ')}`, EXIT.usage);
  }
  const migrations = documents
    .map((d) => documentData(d, path) as { apiVersion?: string; kind?: string; metadata?: { name?: string } } | null)
    .filter((d) => d?.kind === KIND && d.apiVersion?.startsWith(`${GROUP}/`) && (name === undefined || d.metadata?.name === name));
  if (migrations.length === 0) throw new CliError(`${path} holds no ${KIND}${name ? ` named ${name}` : ''}`, EXIT.usage);
  if (migrations.length > 1) throw new CliError(`${path} holds ${String(migrations.length)} ${KIND}s: choose one with --name`, EXIT.usage);
  try {
    return normalizeDataMigration(migrations[0]);
  } catch (error) {
    throw new CliError(`${path}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
}
