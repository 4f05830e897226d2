// Bad input to dmctl is exit 2 with a clear message, before any connection: a YAML alias bomb, a
// manifest past the size a manifest may have, a connection URL of another engine than the spec
// names (said without the URL).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { main } from '../../src/cli/main.ts';
import { MAX_MANIFEST_BYTES, parseManifest } from '../../src/cli/manifest.ts';

const MANIFEST = {
  apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop' },
  spec: { source: { engine: 'mysql', secretRef: { name: 's' } }, target: { engine: 'postgres', secretRef: { name: 't' } } },
};

const usage = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    if ((error as { exitCode?: number }).exitCode !== EXIT.usage) throw error;
    return (error as Error).message;
  }
  throw new Error('accepted');
};

test('a YAML alias bomb is bad input (exit 2), not a crash or a hang', (t) => {
  const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
  const bomb = `${levels.join('\n')}\napiVersion: dataops.dev/v1alpha1\nkind: DataMigration\n`;
  t.regex(usage(() => parseManifest(bomb, 'bomb.yaml')), /^bomb\.yaml: .*alias/i);
});

test('a manifest past the size limit is refused before it is parsed', (t) => {
  const huge = `# ${'x'.repeat(MAX_MANIFEST_BYTES)}\n${stringify(MANIFEST)}`;
  t.regex(usage(() => parseManifest(huge, 'huge.yaml')), /huge\.yaml: \d+ characters, over the \d+ a manifest may hold/);
});

test('a connection URL of another engine than the spec names is exit 2, naming the side and never the URL', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'dmo-input-')), 'dm.yaml');
  await writeFile(file, stringify(MANIFEST));
  process.env.DMO_SOURCE_URL = 'postgres://app:pw-not-shown@127.0.0.1:1/shop';
  process.env.DMO_TARGET_URL = 'postgres://app:pw-not-shown@127.0.0.1:1/shop';
  const error = await t.throwsAsync(main(['plan', '-f', file, '--json'], new AbortController().signal));
  t.is((error as { exitCode?: number }).exitCode, EXIT.usage);
  t.is(error.message, 'spec.source.engine is mysql, but the source connection URL (--source-url or DMO_SOURCE_URL) is a postgres URL: fix one of them');
  process.env.DMO_SOURCE_URL = 'ftp://app:pw-not-shown@host/shop';
  const scheme = await t.throwsAsync(main(['plan', '-f', file, '--json'], new AbortController().signal));
  t.is((scheme as { exitCode?: number }).exitCode, EXIT.usage);
  t.regex(scheme.message, /^the source connection URL: connection URL must start with postgres:\/\//);
  t.false(scheme.message.includes('pw-not-shown'));
});
