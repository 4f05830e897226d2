// Brings up the parts of the test platform a suite needs (throwaway PostgreSQL and MariaDB; a
// control plane with the node stand-in and the project's CRDs installed) and describes them in
// environment variables for the test processes. Used by run-suite.ts and dev-cluster.ts.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { startControlPlane } from './controlplane.ts';
import { ENV_AUDIT_LOG, ENV_BIN_DIR, ENV_KUBECONFIG, ENV_NODE_DIR } from './kube.ts';
import { startMariadb } from './mariadb-server.ts';
import { startNodeStandIn } from './node-standin.ts';
import { startPostgres } from './postgres-server.ts';
import { onExit, runChecked, waitFor } from './process.ts';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface PlatformNeeds {
  databases: boolean;
  kubernetes: boolean;
}

export interface Platform {
  /** Variables that point tests (and people) at the running parts. */
  readonly env: Record<string, string>;
  /** Seconds each part took to start, for the closing figures. */
  readonly startSeconds: Record<string, number>;
  stop(): Promise<void>;
}

async function timed<T>(startSeconds: Record<string, number>, name: string, start: () => Promise<T>): Promise<T> {
  const began = performance.now();
  const value = await start();
  startSeconds[name] = Math.round((performance.now() - began) / 100) / 10;
  return value;
}

/** Applies every CRD in crds/ (server-side) and waits until the API server serves them. */
export async function installCrds(kubectl: string, kubeconfig: string): Promise<string[]> {
  const dir = join(repoRoot, 'crds');
  const files = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.yaml')).map((name) => join(dir, name));
  if (files.length === 0) return [];
  const base = ['--kubeconfig', kubeconfig];
  const applied = await runChecked(kubectl, [...base, 'apply', '--server-side', '--force-conflicts', '-o', 'name', ...files.flatMap((f) => ['-f', f])]);
  const names = applied.split('\n').map((line) => line.trim()).filter(Boolean);
  // kubectl wait fails at once (instead of waiting) while a just-created CRD has no conditions yet.
  await waitFor('the CRDs to be Established', () => runChecked(kubectl, [...base, 'wait', '--for=condition=Established', '--timeout=60s', ...names]), 60_000, 200);
  return names;
}

export async function startPlatform(needs: PlatformNeeds): Promise<Platform> {
  const env: Record<string, string> = {};
  const startSeconds: Record<string, number> = {};
  const stops: (() => Promise<void>)[] = [];
  const stop = async (): Promise<void> => {
    while (stops.length > 0) await stops.pop()?.();
  };
  const unregister = onExit(stop);
  try {
    if (needs.databases) {
      // People who already run databases point PG_URL / MYSQL_URL at them instead.
      const [postgres, mariadb] = await Promise.all([
        process.env.PG_URL ? undefined : timed(startSeconds, 'postgres', startPostgres),
        process.env.MYSQL_URL ? undefined : timed(startSeconds, 'mariadb', startMariadb),
      ]);
      if (postgres) stops.push(() => postgres.stop());
      if (mariadb) stops.push(() => mariadb.stop());
      env.PG_URL = process.env.PG_URL ?? postgres?.url ?? '';
      env.MYSQL_URL = process.env.MYSQL_URL ?? mariadb?.url ?? '';
    }
    if (needs.kubernetes) {
      const controlPlane = await timed(startSeconds, 'controlplane', startControlPlane);
      stops.push(() => controlPlane.stop());
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(controlPlane.kubeconfigPath);
      const node = await timed(startSeconds, 'node', () => startNodeStandIn(kc));
      stops.push(() => node.stop());
      await timed(startSeconds, 'crds', () => installCrds(join(controlPlane.binDir, 'kubectl'), controlPlane.kubeconfigPath));
      env[ENV_KUBECONFIG] = controlPlane.kubeconfigPath;
      env[ENV_BIN_DIR] = controlPlane.binDir;
      env[ENV_NODE_DIR] = node.workDir;
      env[ENV_AUDIT_LOG] = controlPlane.auditLogPath;
    }
  } catch (error) {
    await stop();
    unregister();
    throw error;
  }
  return {
    env,
    startSeconds,
    async stop() {
      unregister();
      await stop();
    },
  };
}
