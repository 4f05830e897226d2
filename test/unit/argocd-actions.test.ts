// Argo CD resource actions for DataMigration (config/argocd/actions/, in the layout of Argo CD's
// resource_customizations/<group>/<kind>/actions/), run through the real Lua interpreter against
// the cases of their action_test.yaml, in Argo CD's own test format.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';
import { lua51Problem, runLuaScript, type Json } from '../support/lua.ts';
import { normalizeRetryToken } from '../../src/api/annotations.ts';

const dir = new URL('../../config/argocd/actions/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, dir), 'utf8');
const ACTIONS = ['approve', 'abort', 'retry', 'suspend', 'resume'] as const;
/** os.time() during the tests: 2026-12-01T06:00:00Z. */
const TIME = 1764568800;

interface ActionTests {
  discoveryTests: { inputPath: string; result: { name: string; disabled: boolean }[] }[];
  actionTests: { action: string; inputPath: string; expectedOutputPath: string }[];
}
const cases = parse(read('action_test.yaml')) as ActionTests;
const fixture = (path: string): Json => parse(read(path)) as Json;

for (const c of cases.discoveryTests) {
  test(`discovery: ${c.inputPath}`, (t) => {
    const offered = runLuaScript(read('discovery.lua'), fixture(c.inputPath)) as Record<string, { disabled: boolean; iconClass: string }>;
    t.deepEqual(Object.keys(offered).sort(), [...ACTIONS].sort());
    t.deepEqual(c.result.map((r) => ({ name: r.name, disabled: offered[r.name]?.disabled })), c.result);
  });
}

for (const c of cases.actionTests) {
  test(`action ${c.action}: ${c.inputPath} -> ${c.expectedOutputPath}`, (t) => {
    const output = runLuaScript(read(`${c.action}/action.lua`), fixture(c.inputPath), { time: TIME });
    t.deepEqual(output, fixture(c.expectedOutputPath));
  });
}

test('every action has a test case and the actions add annotations where there were none', (t) => {
  t.deepEqual([...new Set(cases.actionTests.map((c) => c.action))].sort(), [...ACTIONS].sort());
  const bare = fixture('testdata/copying.yaml') as { metadata: Record<string, Json> };
  const out = runLuaScript(read('abort/action.lua'), bare) as { metadata: { annotations: Record<string, string> } };
  t.deepEqual(out.metadata.annotations, { 'dataops.dev/abort': '3' });
});

test('retry\'s token is one the operator keeps whole, and changes with the time', (t) => {
  const token = (time: number): string => {
    const out = runLuaScript(read('retry/action.lua'), fixture('testdata/failed-job.yaml'), { time }) as { metadata: { annotations: Record<string, string> } };
    return out.metadata.annotations['dataops.dev/retry'] ?? '';
  };
  const first = token(TIME);
  t.is(normalizeRetryToken(first), first, 'only a-z and 0-9, at most 8');
  t.not(token(TIME + 1), first);
});

test('scripts compile with Lua 5.1 and call nothing 5.1 lacks (gopher-lua)', (t) => {
  for (const path of ['discovery.lua', ...ACTIONS.map((a) => `${a}/action.lua`)]) t.is(lua51Problem(path, read(path)), undefined);
});

test('argocd-cm patch embeds exactly config/argocd/actions/', (t) => {
  const cm = parse(readFileSync(new URL('../../config/argocd/argocd-cm-patch.yaml', import.meta.url), 'utf8')) as { data: Record<string, string> };
  const actions = parse(cm.data['resource.customizations.actions.dataops.dev_DataMigration'] ?? '') as { 'discovery.lua': string; definitions: { name: string; 'action.lua': string }[] };
  t.is(actions['discovery.lua'], read('discovery.lua'));
  t.deepEqual(actions.definitions.map((d) => d.name), [...ACTIONS]);
  for (const definition of actions.definitions) t.is(definition['action.lua'], read(`${definition.name}/action.lua`), definition.name);
});
