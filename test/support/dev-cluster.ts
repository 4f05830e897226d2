// `npm run dev:cluster`: a local control plane for a person, with no Docker. Starts etcd,
// kube-apiserver and kube-controller-manager, installs the CRDs, runs the node stand-in, and
// (with --databases) throwaway PostgreSQL and MariaDB servers; prints how to reach them and
// keeps running until Ctrl-C, which tears everything down.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ENV_BIN_DIR, ENV_KUBECONFIG } from './kube.ts';
import { repoRoot, startPlatform } from './platform.ts';

const withDatabases = process.argv.includes('--databases');
const platform = await startPlatform({ kubernetes: true, databases: withDatabases });
// A stable path, so the KUBECONFIG a person exported stays right across restarts.
const stateDir = join(repoRoot, '.tmp', 'dev-cluster');
await mkdir(stateDir, { recursive: true });
const kubeconfig = join(stateDir, 'kubeconfig');
await copyFile(platform.env[ENV_KUBECONFIG] ?? '', kubeconfig);

const lines = [
  `control plane up (${JSON.stringify(platform.startSeconds)} s); the node stand-in runs Job pods as local processes.`,
  '',
  `export KUBECONFIG=${kubeconfig}`,
  `export PATH=${platform.env[ENV_BIN_DIR] ?? ''}:$PATH   # kubectl of the same version`,
];
if (withDatabases) {
  lines.push(`export PG_URL='${platform.env.PG_URL ?? ''}'`, `export MYSQL_URL='${platform.env.MYSQL_URL ?? ''}'`);
}
lines.push('', 'kubectl get crd,nodes   # then apply config/samples/ or your own DataMigration', 'Ctrl-C stops everything.');
console.log(lines.join('\n'));

await new Promise<void>((resolve) => {
  // platform.ts registered the teardown for SIGINT/SIGTERM; this only keeps the process alive.
  const timer = setInterval(() => undefined, 1 << 30);
  process.once('SIGINT', () => { clearInterval(timer); resolve(); });
  process.once('SIGTERM', () => { clearInterval(timer); resolve(); });
});
