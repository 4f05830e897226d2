// Timeouts on database I/O (issue 13, defect 6) and TLS as the spec says (defect 7), through the
// CLI as Jobs run it: a server that accepts and never answers fails the plan and the copy step
// within the connect timeout, naming the side; a URL that contradicts spec.*.tls is refused.
import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../src/engine/db/dialect.ts';
import { freshDatabase } from '../support/databases.ts';
import { dmctl } from '../support/dmctl.ts';
import { execSql } from '../support/sql.ts';

async function manifestFile(from: Engine, to: Engine, sourceTls = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dmctl-timeouts-'));
  const path = join(dir, 'migration.yaml');
  await writeFile(path, `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: hang, namespace: test}
spec:
  source: {engine: ${from}, secretRef: {name: source}, acceptWritableRole: true${sourceTls}}
  target: {engine: ${to}, secretRef: {name: target}}
  schema: {createMissingTables: true}
  tables: [{name: orders}]
`);
  return path;
}

/** A loopback listener that accepts connections and never writes a byte (a hung server, a black-holing proxy). */
async function silentListener(t: import('ava').ExecutionContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => { resolve(); });
  }));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const CONNECT_TIMEOUT_SECONDS = 2;
// Slack over the timeout, on top of what the same command takes to fail at once (a refused port):
// Node's start-up on a busy test machine varies by seconds from one run to the next.
const SLACK_MS = 20_000;

/** How long the command takes to fail when the server refuses the connection at once: start-up, manifest, nothing else. */
async function immediateFailureMs(command: string[], file: string, env: Record<string, string>): Promise<number> {
  const began = performance.now();
  const run = await dmctl([...command, '-f', file], env);
  if (run.code !== 1) throw new Error(`the baseline run ended with ${String(run.code)}`);
  return performance.now() - began;
}

for (const [engine, scheme] of [['postgres', 'postgres'], ['mysql', 'mysql']] as const) {
  test(`${engine}: a source that accepts and never answers fails plan and step copy within the timeout, naming the source`, async (t) => {
    const port = await silentListener(t);
    const target = await freshDatabase(t, 'postgres');
    const file = await manifestFile(engine, 'postgres');
    const env = { DMO_SOURCE_URL: `${scheme}://app:hush-hush-pw@127.0.0.1:${String(port)}/shop`, DMO_TARGET_URL: target, DMO_CONNECT_TIMEOUT_SECONDS: String(CONNECT_TIMEOUT_SECONDS) };
    for (const command of [['plan'], ['step', 'copy']]) {
      const baseline = await immediateFailureMs(command, file, { ...env, DMO_SOURCE_URL: `${scheme}://app:pw@127.0.0.1:1/shop` });
      const began = performance.now();
      const run = await dmctl([...command, '-f', file], env);
      const elapsed = performance.now() - began;
      const label = `dmctl ${command.join(' ')}`;
      t.is(run.code, 1, label);
      t.true(elapsed < baseline + CONNECT_TIMEOUT_SECONDS * 1000 + SLACK_MS, `${label} ended after ${String(Math.round(elapsed))} ms (failing at once took ${String(Math.round(baseline))} ms)`);
      const message = String(run.events.find((e) => e.event === 'error')?.message);
      t.regex(message, new RegExp(`cannot connect to ${engine} \\(the source\\): connect timed out after ${String(CONNECT_TIMEOUT_SECONDS)} s`), label);
      t.false(JSON.stringify(run.events).includes('hush-hush-pw'), `${label}: no password`);
    }
  });
}

test('a target that never answers is named as the target', async (t) => {
  const port = await silentListener(t);
  const source = await freshDatabase(t, 'mysql');
  await execSql(source, ['CREATE TABLE orders (id bigint PRIMARY KEY)']);
  const run = await dmctl(['plan', '-f', await manifestFile('mysql', 'postgres')], {
    DMO_SOURCE_URL: source, DMO_TARGET_URL: `postgres://app:pw@127.0.0.1:${String(port)}/shop`, DMO_CONNECT_TIMEOUT_SECONDS: String(CONNECT_TIMEOUT_SECONDS),
  });
  t.is(run.code, 1);
  t.regex(String(run.events.find((e) => e.event === 'error')?.message), /cannot connect to postgres \(the target\): connect timed out/);
});

test('spec tls verify-full with sslmode=disable in the URL is refused (exit 2) before any connection, naming neither URL nor password', async (t) => {
  const port = await silentListener(t);
  const file = await manifestFile('postgres', 'postgres', ', tls: {mode: verify-full}');
  const source = `postgres://app:hush-hush-pw@127.0.0.1:${String(port)}/shop?sslmode=disable`;
  const run = await dmctl(['plan', '-f', file], { DMO_SOURCE_URL: source, DMO_TARGET_URL: 'postgres://app:pw@127.0.0.1:1/x' });
  t.is(run.code, 2);
  const message = String(run.events.find((e) => e.event === 'error')?.message);
  t.regex(message, /the source connection URL says sslmode=disable, but spec\.source\.tls\.mode is verify-full/);
  t.false(message.includes('hush-hush-pw') || message.includes(String(port)), 'neither the password nor the URL');
  t.false(/timed out/.test(message), 'refused before connecting, not timed out on the silent listener');
});
