// Writes the CRD, the TypeScript types and the README's API reference from the schema.
// `--check` writes nothing and exits 1 when a file is stale (CI's guard against hand edits).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generatedFiles, repoRoot } from './api-files.ts';

const check = process.argv.includes('--check');
let stale = 0;
for (const [path, content] of await generatedFiles()) {
  const file = join(repoRoot, path);
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current === content) continue;
  if (check) {
    console.error(`${path} is stale: run npm run generate`);
    stale++;
  } else {
    await writeFile(file, content);
    console.log(`wrote ${path}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
