// The operator as e2e tests run it: in this process, watching one test namespace, with the Helm
// chart's RBAC for that namespace (single-namespace mode) and a token of the chart's
// ServiceAccount (TokenRequest), never the admin certificate, and with leader election on. A
// permission the chart lacks fails the test that needs it.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { EngineConfig } from '../../src/controller/job-builder.ts';
import { createLogger } from '../../src/controller/logger.ts';
import { startOperator, type RunningOperator } from '../../src/controller/operator.ts';
import { kubectl, testKubeConfig } from './kube.ts';
import { repoRoot } from './platform.ts';
import { waitFor } from './process.ts';
import { helmTemplate } from './tools.ts';

const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/**
 * Applies the chart's RBAC for `namespace` (and the other watched namespaces: a Role in each) and
 * returns a kubeconfig with a token of its ServiceAccount, which lives in `namespace`.
 * The ClusterRoles aggregated into view/edit are for people, not the operator: left out here.
 */
export async function chartKubeConfig(namespace: string, alsoWatch: readonly string[] = []): Promise<k8s.KubeConfig> {
  const admin = testKubeConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const release = `dmo-${randomBytes(3).toString('hex')}`;
  const rendered = parseAllDocuments(await helmTemplate(release, namespace, [`watchNamespaces={${[namespace, ...alsoWatch].join(',')}}`, 'rbac.aggregateToDefaultRoles=false']))
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null)
    .filter((m) => RBAC_KINDS.includes(m?.kind ?? ''));
  if (rendered.some((m) => m?.kind?.startsWith('Cluster'))) throw new Error('single-namespace mode rendered cluster-scoped RBAC');
  // Every rendered object names its namespace (the release's, or a watched one for its Role).
  const applied = await kubectl(['apply', '--server-side', '-f', '-'], { input: rendered.map((m) => JSON.stringify(m)).join('\n') });
  if (applied.code !== 0) throw new Error(applied.stderr);
  const account = rendered.find((m) => m?.kind === 'ServiceAccount')?.metadata?.name ?? '';
  const token = await waitFor('a token for the operator ServiceAccount', async () => (await core.createNamespacedServiceAccountToken({
    name: account, namespace, body: { spec: { expirationSeconds: 3600 } },
  }).catch(() => undefined))?.status?.token, 30_000, 200);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the test kubeconfig has no cluster');
  const scoped = new k8s.KubeConfig();
  scoped.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }], users: [{ name: account, token }],
    contexts: [{ name: 'operator', cluster: 'test', user: account }], currentContext: 'operator',
  });
  return scoped;
}

export interface TestOperator {
  current(): RunningOperator;
  /** Everything the operator has logged (JSON lines, info and up). */
  logs(): string;
  /** Stops this replica (as on SIGTERM) and starts a fresh one: new caches, nothing remembered. */
  restart(): Promise<void>;
}

/** The operator's configuration a test sets (as the chart's values would), besides its defaults. */
export interface TestOperatorOptions {
  /** The pod policy (ENGINE_ALLOWED_IMAGES, ENGINE_ALLOWED_SERVICE_ACCOUNTS, ENGINE_SERVICE_ACCOUNT). */
  engine?: Pick<EngineConfig, 'allowedImages' | 'allowedServiceAccounts' | 'serviceAccountName'>;
  /** Namespaces watched besides the operator's own (the chart's watchNamespaces: a Role in each). */
  alsoWatch?: readonly string[];
}

/** The engine image the e2e operator is configured with (the node stand-in ignores images). */
export const E2E_ENGINE_IMAGE = 'datamigration-operator:e2e';

/** Starts the operator for one test namespace, stopped when the test ends. */
export async function runOperator(t: ExecutionContext, namespace: string, options: TestOperatorOptions = {}): Promise<TestOperator> {
  const kc = await chartKubeConfig(namespace, options.alsoWatch);
  // The log is kept (and scanned for secrets by the tests); DMO_TEST_LOG_LEVEL=debug echoes it.
  let logText = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString();
      if (process.env.DMO_TEST_LOG_LEVEL === 'debug') process.stderr.write(chunk);
      done();
    },
  });
  const start = async (identity: string): Promise<RunningOperator> => {
    const operator = await startOperator({
      kc, logger: createLogger('info', sink), identity, watchNamespaces: [namespace, ...options.alsoWatch ?? []], workers: 2,
      // Copies here last seconds, not hours: progress is read every second so a test sees it move.
      progressIntervalMs: 1000,
      // The node stand-in runs the command on this machine: the engine CLI from the source tree.
      engine: { image: E2E_ENGINE_IMAGE, command: [process.execPath, join(repoRoot, 'src/cli/main.ts')], ...options.engine },
      leaderElection: { namespace, name: 'datamigration-operator', identity, leaseDurationSeconds: 6, renewDeadlineSeconds: 4, retryPeriodSeconds: 1 },
    });
    await waitFor('the operator leads', () => Promise.resolve(operator.isLeader() ? true : undefined), 30_000, 100);
    return operator;
  };
  let operator = await start('replica-1');
  let generation = 1;
  t.teardown(() => operator.stop());
  return {
    current: () => operator,
    logs: () => logText,
    async restart() {
      await operator.stop();
      generation++;
      operator = await start(`replica-${String(generation)}`);
    },
  };
}
