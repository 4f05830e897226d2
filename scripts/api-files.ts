// The files generated from the API schema, with their expected content. generate-api.ts writes
// them; test/unit/api-generated.test.ts fails when one is stale.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { dataMigrationCrd } from '../src/api/crd.ts';
import { dataMigrationSchema } from '../src/api/datamigration-schema.ts';
import { generateReference, withGeneratedSection } from '../src/api/reference.ts';
import { TYPE_MAP } from '../src/engine/schema/typemap.ts';
import { generateTypes } from '../src/api/generate-types.ts';
import { stepResultSchema } from '../src/api/step-result-schema.ts';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const YAML_HEADER = '# Generated from src/api/datamigration-schema.ts by `npm run generate`. Do not edit.\n';

export function crdYaml(): string {
  // YAML 1.1 quoting: Kubernetes reads YAML 1.1, where a bare `on` (dedupe.on) is a boolean.
  return YAML_HEADER + stringify(dataMigrationCrd(), { lineWidth: 0, version: '1.1' });
}

/** The README's type map table, from the one the engine uses (src/engine/schema/typemap.ts). */
export function typeMapMarkdown(): string {
  const rows = (from: 'mysql' | 'postgres'): string[] => TYPE_MAP.filter((r) => r.from === from)
    .map((r) => `| \`${r.source}\` | \`${r.target}\` | ${r.notes} |`);
  return ['MySQL/MariaDB → PostgreSQL:', '', '| source | target | notes |', '| --- | --- | --- |', ...rows('mysql'), '',
    'PostgreSQL → MySQL/MariaDB:', '', '| source | target | notes |', '| --- | --- | --- |', ...rows('postgres'), ''].join('\n');
}

/** Repository-relative path → the content it must have. */
export async function generatedFiles(): Promise<Map<string, string>> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  return new Map([
    ['crds/dataops.dev_datamigrations.yaml', crdYaml()],
    ['src/api/types.generated.ts', generateTypes(dataMigrationSchema)],
    ['src/api/step-result.generated.ts', generateTypes(stepResultSchema, 'src/api/step-result-schema.ts')],
    ['README.md', withGeneratedSection(withGeneratedSection(readme, 'api-reference', generateReference(dataMigrationSchema)), 'type-map', typeMapMarkdown())],
  ]);
}
