// Argo CD health check for DataMigration (config/argocd/health.lua), run through the real Lua interpreter.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { LUA, lua51Problem, toLua, type Json } from '../support/lua.ts';

const HEALTH_KEY = 'resource.customizations.health.dataops.dev_DataMigration';
const healthScript = readFileSync(new URL('../../config/argocd/health.lua', import.meta.url), 'utf8');
const cmPatch = readFileSync(new URL('../../config/argocd/argocd-cm-patch.yaml', import.meta.url), 'utf8');

interface Health { status: string; message: string }

function runHealth(resource: Json): Health {
  if (!existsSync(LUA)) {
    throw new Error(`${LUA} not found: install it (apt-get install -y lua5.4) to run the Argo CD health check tests`);
  }
  const program = [
    `obj = ${toLua(resource)}`,
    'local hs = (function()',
    healthScript,
    'end)()',
    'io.write(hs.status .. "\\t" .. hs.message)',
    '',
  ].join('\n');
  const output = execFileSync(LUA, ['-'], { input: program, encoding: 'utf8' });
  const tab = output.indexOf('\t');
  if (tab < 0) throw new Error(`unexpected Lua output: ${JSON.stringify(output)}`);
  return { status: output.slice(0, tab), message: output.slice(tab + 1) };
}

function migration(status: Json, options: { generation?: number; suspend?: boolean } = {}): Json {
  const spec: Record<string, Json> = { source: { ref: 'src' }, target: { ref: 'dst' } };
  if (options.suspend !== undefined) spec.suspend = options.suspend;
  const resource: Record<string, Json> = {
    apiVersion: 'dataops.dev/v1alpha1',
    kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', generation: options.generation ?? 3 },
    spec,
  };
  if (status !== null) resource.status = status;
  return resource;
}

const observed = (phase: string | undefined, message?: string): Json => {
  const status: Record<string, Json> = { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'False' }] };
  if (phase !== undefined) status.phase = phase;
  if (message !== undefined) status.message = message;
  return status;
};

/** The status with these conditions in place of observed()'s (a Ready of the same type is replaced). */
const withConditions = (status: Json, conditions: Json[]): Json => {
  const record = status as Record<string, Json>;
  const types = new Set(conditions.map((c) => (c as { type: string }).type));
  const kept = (record.conditions as Json[]).filter((c) => !types.has((c as { type: string }).type));
  return { ...record, conditions: [...kept, ...conditions] };
};

const APPROVE = ' (approve by setting the annotation dataops.dev/approve)';

