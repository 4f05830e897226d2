// kubectl-dm's pure parts: the command line, the status view, the annotation protocol's patches,
// and the commands against an in-memory Cluster (the plugin's own interface; e2e tests use the API server).
import { readFileSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';
import { abortPatch, approvePatch, newRetryToken, normalizeRetryToken, retryPatch, suspendPatch, type MigrationPatch } from '../../src/api/annotations.ts';
import { STEPS } from '../../src/api/constants.ts';
import type { DataMigration, DataMigrationStatus, StepRecord } from '../../src/api/types.ts';
import { parseCommand, UsageError } from '../../src/plugin/args.ts';
import type { Cluster } from '../../src/plugin/cluster.ts';
import { abort, approve, logs, RefusedError, retry, setSuspend, watchDone } from '../../src/plugin/commands.ts';
import { canRetry, formatCount, formatDuration, progressBar, progressLine, renderStatus, syncLine, type JobView } from '../../src/plugin/render.ts';

test('parseCommand: commands, NAME, namespace and kubeconfig options', (t) => {
  t.deepEqual(parseCommand(['status', 'orders', '-w', '-n', 'shop']), { kind: 'status', watch: true, name: 'orders', namespace: 'shop' });
  t.deepEqual(parseCommand(['approve', 'orders', '--kubeconfig', '/k', '--context', 'prod']), { kind: 'approve', name: 'orders', kubeconfig: '/k', context: 'prod' });
  t.deepEqual(parseCommand(['retry', 'orders', '--token', 'fix-2']), { kind: 'retry', name: 'orders', token: 'fix-2' });
  t.deepEqual(parseCommand(['logs', 'orders', '--step', 'copy', '--tail', '50']), { kind: 'logs', name: 'orders', step: 'copy', tail: 50 });
  t.deepEqual(parseCommand([]), { kind: 'help' });
  t.deepEqual(parseCommand(['status', 'x', '--help']), { kind: 'help' });
});

test('parseCommand: bad input is a UsageError that says what is wrong', (t) => {
  const cases: [string[], RegExp][] = [
    [['promote', 'orders'], /unknown command "promote"/],
    [['status'], /status needs the DataMigration's NAME/],
    [['abort', 'a', 'b'], /takes one NAME, got also: b/],
    [['approve', 'a', '-w'], /--watch is not an option of approve/],
    [['logs', 'a', '--step', 'cutover'], new RegExp(`--step cutover: expected one of ${STEPS.join(', ')}$`)],
    [['logs', 'a', '--tail', 'ten'], /--tail ten: expected a whole number/],
    [['retry', 'a', '--token=--'], /needs at least one letter or digit/],
    [['status', 'a', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, message] of cases) {
    const error = t.throws(() => parseCommand(argv), { instanceOf: UsageError }, argv.join(' '));
    t.regex(error.message, message);
  }
});

test('annotation patches follow the operator\'s protocol', (t) => {
  t.deepEqual(approvePatch(4), { metadata: { annotations: { 'dataops.dev/approve': '4' } } });
  t.deepEqual(abortPatch(2), { metadata: { annotations: { 'dataops.dev/abort': '2' } } });
  t.deepEqual(retryPatch('Fix #12'), { metadata: { annotations: { 'dataops.dev/retry': 'fix12', 'dataops.dev/abort': null } } });
  t.throws(() => retryPatch('--'), { message: /no a-z or 0-9/ });
  t.deepEqual(suspendPatch(true), { spec: { suspend: true } });
  t.is(normalizeRetryToken('ABCdef-123456789'), '23456789', 'the last 8, as decide.ts keeps them');
  t.is(normalizeRetryToken('!!'), undefined);
  const token = newRetryToken(new Date('2026-12-01T06:00:00Z'), Buffer.from([1, 2, 3, 4]));
  t.regex(token, /^[a-z0-9]{8}$/);
  t.is(normalizeRetryToken(token), token, 'a fresh token survives normalisation unchanged');
  t.not(newRetryToken(), newRetryToken(), 'two fresh tokens differ');
});

test('formatting: durations, counts, the progress bar and line', (t) => {
  t.deepEqual([5, 400, 7500, 200000].map(formatDuration), ['5s', '6m40s', '2h05m', '2d07h']);
  t.deepEqual([950, 12_300, 4_100_000, 2e9].map(formatCount), ['950', '12.3k', '4.1M', '2.0G']);
  t.is(progressBar(50, 10), '[#####.....]  50%');
  t.is(progressBar(140, 4), '[####] 100%');
  t.is(progressLine({ percent: 45, tablesTotal: 12, tablesDone: 5, rowsCopied: 4_100_000, rowsEstimated: 9_000_000, rowsPerSecond: 12_300, etaSeconds: 400 }),
    '[##############................]  45%  5/12 tables  4.1M of ~9.0M rows  12.3k rows/s  ETA 6m40s');
  t.is(progressLine({ rowsCopied: 50, rowsEstimated: 200 }), '[########......................]  25%  50 of ~200 rows', 'percent from the rows when status has none');
});

const now = new Date('2026-12-01T06:10:00Z');

function migration(status: DataMigration['status'], spec: Partial<DataMigration['spec']> = {}): DataMigration {
  return {
    apiVersion: 'dataops.dev/v1alpha1', kind: 'DataMigration',
    metadata: { name: 'orders', namespace: 'shop', generation: 2 },
    spec: { source: { engine: 'mysql', secretRef: { name: 'src' } }, target: { engine: 'postgres', secretRef: { name: 'dst' } }, ...spec },
    ...(status ? { status } : {}),
  };
}

const job = (step: string, run: string, extra: Partial<JobView> = {}): JobView => ({
  name: `orders-${run}-${step}`, step, run, createdAt: new Date('2026-12-01T06:00:00Z'), active: 0, succeeded: 0, failed: 0, ...extra,
});

test('renderStatus: every part of the view', (t) => {
  const text = renderStatus({
    now,
    migration: migration({
      phase: 'Validating', observedGeneration: 2, runId: 'g1', startedAt: '2026-12-01T06:00:00Z',
      conditions: [{ type: 'Ready', status: 'False', reason: 'JobRunning', message: 'validating', lastTransitionTime: '2026-12-01T06:05:00Z' }],
      progress: { percent: 100, tablesTotal: 1, tablesDone: 1, rowsCopied: 1000, rowsEstimated: 1000 },
      validation: { passed: false, summary: '3 passed, 1 failed', checks: [{ name: 'orders', kind: 'RowCount', passed: false, source: '1000', target: '999' }, { name: 'x', kind: 'Rule', passed: true }] },
      active: 'track=blue',
      jobs: [{ step: 'copy', name: 'orders-g1-copy', state: 'Succeeded' }],
    }, { cutover: { service: 'api', fromSelector: { track: 'blue' }, toSelector: { track: 'green' } } }),
    jobs: [
      job('copy', 'g0', { finished: { type: 'Failed' }, failed: 4 }),
      job('copy', 'g1', { succeeded: 1, completedAt: new Date('2026-12-01T06:04:30Z'), finished: { type: 'Complete' } }),
      job('validate', 'g1', { active: 1, createdAt: new Date('2026-12-01T06:05:00Z') }),
    ],
    events: [
      { time: new Date('2026-12-01T06:05:00Z'), type: 'Normal', reason: 'Validating', message: 'validate Job started' },
      { time: new Date('2026-12-01T06:01:00Z'), type: 'Normal', reason: 'Copying', message: 'copy Job started' },
    ],
  });
  t.is(text, [
    'Name:       shop/orders',
    'Phase:      Validating',
    'Ready:      False  JobRunning: validating',
    'Strategy:   BigBang  mysql → postgres',
    'Run:        g1  started 10m00s ago',
    '',
    'Steps:',
    '  ✔ copy     Succeeded Job orders-g1-copy  pods 0 active, 1 succeeded, 0 failed  took 4m30s',
    '  ▶ validate Running   Job orders-g1-validate  pods 1 active, 0 succeeded, 0 failed  started 5m00s ago',
    '  (1 Job of earlier runs)',
    '',
    'Progress:   [##############################] 100%  1/1 tables  1.0k of ~1.0k rows',
    '',
    'Validation: FAILED  3 passed, 1 failed',
    '  ✖ RowCount orders (source 1000, target 999)',
    '',
    'Active:     track=blue  (Service api, approval Automatic)',
    '',
    'Events:',
    '  9m00s ago   Normal  Copying           copy Job started',
    '  5m00s ago   Normal  Validating        validate Job started',
    '',
  ].join('\n'));
});

test('renderStatus: not observed yet, a stale generation, a failed step and what to do next', (t) => {
  const fresh = renderStatus({ now, migration: migration(undefined), jobs: [], events: [] });
  t.regex(fresh, /Phase:\s+\(not observed yet\)/);
  t.regex(fresh, /Observed:\s+generation - of 2/);
  t.regex(fresh, /\(no step has started\)/);
  t.regex(fresh, /Events:\n {2}\(none\)/);
  const failed = renderStatus({
    now, jobs: [job('copy', 'g1', { failed: 4, finished: { type: 'Failed', message: 'BackoffLimitExceeded' } })], events: [],
    migration: migration({ phase: 'Failed', observedGeneration: 2, runId: 'g1', conditions: [{ type: 'Ready', status: 'False', reason: 'JobFailed', message: 'the copy Job failed', lastTransitionTime: '2026-12-01T06:05:00Z' }], jobs: [{ step: 'copy', name: 'orders-g1-copy', state: 'Failed', message: 'duplicate key 7' }] }),
  });
  t.regex(failed, /✖ copy {5}Failed {4}Job orders-g1-copy .*\n {6}duplicate key 7/);
  t.regex(failed, /Next:\s+after fixing the cause: kubectl dm retry orders/);
  const waiting = renderStatus({ now, jobs: [], events: [], migration: migration({ phase: 'AwaitingApproval', observedGeneration: 2 }) });
  t.regex(waiting, /Next:\s+waiting for approval: kubectl dm approve orders/);
  const paused = renderStatus({ now, jobs: [], events: [], migration: migration({ phase: 'Copying', observedGeneration: 2 }, { suspend: true }) });
  t.regex(paused, /Phase:\s+Copying {2}\(suspended\)/);
  t.regex(paused, /Next:\s+suspended: kubectl dm resume orders/);
});

/** The plugin's Cluster interface over one in-memory DataMigration: what it was asked to write. */
function memoryCluster(initial: DataMigration, jobs: JobView[] = [], pods: Record<string, string[]> = {}): Cluster & { patches: MigrationPatch[] } {
  const patches: MigrationPatch[] = [];
  return {
    namespace: 'shop', patches,
    getMigration: (name) => (name === initial.metadata?.name ? Promise.resolve(initial) : Promise.reject(new Error(`${name} not found`))),
    patchMigration: (_name, patch) => { patches.push(patch); return Promise.resolve(initial); },
    listJobs: () => Promise.resolve(jobs),
    listEvents: () => Promise.resolve([]),
    listJobPods: (name) => Promise.resolve(pods[name] ?? []),
    podLog: (pod, tail) => Promise.resolve(`log of ${pod}${tail === undefined ? '' : ` (last ${tail})`}\n`),
  };
}

/** A Failed migration whose ledger says how `step` of run `runId` ended. */
const failedWith = (step: 'copy' | 'validate', reason: string, runId = 'g1'): DataMigration => migration({
  phase: 'Failed', runId, observedGeneration: 2, steps: [{ step, runId, job: `orders-${runId}-${step}`, outcome: 'Failed', reason }],
  conditions: [{ type: 'Ready', status: 'False', reason, message: '', lastTransitionTime: '2026-12-01T06:00:00Z' }],
});

test('commands write only what the operator would act on', async (t) => {
  const manual = { cutover: { service: 'api', fromSelector: { a: 'b' }, toSelector: { a: 'c' }, approval: 'Manual' as const } };
  const waiting = memoryCluster(migration({ phase: 'AwaitingApproval' }, manual));
  t.regex(await approve(waiting, 'orders'), /approved generation 2 of orders: the cutover proceeds now/);
  t.deepEqual(waiting.patches, [approvePatch(2)]);
  await t.throwsAsync(approve(memoryCluster(migration({ phase: 'Copying' })), 'orders'), { instanceOf: RefusedError, message: /has no cutover/ });
  await t.throwsAsync(approve(memoryCluster(migration({ phase: 'Succeeded' }, manual)), 'orders'), { message: /Succeeded: there is no cutover left/ });

  const running = memoryCluster(migration({ phase: 'Copying' }));
  await abort(running, 'orders');
  t.deepEqual(running.patches, [abortPatch(2)]);
  await t.throwsAsync(abort(memoryCluster(migration({ phase: 'RolledBack' })), 'orders'), { message: /RolledBack already/ });

  const failed = memoryCluster(failedWith('copy', 'JobFailed'));
  t.regex(await retry(failed, 'orders', 'Again-1'), /token again1/);
  t.deepEqual(failed.patches, [retryPatch('again1')]);
  await t.throwsAsync(retry(memoryCluster(failedWith('copy', 'JobFailed', 'g1-ragain1')), 'orders', 'again1'), { message: /token again1 was used by run g1-ragain1/ });
  await t.throwsAsync(retry(memoryCluster(failedWith('validate', 'ValidationFailed')), 'orders'), { message: /reason ValidationFailed: only a failed step Job or an abort/ });
  await t.throwsAsync(retry(memoryCluster(migration({ phase: 'Copying' })), 'orders'), { message: /Copying: only a Failed migration/ });

  const active = memoryCluster(migration({ phase: 'Copying' }));
  await setSuspend(active, 'orders', true);
  t.regex(await setSuspend(active, 'orders', false), /not suspended already/, 'nothing to resume: no write');
  t.deepEqual(active.patches, [suspendPatch(true)]);
});

test('logs picks the step\'s Job of the current run and prints each pod', async (t) => {
  const jobs = [job('copy', 'g0'), job('copy', 'g1'), job('validate', 'g1')];
  const cluster = memoryCluster(migration({ phase: 'Validating', runId: 'g1' }), jobs, { 'orders-g1-copy': ['copy-0', 'copy-1'], 'orders-g1-validate': ['validate-0'] });
  t.is(await logs(cluster, 'orders'), 'log of validate-0\n', 'the latest step by default');
  t.is(await logs(cluster, 'orders', 'copy', 10), '==> pod copy-0 <==\nlog of copy-0 (last 10)\n\n==> pod copy-1 <==\nlog of copy-1 (last 10)\n');
  await t.throwsAsync(logs(cluster, 'orders', 'rollback'), { message: /has no rollback Job in run g1 \(Jobs: copy\/g0, copy\/g1, validate\/g1\)/ });
});

test('watchDone: a terminal phase for the latest generation', (t) => {
  t.true(watchDone(migration({ phase: 'Succeeded', observedGeneration: 2 })));
  t.false(watchDone(migration({ phase: 'Succeeded', observedGeneration: 1 })), 'a newer spec is not observed yet');
  t.false(watchDone(migration({ phase: 'Copying', observedGeneration: 2 })));
});

test('renderStatus reads the step ledger (status.steps) of the current run, Service steps included', (t) => {
  const text = renderStatus({
    now, events: [],
    jobs: [job('copy', 'g1', { succeeded: 1, finished: { type: 'Complete' }, completedAt: new Date('2026-12-01T06:02:00Z') })],
    migration: migration({
      phase: 'Failed', observedGeneration: 2, runId: 'g1',
      steps: [
        { step: 'start', runId: 'g1' },
        { step: 'copy', runId: 'g0', job: 'orders-g0-copy', outcome: 'Failed', reason: 'JobFailed' },
        { step: 'copy', runId: 'g1', job: 'orders-g1-copy', outcome: 'Succeeded' },
        { step: 'switch', runId: 'g1', outcome: 'Rejected', message: 'services "api" is forbidden' },
        { step: 'validate', runId: 'g1', job: 'orders-g1-validate', outcome: 'Aborted', message: 'aborted by dataops.dev/abort' },
      ],
    }, { cutover: { service: 'api', fromSelector: { a: 'b' }, toSelector: { a: 'c' } } }),
  });
  t.regex(text, /Steps:\n {2}✔ copy {5}Succeeded Job orders-g1-copy {2}pods 0 active, 1 succeeded, 0 failed {2}took 2m00s\n {2}✖ validate Aborted {3}Job orders-g1-validate {2}Job not found\n {6}aborted by dataops.dev\/abort\n {2}✖ switch {3}Rejected {2}Service api\n {6}services "api" is forbidden\n\n/);
  t.regex(text, /Next:\s+after fixing the cause: kubectl dm retry orders/, 'an aborted step is retryable');
});

test('renderStatus lists the ledger\'s switch (cleared to go, or patched) and finish (how the run ended) entries', (t) => {
  const render = (steps: NonNullable<DataMigration['status']>['steps'], phase: NonNullable<DataMigration['status']>['phase']): string => renderStatus({
    now, events: [], jobs: [],
    migration: migration({ phase, observedGeneration: 2, runId: 'g1', steps }, { cutover: { service: 'api', fromSelector: { a: 'b' }, toSelector: { a: 'c' } } }),
  });
  const cleared = render([{ step: 'switch', runId: 'g1' }], 'CuttingOver');
  t.regex(cleared, /\n {2}… switch {3}Pending {3}Service api {2}\(cleared to go, not patched yet\)\n/);
  const patched = render([{ step: 'switch', runId: 'g1', requestedAt: '2026-12-01T06:09:00Z' }], 'CuttingOver');
  t.regex(patched, /\n {2}… switch {3}Requested Service api {2}patched 1m00s ago\n/);
  const succeeded = render([{ step: 'switch', runId: 'g1', outcome: 'Succeeded' }, { step: 'finish', runId: 'g1', outcome: 'Succeeded', reason: 'Succeeded', finishedAt: '2026-12-01T06:08:00Z' }], 'Succeeded');
  t.regex(succeeded, /\n {2}✔ switch {3}Succeeded Service api\n {2}✔ finish {3}Succeeded 2m00s ago\n/);
  const rolledBack = render([{ step: 'finish', runId: 'g1', outcome: 'Failed', reason: 'RolledBack', finishedAt: '2026-12-01T06:08:00Z' }], 'RolledBack');
  t.regex(rolledBack, /\n {2}✖ finish {3}Failed {4}RolledBack {2}2m00s ago\n/);
});

test('canRetry follows the operator: the ledger when there is one, else the ledger the conditions imply', (t) => {
  const ready = (reason: string) => [{ type: 'Ready' as const, status: 'False' as const, reason, message: '', lastTransitionTime: '2026-12-01T06:00:00Z' }];
  const spec: DataMigration['spec'] = { source: { engine: 'postgres', secretRef: { name: 's' } }, target: { engine: 'postgres', secretRef: { name: 't' } } };
  const at = (status: DataMigrationStatus, s = spec): DataMigration => ({ metadata: { name: 'dm' }, spec: s, status });
  t.true(canRetry(at({ phase: 'Failed', runId: 'g1', steps: [{ step: 'copy', runId: 'g1', outcome: 'Failed', reason: 'JobFailed' }] })));
  t.false(canRetry(at({ phase: 'Failed', runId: 'g1', steps: [{ step: 'validate', runId: 'g1', outcome: 'Failed', reason: 'ValidationFailed' }] })), 'differences are not retried');
  t.false(canRetry(at({ phase: 'Failed', runId: 'g1', steps: [], conditions: ready('JobFailed') })), 'the ledger wins over conditions');
  t.false(canRetry(at({ phase: 'Copying', runId: 'g1', steps: [{ step: 'copy', runId: 'g1', outcome: 'Aborted' }] })), 'only a Failed migration');
  t.true(canRetry(at({ phase: 'Failed', conditions: ready('Aborted') })), 'a status from before the ledger, aborted');
  // ChangeCapture: a failed cutover is retried from the copy, once the capture is released.
  const capture: DataMigration['spec'] = { ...spec, strategy: { type: 'Trickle', incremental: { mode: 'ChangeCapture' } }, cutover: { service: 'api', fromSelector: { t: 'b' }, toSelector: { t: 'g' }, fence: { type: 'External' } } };
  const lifted: StepRecord[] = [{ step: 'copy', runId: 'g1', outcome: 'Succeeded' }, { step: 'fence', runId: 'g1', outcome: 'Succeeded' }, { step: 'finish', runId: 'g1', outcome: 'Failed', reason: 'FenceLifted' }];
  t.false(canRetry(at({ phase: 'Failed', runId: 'g1', steps: lifted }, capture)), 'not while the capture is being released');
  t.true(canRetry(at({ phase: 'Failed', runId: 'g1', steps: [...lifted, { step: 'release', runId: 'g1', outcome: 'Succeeded' }] }, capture)));
});

test('shipping: the package\'s bin, the krew manifest and its launcher agree on the plugin\'s entry point', (t) => {
  const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
  t.is(pkg.bin['kubectl-dm'], 'dist/plugin/main.js', 'kubectl finds kubectl-dm on the PATH');
  t.is(pkg.scripts['kubectl-dm'], 'node src/plugin/main.ts');
  t.regex(read('src/plugin/main.ts').split('\n')[0] ?? '', /^#!\/usr\/bin\/env node$/);
  // krew-release-bot fills the {{ }} placeholders at release time.
  const manifest = parse(read('config/krew/dm.yaml').replace(/\{\{ addURIAndSha .* \}\}/, 'uri: https://example.com/a.tar.gz').replaceAll('{{ .TagName }}', 'v0.1.0')) as {
    kind: string; metadata: { name: string }; spec: { platforms: { bin: string; uri: string }[] };
  };
  t.is(manifest.kind, 'Plugin');
  t.is(manifest.metadata.name, 'dm', 'kubectl dm');
  t.deepEqual(manifest.spec.platforms.map((p) => p.bin), ['kubectl-dm']);
  t.regex(read('config/krew/kubectl-dm'), /exec node "\$\(dirname "\$self"\)\/dist\/plugin\/main\.js" "\$@"/);
});

test('syncLine: the change stream\'s lag, the fence and the release, each only when known', (t) => {
  t.is(syncLine({}), 'no report yet');
  t.is(syncLine({ lag: '1.2s', pendingBytes: 2048, changes: 1500, appliedPosition: '0/16B3748' }), 'lag 1.2s · 2.0k bytes pending · 1.5k changes applied · at 0/16B3748');
  t.regex(syncLine({ writeBlockedMs: 1800, released: false }), /writes blocked 1\.8 s · capture NOT released/);
});
