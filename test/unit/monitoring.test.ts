// The chart's monitoring: the alerts (files/prometheus-rules.yaml, rendered with the chart's
// default thresholds as templates/prometheusrule.yaml renders them) pass `promtool check rules`
// and their `promtool test rules` cases (test/fixtures/prometheus/alerts.test.yaml, at least one
// per alert); and every metric the rules and the Grafana dashboard name is one the operator's
// registry (src/controller/metrics.ts) exports.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parse } from 'yaml';
import { createMetrics } from '../../src/controller/metrics.ts';

const root = new URL('../../', import.meta.url).pathname;
const chart = join(root, 'charts', 'datamigration-operator');
const PROMTOOL = '/usr/bin/promtool';
const rulesTemplate = readFileSync(join(chart, 'files', 'prometheus-rules.yaml'), 'utf8');
const dashboard = readFileSync(join(chart, 'files', 'grafana-dashboard.json'), 'utf8');
const promtoolTests = join(root, 'test', 'fixtures', 'prometheus', 'alerts.test.yaml');

interface RuleValues { stuckAfterSeconds: number; approvalWaitSeconds: number; noLeaderFor: string; reconcileErrorRatio: number }
const values = (parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as { metrics: { prometheusRule: RuleValues & { enabled: boolean } } }).metrics.prometheusRule;

/** The rules file with its placeholders replaced, as templates/prometheusrule.yaml does. */
function renderRules(v: RuleValues): string {
  return rulesTemplate
    .replaceAll('__STUCK_AFTER_SECONDS__', String(v.stuckAfterSeconds))
    .replaceAll('__APPROVAL_WAIT_SECONDS__', String(v.approvalWaitSeconds))
    .replaceAll('__NO_LEADER_FOR__', v.noLeaderFor)
    .replaceAll('__RECONCILE_ERROR_RATIO__', String(v.reconcileErrorRatio));
}

function promtool(args: string[], cwd: string): string {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} not found: install Debian's prometheus package (npm run setup does)`);
  try {
    return execFileSync(PROMTOOL, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${failed.stdout ?? ''}${failed.stderr ?? ''}`, { cause: error });
  }
}

interface RuleGroup { rules: { alert?: string; record?: string; expr: string }[] }
const rendered = renderRules(values);
const groups = (parse(rendered) as { groups: RuleGroup[] }).groups;
const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined).map((r) => r.alert ?? '');

test('the chart ships the alerts off by default, and every placeholder has a value', (t) => {
  t.false(values.enabled);
  t.notRegex(rendered, /__[A-Z_]+__/);
  t.deepEqual(alerts.sort(), [
    'DataMigrationAwaitingApprovalTooLong', 'DataMigrationFailed', 'DataMigrationOperatorNoLeader', 'DataMigrationReconcileErrorsRising', 'DataMigrationStuckInPhase',
  ]);
});

test('promtool check rules and promtool test rules pass, with a test case for every alert', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dmo-rules-'));
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }); });
  writeFileSync(join(dir, 'rules.yaml'), rendered);
  copyFileSync(promtoolTests, join(dir, 'alerts.test.yaml'));
  t.regex(promtool(['check', 'rules', 'rules.yaml'], dir), /SUCCESS: 5 rules found/);
  t.regex(promtool(['test', 'rules', 'alerts.test.yaml'], dir), /SUCCESS/);
  const cases = parse(readFileSync(promtoolTests, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const firing = new Set(cases.tests.flatMap((c) => c.alert_rule_test ?? []).filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
  const quiet = new Set(cases.tests.flatMap((c) => c.alert_rule_test ?? []).filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
  for (const alert of alerts) {
    t.true(firing.has(alert), `${alert} has a case where it fires`);
    t.true(quiet.has(alert), `${alert} has a case where it does not`);
  }
});

test('a changed threshold reaches the rules (stuck after 8 h: the 7 h case no longer fires)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dmo-rules-'));
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }); });
  writeFileSync(join(dir, 'rules.yaml'), renderRules({ ...values, stuckAfterSeconds: 8 * 3600 }));
  copyFileSync(promtoolTests, join(dir, 'alerts.test.yaml'));
  const error = t.throws(() => promtool(['test', 'rules', 'alerts.test.yaml'], dir));
  t.regex(error.message, /alertname: DataMigrationStuckInPhase, time: 7h/);
});

/** Metric names in PromQL text: the operator's (datamigration_…) and its work queue's (client-go's workqueue_…). */
function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/\b(?:datamigration|workqueue)_[a-z0-9_]+/g)].map((m) => m[0]));
}

test('every metric the rules and the dashboard name is one the operator exports', async (t) => {
  const exported = new Set<string>();
  for (const metric of await createMetrics().registry.getMetricsAsJSON()) {
    exported.add(metric.name);
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${metric.name}${suffix}`);
  }
  const dashboardExprs = [...dashboard.matchAll(/"(?:expr|definition)": "((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1] ?? ''}"`) as string);
  t.true(dashboardExprs.length >= 24, `${dashboardExprs.length} dashboard queries`);
  const ruleExprs = groups.flatMap((g) => g.rules).map((r) => r.expr);
  const named = metricNames([...ruleExprs, ...dashboardExprs].join('\n'));
  t.true(named.size >= 18, [...named].join(', '));
  // What the brief names is shown or alerted on: per migration, the step histogram, the work queue.
  for (const name of ['datamigration_info', 'datamigration_rows_copied', 'datamigration_rows_estimated', 'datamigration_eta_seconds',
    'datamigration_phase_since_timestamp_seconds', 'datamigration_step_duration_seconds_bucket', 'workqueue_depth', 'workqueue_adds_total',
    'workqueue_queue_duration_seconds_bucket', 'workqueue_work_duration_seconds_bucket', 'workqueue_retries_total', 'datamigration_reconcile_errors_total']) {
    t.true(named.has(name), `${name} is in the rules or the dashboard`);
  }
  for (const name of named) t.true(exported.has(name), `${name} is not exported by the operator`);
});

test('the dashboard is valid JSON with unique panel ids and a Prometheus data source variable', (t) => {
  const parsed = JSON.parse(dashboard) as { uid: string; panels: { id: number; title: string }[]; templating: { list: { name: string; type: string }[] } };
  t.is(parsed.uid, 'datamigration-operator');
  t.is(new Set(parsed.panels.map((p) => p.id)).size, parsed.panels.length);
  t.true(parsed.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
});
