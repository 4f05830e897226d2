// Preflight: the objects a migration refers to exist before any Job is created. Secrets are read
// with GET only (the operator never lists or watches Secrets, so it caches no secret data); the
// reconcile is requeued with backoff until they appear.
import * as k8s from '@kubernetes/client-node';
import type { DataMigration } from '../api/types.ts';
import type { MissingObject, Preflight } from './decide.ts';

export interface PreflightClients {
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
}

export function statusCode(error: unknown): number | undefined {
  if (error instanceof k8s.ApiException) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** An API error in one line: the HTTP code and the Status message, never the whole response. */
export function describeError(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    let message: string;
    try {
      const body = (typeof error.body === 'string' ? JSON.parse(error.body) : error.body) as { message?: string; reason?: string } | undefined;
      message = [body?.reason, body?.message].filter(Boolean).join(': ');
    } catch {
      message = ''; // not a Status object: the code says enough
    }
    return `HTTP ${String(error.code)}${message ? ` ${message}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}

async function orMissing<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (statusCode(error) === 404) return undefined;
    throw error;
  }
}

/**
 * `secrets` receives the Secrets read (undefined: missing), so the caller can use their data in
 * the same reconcile without reading them again.
 */
export async function runPreflight(clients: PreflightClients, migration: DataMigration, secrets = new Map<string, k8s.V1Secret | undefined>()): Promise<Preflight> {
  const namespace = migration.metadata?.namespace ?? 'default';
  const { spec } = migration;
  const missing: MissingObject[] = [];
  const secretKeys: { name: string; key: string }[] = [
    { name: spec.source.secretRef.name, key: spec.source.secretRef.key ?? 'url' },
    { name: spec.target.secretRef.name, key: spec.target.secretRef.key ?? 'url' },
  ];
  for (const endpoint of [spec.source, spec.target]) {
    const ca = endpoint.tls?.caSecretRef;
    if (ca) secretKeys.push({ name: ca.name, key: ca.key ?? 'ca.crt' });
  }
  for (const { name, key } of secretKeys) {
    if (!secrets.has(name)) secrets.set(name, await orMissing(() => clients.core.readNamespacedSecret({ name, namespace })));
    const secret = secrets.get(name);
    if (!secret) {
      if (!missing.some((m) => m.kind === 'Secret' && m.name === name)) missing.push({ kind: 'Secret', name });
    } else if (secret.data?.[key] === undefined && secret.stringData?.[key] === undefined) {
      missing.push({ kind: 'SecretKey', name, key });
    }
  }
  const configMap = spec.schema?.configMapRef?.name;
  if (configMap && !(await orMissing(() => clients.core.readNamespacedConfigMap({ name: configMap, namespace })))) {
    missing.push({ kind: 'ConfigMap', name: configMap });
  }
  if (spec.cutover && !(await orMissing(() => clients.core.readNamespacedService({ name: spec.cutover?.service ?? '', namespace })))) {
    missing.push({ kind: 'Service', name: spec.cutover.service });
  }
  const gate = spec.cutover?.readinessGate;
  let deploymentReady: boolean | undefined;
  if (gate) {
    const deployment = await orMissing(() => clients.apps.readNamespacedDeployment({ name: gate.deployment, namespace }));
    if (!deployment) missing.push({ kind: 'Deployment', name: gate.deployment });
    else deploymentReady = (deployment.status?.readyReplicas ?? 0) >= (gate.minReadyReplicas ?? 1);
  }
  return { missing, ...(deploymentReady !== undefined ? { deploymentReady } : {}) };
}
