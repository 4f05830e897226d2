// A real Kubernetes control plane on loopback, the way controller-runtime's envtest runs one:
// etcd, kube-apiserver (RBAC on, client-certificate auth) and kube-controller-manager with the
// controllers a migration needs (Jobs, garbage collection, namespaces, service accounts).
// The API server audits every request a ServiceAccount makes (the operator's, under the chart's
// RBAC) to a JSON log, which test/e2e/rbac-exact.test.ts compares with the chart's rules; and it
// enforces OwnerReferencesPermissionEnforcement, as OpenShift and hardened clusters do, so the
// permission a `blockOwnerDeletion` owner reference needs is proven, not assumed.
// The binaries are built from the pinned Go modules in tools/ (scripts/build-controlplane.sh)
// or taken from KUBEBUILDER_ASSETS.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, makeRunDir, processAlive, removeDir, runChecked, staleRunDirs, waitFor } from './process.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface ControlPlane {
  /** Admin kubeconfig (user in group system:masters). */
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly binDir: string;
  readonly dir: string;
  /** Paths to the tiny CA, for tests that mint credentials of their own. */
  readonly caCertPath: string;
  readonly caKeyPath: string;
  /** The API server's audit log: one JSON event per request by a ServiceAccount (AUDIT_POLICY). */
  readonly auditLogPath: string;
  stop(): Promise<void>;
}

