// Preflight: the objects a migration refers to exist before any Job is created or the Service is
// switched (decide() asks for it only then). Secrets are read with GET only (the operator never
// lists or watches Secrets, and remembers which keys they have for seconds, never their data);
// the cutover Service comes from the informer's cache; the reconcile is requeued with backoff
// until they appear.
import * as k8s from '@kubernetes/client-node';
import { endpointSecrets } from '../api/defaults.ts';
import type { DataMigration } from '../api/types.ts';
import type { MissingObject, Preflight } from './decide.ts';

export interface PreflightSources {
  core: k8s.CoreV1Api;
  secretKeys: SecretKeysCache;
  apps: k8s.AppsV1Api;
  /** The Services informer's cache (the Services are watched anyway, for the cutover). */
  services: k8s.ObjectCache<k8s.V1Service>;
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
 * Which keys each Secret has, remembered for a few seconds: the preflights of a burst of
 * migrations that name the same Secrets read each once. Only the names of the keys are kept,
 * never a value; a missing Secret is not remembered, so one that appears is seen at once.
 */
export class SecretKeysCache {
  private readonly entries = new Map<string, { keys: Promise<ReadonlySet<string> | undefined>; at: number }>();
  private readonly core: k8s.CoreV1Api;
  private readonly ttlMs: number;

  constructor(core: k8s.CoreV1Api, ttlMs = 10_000) {
    this.core = core;
    this.ttlMs = ttlMs;
  }

  /** The Secret's keys; undefined when it does not exist. */
  async keysOf(namespace: string, name: string): Promise<ReadonlySet<string> | undefined> {
    const id = `${namespace}/${name}`;
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && now - hit.at < this.ttlMs) return hit.keys;
    if (this.entries.size >= 1024) for (const [key, entry] of this.entries) if (now - entry.at >= this.ttlMs) this.entries.delete(key);
    // The promise is shared, so reconciles asking at once cause one GET.
    const keys = orMissing(() => this.core.readNamespacedSecret({ name, namespace })).then((secret) => (secret ? new Set(Object.keys(secret.data ?? {})) : undefined));
    this.entries.set(id, { keys, at: now });
    const found = await keys.catch((error: unknown) => {
      this.entries.delete(id);
      throw error;
    });
    if (!found) this.entries.delete(id);
    return found;
  }
}

export async function runPreflight(sources: PreflightSources, migration: DataMigration): Promise<Preflight> {
  const namespace = migration.metadata?.namespace ?? 'default';
  const { spec } = migration;
  const missing: MissingObject[] = [];
  const endpoints = [endpointSecrets(spec.source), endpointSecrets(spec.target)];
  // URLs first, then CAs: the order the missing objects are reported in.
  const secretKeys = [...endpoints.map((e) => e.url), ...endpoints.flatMap((e) => (e.ca ? [e.ca] : []))];
  const configMap = spec.schema?.configMapRef?.name;
  const gate = spec.cutover?.readinessGate;
  // Everything is read at once (each Secret once), then checked in order.
  const secretNames = [...new Set(secretKeys.map((s) => s.name))];
  const [keysByName, configMapFound, deployment] = await Promise.all([
    Promise.all(secretNames.map(async (name) => [name, await sources.secretKeys.keysOf(namespace, name)] as const)).then((entries) => new Map(entries)),
    configMap ? orMissing(() => sources.core.readNamespacedConfigMap({ name: configMap, namespace })) : undefined,
    gate ? orMissing(() => sources.apps.readNamespacedDeployment({ name: gate.deployment, namespace })) : undefined,
  ]);
  for (const { name, key } of secretKeys) {
    const keys = keysByName.get(name);
    if (!keys) {
      if (!missing.some((m) => m.kind === 'Secret' && m.name === name)) missing.push({ kind: 'Secret', name });
    } else if (!keys.has(key)) {
      missing.push({ kind: 'SecretKey', name, key });
    }
  }
  if (configMap && !configMapFound) missing.push({ kind: 'ConfigMap', name: configMap });
  if (spec.cutover && !sources.services.get(spec.cutover.service, namespace)) {
    missing.push({ kind: 'Service', name: spec.cutover.service });
  }
  let deploymentReady: boolean | undefined;
  if (gate) {
    if (!deployment) missing.push({ kind: 'Deployment', name: gate.deployment });
    else deploymentReady = (deployment.status?.readyReplicas ?? 0) >= (gate.minReadyReplicas ?? 1);
  }
  return { missing, ...(deploymentReady !== undefined ? { deploymentReady } : {}) };
}
