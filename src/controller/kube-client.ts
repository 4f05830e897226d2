// @kubernetes/client-node 2.0 builds a new undici Agent, and so a new TCP+TLS connection, for
// every API request (its agent cache covers only the websocket path). Under load that is most of
// the operator's CPU and latency (bench/operator.ts counted 3966 connections for 3960 requests).
// One dispatcher per distinct cluster and TLS setting is enough: credentials that are headers
// (tokens) are applied per request anyway, and client certificates are part of the cache key.
import type * as k8s from '@kubernetes/client-node';

interface DispatcherFactory {
  createDispatcher(cluster: unknown, agentOptions: Record<string, unknown>): unknown;
}

const patched = new WeakSet<k8s.KubeConfig>();

/** Makes every API client of `kc` share its connections (idempotent). */
export function reuseConnections(kc: k8s.KubeConfig): k8s.KubeConfig {
  if (patched.has(kc)) return kc;
  // createDispatcher is private in client-node's types; this is the one place that reaches it.
  const factory = kc as unknown as DispatcherFactory;
  const create = factory.createDispatcher.bind(kc);
  const dispatchers = new Map<string, unknown>();
  factory.createDispatcher = (cluster, agentOptions) => {
    const key = JSON.stringify([cluster, agentOptions]);
    if (!dispatchers.has(key)) dispatchers.set(key, create(cluster, agentOptions));
    return dispatchers.get(key);
  };
  patched.add(kc);
  return kc;
}