/** Metadata (who, verb, resource, answer) of every request by a ServiceAccount; nothing else. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: [system:serviceaccounts]
  - level: None
`;

export async function controlPlaneBinDir(): Promise<string> {
  return (await runChecked('bash', [join(repoRoot, 'scripts/build-controlplane.sh')], { stdio: ['ignore', 'pipe', 'inherit'] })).trim();
}

const openssl = (args: string[], cwd: string): Promise<string> => runChecked('openssl', args, { cwd });

/** A CA, an API-server serving certificate, an admin client certificate and a service-account key pair. */
async function writeCertificates(dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=dmo-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const issue = async (name: string, subject: string, extensions: string): Promise<void> => {
    await openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.crt`, '-days', '30', '-extfile', `${name}.ext`], dir);
  };
  await issue('serving', '/CN=kube-apiserver', [
    'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
  ].join('\n'));
  await issue('admin', '/O=system:masters/CN=dmo-admin', [
    'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth',
  ].join('\n'));
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key'], dir);
  await openssl(['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
}

export function kubeconfigYaml(server: string, caPath: string, user: { name: string; certPath?: string; keyPath?: string; token?: string }): string {
  const credentials = user.token !== undefined
    ? `    token: ${user.token}`
    : `    client-certificate: ${user.certPath ?? ''}\n    client-key: ${user.keyPath ?? ''}`;
  return `apiVersion: v1
kind: Config
clusters:
- name: dmo-test
  cluster:
    server: ${server}
    certificate-authority: ${caPath}
users:
- name: ${user.name}
  user:
${credentials}
contexts:
- name: dmo-test
  context:
    cluster: dmo-test
    user: ${user.name}
current-context: dmo-test
`;
}

interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logPath: string;
}

async function startDaemon(name: string, binary: string, args: string[], dir: string): Promise<Daemon> {
  const logPath = join(dir, `${name}.log`);
  const log = await open(logPath, 'a');
  const child = spawn(binary, args, { stdio: ['ignore', log.fd, log.fd], detached: true });
  await log.close();
  child.unref();
  await writeFile(join(dir, `${name}.pid`), String(child.pid));
  return { name, child, logPath };
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  const exited = new Promise((resolve) => daemon.child.once('exit', resolve));
  daemon.child.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)])) return;
  daemon.child.kill('SIGKILL');
  await exited;
}

async function failureDetail(daemon: Daemon): Promise<string> {
  const log = await readFile(daemon.logPath, 'utf8').catch(() => '');
  return `${daemon.name} log (last lines):\n${log.split('\n').slice(-25).join('\n')}`;
}

/** Kills daemons of earlier runs that were killed before they could clean up. */
async function removeStaleControlPlanes(): Promise<void> {
  for (const dir of await staleRunDirs('controlplane')) {
    for (const name of ['kube-controller-manager', 'kube-apiserver', 'etcd']) {
      const pid = Number((await readFile(join(dir, `${name}.pid`), 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    await removeDir(dir);
  }
}

async function healthy(server: string, dir: string, path: string): Promise<true | undefined> {
  const result = await runChecked('curl', ['-sf', '--cacert', join(dir, 'ca.crt'), '--cert', join(dir, 'admin.crt'),
    '--key', join(dir, 'admin.key'), `${server}${path}`]).catch(() => undefined);
  return result?.trim() === 'ok' ? true : undefined;
}

export async function startControlPlane(): Promise<ControlPlane> {
  const binDir = await controlPlaneBinDir();
  await removeStaleControlPlanes();
  const dir = await makeRunDir('controlplane');
  const daemons: Daemon[] = [];
  const stop = async (): Promise<void> => {
    for (const daemon of daemons.reverse()) await stopDaemon(daemon);
    daemons.length = 0;
    await removeDir(dir);
  };
  try {
    await writeCertificates(dir);
    const auditPolicyPath = join(dir, 'audit-policy.yaml');
    const auditLogPath = join(dir, 'audit.log');
    await writeFile(auditPolicyPath, AUDIT_POLICY);
    const [etcdClientPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const server = `https://127.0.0.1:${apiPort}`;

    const etcd = await startDaemon('etcd', join(binDir, 'etcd'), [
      `--data-dir=${join(dir, 'etcd')}`, `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync', '--quota-backend-bytes=4294967296', '--log-level=warn',
    ], dir);
    daemons.push(etcd);
    await waitFor('etcd', async () => {
      if (etcd.child.exitCode !== null) throw new Error(await failureDetail(etcd));
      const response = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return response?.ok ? true : undefined;
    }, 30_000, 50);

    const apiserver = await startDaemon('kube-apiserver', join(binDir, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`, '--bind-address=127.0.0.1', `--secure-port=${apiPort}`,
      // A loopback advertise address works once the endpoint reconciler (which refuses it) is off.
      '--advertise-address=127.0.0.1', '--endpoint-reconciler-type=none',
      `--cert-dir=${dir}`, `--tls-cert-file=${join(dir, 'serving.crt')}`, `--tls-private-key-file=${join(dir, 'serving.key')}`,
      `--client-ca-file=${join(dir, 'ca.crt')}`, '--authorization-mode=RBAC', '--allow-privileged=true',
      `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local', '--service-cluster-ip-range=10.0.0.0/24',
      '--enable-admission-plugins=OwnerReferencesPermissionEnforcement',
      `--audit-policy-file=${auditPolicyPath}`, `--audit-log-path=${auditLogPath}`, '--audit-log-format=json', '--audit-log-maxbackup=0',
      '--v=0',
    ], dir);
    daemons.push(apiserver);
    await waitFor('kube-apiserver /readyz', async () => {
      if (apiserver.child.exitCode !== null) throw new Error(await failureDetail(apiserver));
      return healthy(server, dir, '/readyz');
    }, 60_000, 100);

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, join(dir, 'ca.crt'),
      { name: 'dmo-admin', certPath: join(dir, 'admin.crt'), keyPath: join(dir, 'admin.key') }), { mode: 0o600 });

    const controllerManager = await startDaemon('kube-controller-manager', join(binDir, 'kube-controller-manager'), [
      `--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--secure-port=0', '--use-service-account-credentials=false',
      '--controllers=job-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,ttl-after-finished-controller',
      `--root-ca-file=${join(dir, 'ca.crt')}`, `--service-account-private-key-file=${join(dir, 'sa.key')}`,
      '--concurrent-job-syncs=20', '--concurrent-gc-syncs=20', '--v=0',
    ], dir);
    daemons.push(controllerManager);
    // The controller manager serves no health endpoint here (secure port off): proof that it
    // works is the default ServiceAccount it creates in the default namespace.
    await waitFor('kube-controller-manager', async () => {
      if (controllerManager.child.exitCode !== null) throw new Error(await failureDetail(controllerManager));
      const result = await runChecked(join(binDir, 'kubectl'), ['--kubeconfig', kubeconfigPath, 'get', 'serviceaccount', 'default', '-o', 'name'])
        .catch(() => undefined);
      return result?.trim() === 'serviceaccount/default' ? true : undefined;
    }, 60_000, 200);

    return { kubeconfigPath, server, binDir, dir, caCertPath: join(dir, 'ca.crt'), caKeyPath: join(dir, 'ca.key'), auditLogPath, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