const cases: { title: string; resource: Json; status: string; message: string }[] = [
  { title: 'no status yet', resource: migration(null), status: 'Progressing', message: 'Waiting for the operator to observe generation 3' },
  { title: 'status without observedGeneration', resource: migration({ phase: 'Succeeded' }), status: 'Progressing', message: 'Waiting for the operator to observe generation 3' },
  { title: 'generation mismatch', resource: migration(observed('Succeeded'), { generation: 4 }), status: 'Progressing', message: 'Waiting for the operator to observe generation 4' },
  { title: 'mismatch wins over suspend', resource: migration(observed('Copying'), { generation: 5, suspend: true }), status: 'Progressing', message: 'Waiting for the operator to observe generation 5' },
  { title: 'suspended', resource: migration(observed('Copying', '3/10 tables'), { suspend: true }), status: 'Suspended', message: 'Suspended' },
  { title: 'suspend: false is ignored', resource: migration(observed('Copying', '3/10 tables'), { suspend: false }), status: 'Progressing', message: 'Copying: 3/10 tables' },
  { title: 'Succeeded', resource: migration(observed('Succeeded', 'cut over to dst')), status: 'Healthy', message: 'Succeeded: cut over to dst' },
  { title: 'Succeeded without message', resource: migration(observed('Succeeded')), status: 'Healthy', message: 'Succeeded' },
  { title: 'AwaitingApproval', resource: migration(observed('AwaitingApproval', 'validation passed')), status: 'Suspended', message: `AwaitingApproval: validation passed${APPROVE}` },
  { title: 'AwaitingApproval without message', resource: migration(observed('AwaitingApproval')), status: 'Suspended', message: `AwaitingApproval${APPROVE}` },
  { title: 'Failed', resource: migration(observed('Failed', 'copy of orders failed')), status: 'Degraded', message: 'Failed: copy of orders failed' },
  { title: 'RolledBack', resource: migration(observed('RolledBack')), status: 'Degraded', message: 'RolledBack' },
  { title: 'Pending', resource: migration(observed('Pending')), status: 'Progressing', message: 'Pending' },
  { title: 'SchemaMigrating', resource: migration(observed('SchemaMigrating', '2 statements')), status: 'Progressing', message: 'SchemaMigrating: 2 statements' },
  { title: 'Copying', resource: migration(observed('Copying', '3/10 tables')), status: 'Progressing', message: 'Copying: 3/10 tables' },
  { title: 'Syncing', resource: migration(observed('Syncing', 'lag 2s')), status: 'Progressing', message: 'Syncing: lag 2s' },
  { title: 'Validating', resource: migration(observed('Validating')), status: 'Progressing', message: 'Validating' },
  { title: 'CuttingOver', resource: migration(observed('CuttingOver')), status: 'Progressing', message: 'CuttingOver' },
  { title: 'RollingBack', resource: migration(observed('RollingBack', 'restoring source')), status: 'Progressing', message: 'RollingBack: restoring source' },
  { title: 'no phase, no message', resource: migration(observed(undefined)), status: 'Progressing', message: 'Waiting for the operator to report a phase' },
  { title: 'no phase, with message', resource: migration(observed(undefined, 'starting')), status: 'Progressing', message: 'starting' },
  { title: 'empty message is ignored', resource: migration(observed('Copying', '')), status: 'Progressing', message: 'Copying' },
  // The kstatus conditions decide first: Stalled (a refusal that waits for a person) is Degraded in
  // any phase, a terminal state wins over suspend, Ready True is Healthy.
  { title: 'Stalled True while Copying (a refused Job)', resource: migration(withConditions(observed('Copying', 'the API server refused the copy Job'), [{ type: 'Stalled', status: 'True', reason: 'JobRejected', message: 'refused' }])), status: 'Degraded', message: 'Copying: the API server refused the copy Job' },
  { title: 'Stalled True without a status message says why', resource: migration(withConditions(observed('Copying'), [{ type: 'Stalled', status: 'True', reason: 'JobRejected', message: 'quota exceeded' }])), status: 'Degraded', message: 'Copying: quota exceeded' },
  { title: 'Stalled False is not Degraded', resource: migration(withConditions(observed('Copying'), [{ type: 'Stalled', status: 'False', reason: 'InProgress', message: '' }])), status: 'Progressing', message: 'Copying' },
  { title: 'Failed and suspended: Degraded, not Suspended', resource: migration(withConditions(observed('Failed', 'copy failed'), [{ type: 'Stalled', status: 'True', reason: 'JobFailed', message: 'copy failed' }]), { suspend: true }), status: 'Degraded', message: 'Failed: copy failed' },
  { title: 'Succeeded and suspended: Healthy', resource: migration(withConditions(observed('Succeeded'), [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'done' }]), { suspend: true }), status: 'Healthy', message: 'Succeeded' },
  { title: 'Ready True is Healthy', resource: migration(withConditions(observed('Succeeded', 'switched'), [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'switched' }])), status: 'Healthy', message: 'Succeeded: switched' },
  { title: 'non-ASCII message survives', resource: migration(observed('Failed', 'naïve "quote" \\ tab\there')), status: 'Degraded', message: 'Failed: naïve "quote" \\ tab\there' },
];

for (const c of cases) {
  test(`health: ${c.title} -> ${c.status}`, (t) => {
    t.deepEqual(runHealth(c.resource), { status: c.status, message: c.message });
  });
}

test('health: the script compiles with Lua 5.1 and calls nothing 5.1 lacks (gopher-lua)', (t) => {
  t.is(lua51Problem('health.lua', healthScript), undefined);
  // The check can fail: 5.3 syntax and 5.2 library calls are caught.
  t.regex(lua51Problem('x.lua', 'local a = 1 // 2') ?? '', /x\.lua: /);
  t.regex(lua51Problem('x.lua', 'local a = 1 & 2') ?? '', /x\.lua: /);
  t.regex(lua51Problem('x.lua', 'local n = table.move({}, 1, 1, 1)') ?? '', /table\.move is not in Lua 5\.1/);
});

test('argocd-cm patch embeds exactly config/argocd/health.lua', (t) => {
  const doc = parse(cmPatch) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; data?: Record<string, unknown> };
  t.is(doc.kind, 'ConfigMap');
  t.is(doc.metadata?.name, 'argocd-cm');
  t.is(doc.metadata?.namespace, 'argocd');
  t.is(doc.data?.[HEALTH_KEY], healthScript);
});
