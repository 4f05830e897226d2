// The documented command (`npm run -s dmctl -- … --json`, README) prints JSON lines only on
// stdout: a script can parse every line, npm's banner included (there is none with -s).
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { freshDatabase, freshTargetDatabase } from '../support/databases.ts';
import { repoRoot } from '../support/platform.ts';
import { execSql } from '../support/sql.ts';

test('npm run -s dmctl -- plan --json: every stdout line is a JSON record of the log schema', async (t) => {
  const source = await freshDatabase(t, 'postgres');
  const target = await freshTargetDatabase(t, 'postgres');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY, note text)', "INSERT INTO orders VALUES (1, 'a')"]);
  const file = join(await mkdtemp(join(tmpdir(), 'dmo-json-')), 'dm.yaml');
  await writeFile(file, stringify({
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration', metadata: { name: 'orders', namespace: 'shop' },
    spec: { source: { engine: 'postgres', secretRef: { name: 's' }, acceptWritableRole: true }, target: { engine: 'postgres', secretRef: { name: 't' } }, schema: { createMissingTables: true } },
  }));
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'dmctl', '--', 'plan', '-f', file, '--json'], {
      cwd: repoRoot, env: { ...process.env, DMO_SOURCE_URL: source, DMO_TARGET_URL: target }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (exit) => { resolve({ code: exit, stdout: out }); });
  });
  t.is(code, 0, stdout);
  const lines = stdout.split('\n').filter((line) => line !== '');
  t.true(lines.length > 0);
  for (const line of lines) {
    const record = JSON.parse(line) as Record<string, unknown>;
    t.deepEqual(Object.keys(record).slice(0, 3), ['ts', 'level', 'msg'], line);
  }
  t.true(lines.some((line) => (JSON.parse(line) as { event?: string }).event === 'plan'));
});
