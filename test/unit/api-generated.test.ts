// One source of truth for the API: the committed CRD, TypeScript types and README reference are
// exactly what the schema generates, so neither can drift from the other (types.ts adds
// compile-time checks that the exported constants match the enums).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { generatedFiles, repoRoot } from '../../scripts/api-files.ts';
import { dataMigrationCrd } from '../../src/api/crd.ts';
import { PHASES, TRANSFORMS } from '../../src/api/constants.ts';
import { TRANSFORMS as ENGINE_TRANSFORMS } from '../../src/engine/copy/transforms.ts';

for (const [path, expected] of await generatedFiles()) {
  test(`${path} is what npm run generate writes`, async (t) => {
    const actual = await readFile(join(repoRoot, path), 'utf8');
    t.true(actual === expected, `${path} is stale: run npm run generate`);
  });
}

test('the CRD file parses (as YAML 1.1, like kubectl) to the schema-built object', async (t) => {
  const text = await readFile(join(repoRoot, 'crds/dataops.dev_datamigrations.yaml'), 'utf8');
  t.deepEqual(parse(text, { version: '1.1' }), dataMigrationCrd());
});

test('the CRD carries the phases as an enum and every field has a description', (t) => {
  const crd = dataMigrationCrd() as { spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] } };
  const root = crd.spec.versions[0]?.schema.openAPIV3Schema ?? {};
  const missing: string[] = [];
  const walk = (node: Record<string, unknown>, path: string): void => {
    if (path !== '.metadata' && path !== '' && typeof node.description !== 'string' && !path.endsWith('{}')) missing.push(path);
    for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) walk(child, `${path}.${name}`);
    if (node.items) walk(node.items as Record<string, unknown>, `${path}[]`);
  };
  walk(root, '');
  t.deepEqual(missing, []);
  const phase = ((root.properties as Record<string, { properties: Record<string, { enum: string[] }> }>).status?.properties.phase?.enum);
  t.deepEqual(phase, [...PHASES]);
});

test('the engine implements exactly the transforms the API offers', (t) => {
  t.deepEqual([...ENGINE_TRANSFORMS], [...TRANSFORMS]);
});
