// What e2e tests use to reach the test control plane. The runner (test/support/run-suite.ts)
// starts the control plane and the node stand-in and passes their coordinates in the
// environment; this module never falls back to a person's own kubeconfig, so a test can never
// touch a real cluster by accident.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { CUTOVER_BY_ANNOTATION } from '../../src/api/constants.ts';
import { run, waitFor, type RunResult } from './process.ts';

export const ENV_KUBECONFIG = 'DMO_TEST_KUBECONFIG';
export const ENV_BIN_DIR = 'DMO_TEST_BIN_DIR';
export const ENV_NODE_DIR = 'DMO_TEST_NODE_DIR';
export const ENV_AUDIT_LOG = 'DMO_TEST_AUDIT_LOG';

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run e2e tests through \`npm run test:e2e\` (test/support/run-suite.ts starts the control plane)`);
  return value;
}

export function testKubeconfigPath(): string {
  return requiredEnv(ENV_KUBECONFIG);
}

export function testKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(testKubeconfigPath());
  return kc;
}

/** The API server's audit log of ServiceAccounts' requests (test/support/controlplane.ts). */
export function auditLogPath(): string {
  return requiredEnv(ENV_AUDIT_LOG);
}

/** The kubectl built with the control plane, matching its version. */
export function kubectlPath(): string {
  return join(requiredEnv(ENV_BIN_DIR), 'kubectl');
}

export function kubectl(args: string[], options: { input?: string; namespace?: string; kubeconfig?: string } = {}): Promise<RunResult> {
  const namespace = options.namespace ? ['--namespace', options.namespace] : [];
  return run(kubectlPath(), ['--kubeconfig', options.kubeconfig ?? testKubeconfigPath(), ...namespace, ...args],
    options.input === undefined ? {} : { input: options.input });
}

/** A namespace of this test's own, deleted when the test ends. */
export async function freshNamespace(t: ExecutionContext, prefix = 'e2e'): Promise<string> {
  const core = testKubeConfig().makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'dataops.dev/test': t.title.slice(0, 63).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') } } } });
  // Pods need the namespace's default ServiceAccount, which the controller manager creates.
  await waitFor(`ServiceAccount default in ${name}`, async () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true, () => undefined), 30_000, 100);
  t.teardown(async () => {
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  return name;
}

/** Combined output of a pod's container on the node stand-in (there is no kubelet to serve `kubectl logs`). */
export async function podLogs(namespace: string, podName: string, container?: string): Promise<string> {
  const core = testKubeConfig().makeApiClient(k8s.CoreV1Api);
  const pod = await core.readNamespacedPod({ name: podName, namespace });
  const name = container ?? pod.spec?.containers[0]?.name ?? '';
  return readFile(join(requiredEnv(ENV_NODE_DIR), 'pods', namespace, podName, name, 'log'), 'utf8');
}

/**
 * A Service a cutover may switch: `selector`, port 80, and the owner's consent (the annotation
 * dataops.dev/cutover-by naming `optIn`, the DataMigrations that may switch it), unless optIn is null.
 */
export async function createCutoverService(namespace: string, name: string, selector: Record<string, string>, optIn: string | null, labels: Record<string, string> = {}): Promise<k8s.V1Service> {
  const core = testKubeConfig().makeApiClient(k8s.CoreV1Api);
  return await core.createNamespacedService({
    namespace,
    body: {
      metadata: { name, labels, ...(optIn === null ? {} : { annotations: { [CUTOVER_BY_ANNOTATION]: optIn } }) },
      spec: { selector, ports: [{ port: 80 }] },
    },
  });
}

/** The smallest valid DataMigration as YAML (MySQL → PostgreSQL, one table), with `extra` spec lines appended. */
export const minimalManifest = (name: string, extra = ''): string => `apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: ${name}}
spec:
  source: {engine: mysql, secretRef: {name: src}}
  target: {engine: postgres, secretRef: {name: dst}}
  tables: [{name: orders}]
${extra}`;
