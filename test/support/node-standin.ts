// A node stand-in for a control plane with no container runtime. It plays the parts of the
// scheduler and the kubelet that Jobs need: registers a Node, binds pending pods to it, runs each
// container's command as a local process (same command, args, env, env from Secrets and
// ConfigMaps, working directory, ConfigMap/Secret/emptyDir/projected volumes bind-mounted in a
// private mount namespace), writes the termination message into the container status and reports
// pod phase, so the real Job controller decides success, retries and failure.
//
// Limits, plainly: images are ignored (the command must exist on this machine: the project's own
// CLI does); no resource limits, no network isolation, no probes; volume mounts need root (for
// `unshare --mount`) and fail the pod with a clear message otherwise.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile, open, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { makeRunDir, removeDir } from './process.ts';

export const STANDIN_NODE_NAME = 'dmo-standin';

export interface NodeStandInOptions {
  /** Pods running at once; more wait, as on a full node. */
  maxRunningPods?: number;
  /** Directory for pod logs and volumes (default: a fresh temp dir, removed on stop). */
  workDir?: string;
}

export interface NodeStandIn {
  /** Pods' logs are in `<workDir>/pods/<namespace>/<pod>/<container>/log` (see kube.ts podLogs). */
  readonly workDir: string;
  stop(): Promise<void>;
}

interface RunningPod {
  readonly uid: string;
  process?: ChildProcess;
  stopping: boolean;
}

const MAX_TERMINATION_MESSAGE_BYTES = 4096;
const FALLBACK_LOG_LINES = 80;
const CONFIG_RETRY_MS = 2000;
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Kubelet's $(VAR) expansion in command and args; $$ escapes a dollar sign. */
export function expandVariables(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return env[name] ?? match;
  });
}

export async function startNodeStandIn(kc: k8s.KubeConfig, options: NodeStandInOptions = {}): Promise<NodeStandIn> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const workDir = options.workDir ?? (await makeRunDir('node'));
  const maxRunning = options.maxRunningPods ?? 32;
  const canMount = userInfo().uid === 0;
  const apiServer = new URL(kc.getCurrentCluster()?.server ?? 'https://127.0.0.1');
  const pods = new Map<string, RunningPod>();
  const waiting: k8s.V1Pod[] = [];
  let running = 0;
  let stopped = false;

  await registerNode(core);

  const key = (pod: k8s.V1Pod): string => `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
  const podDir = (namespace: string, name: string): string => join(workDir, 'pods', namespace, name);

  async function bind(pod: k8s.V1Pod): Promise<void> {
    const { name = '', namespace = '' } = pod.metadata ?? {};
    await core.createNamespacedPodBinding({
      name, namespace,
      body: { metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: STANDIN_NODE_NAME } },
    }).catch(() => undefined); // already bound, or deleted meanwhile: the watch brings the truth
  }

  async function patchStatus(pod: k8s.V1Pod, status: k8s.V1PodStatus): Promise<void> {
    const { name = '', namespace = '' } = pod.metadata ?? {};
    await core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch).catch(() => undefined);
  }

  function admit(pod: k8s.V1Pod): void {
    const podKey = key(pod);
    const uid = pod.metadata?.uid ?? '';
    if (pods.get(podKey)?.uid === uid) return;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    pods.set(podKey, { uid, stopping: false });
    waiting.push(pod);
    drain();
  }

  function drain(): void {
    while (!stopped && running < maxRunning && waiting.length > 0) {
      const pod = waiting.shift();
      if (!pod) break;
      running++;
      void runPod(pod).finally(() => {
        running--;
        drain();
      });
    }
  }

  async function runPod(pod: k8s.V1Pod): Promise<void> {
    const state = pods.get(key(pod));
    if (!state || state.stopping) return;
    const startTime = new Date();
    const containers = pod.spec?.containers ?? [];
    const restartPolicy = pod.spec?.restartPolicy ?? 'Always';
    const statuses: k8s.V1ContainerStatus[] = containers.map((c) => ({
      name: c.name, image: c.image ?? '', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } },
    }));
    await patchStatus(pod, {
      phase: 'Pending', hostIP: '127.0.0.1', podIP: '127.0.0.1', startTime,
      conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'True' }],
      containerStatuses: statuses,
    });

    let failed = false;
    // Init containers run one after another before the app containers, as on a kubelet.
    for (const container of pod.spec?.initContainers ?? []) {
      const result = await runContainer(pod, container, state, () => Promise.resolve());
      if (result.exitCode !== 0) {
        failed = true;
        break;
      }
    }
    const results = failed ? [] : await Promise.all(containers.map(async (container, index) => {
      for (let attempt = 0; ; attempt++) {
        const status = statuses[index];
        const result = await runContainer(pod, container, state, async (waiting) => {
          if (status) {
            status.state = waiting ? { waiting } : { running: { startedAt: new Date() } };
            status.ready = !waiting;
            status.restartCount = attempt;
          }
          const ready = waiting ? 'False' : 'True';
          await patchStatus(pod, {
            phase: waiting ? 'Pending' : 'Running', containerStatuses: statuses,
            conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'True' },
              { type: 'ContainersReady', status: ready }, { type: 'Ready', status: ready }],
          });
        });
        if (status) {
          status.ready = false;
          status.state = { terminated: { exitCode: result.exitCode, reason: result.reason, message: result.message, startedAt: result.startedAt, finishedAt: new Date() } };
        }
        const again = !state.stopping && (restartPolicy === 'Always' || (restartPolicy === 'OnFailure' && result.exitCode !== 0));
        if (!again) return result;
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1000 * 2 ** attempt)));
      }
    }));
    const succeeded = !failed && results.every((r) => r.exitCode === 0);
    await patchStatus(pod, {
      phase: succeeded ? 'Succeeded' : 'Failed', containerStatuses: statuses,
      conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'True' },
        { type: 'ContainersReady', status: 'False', reason: 'PodCompleted' }, { type: 'Ready', status: 'False', reason: 'PodCompleted' }],
    });
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- the informer sets it while the pod runs
    if (state.stopping) await finishDeletion(pod);
  }

  async function finishDeletion(pod: k8s.V1Pod): Promise<void> {
    const { name = '', namespace = '' } = pod.metadata ?? {};
    // As a kubelet does once the containers are gone: the API object may now go away.
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  }

  interface ContainerResult { exitCode: number; reason: string; message: string; startedAt: Date }
  type Mount = { source: string; target: string; readOnly: boolean };

  /**
   * Runs one container to its exit. Until its env and volumes can be resolved (a Secret or key
   * missing), it waits as a kubelet does: state waiting with reason CreateContainerConfigError,
   * retried every few seconds until the object appears or the pod is deleted. `report` publishes
   * the waiting state, or `undefined` once the process starts.
   */
  async function runContainer(pod: k8s.V1Pod, container: k8s.V1Container, state: RunningPod,
    report: (waiting: k8s.V1ContainerStateWaiting | undefined) => Promise<void>): Promise<ContainerResult> {
    const { name: podName = '', namespace = '' } = pod.metadata ?? {};
    const dir = join(podDir(namespace, podName), container.name);
    await mkdir(dir, { recursive: true });
    const fail = (reason: string, message: string): ContainerResult => ({ exitCode: 128, reason, message, startedAt: new Date() });
    if (!container.command?.length) {
      return fail('StandInNeedsCommand', `the node stand-in cannot run image ${container.image ?? '?'}'s entrypoint: give the container a command`);
    }
    let env: Record<string, string> | undefined;
    let mounts: Mount[] = [];
    while (!env) {
      try {
        const resolved = await containerEnv(pod, container);
        mounts = await materializeVolumes(pod, container, dir);
        env = resolved;
      } catch (error) {
        if (state.stopping) return fail('ContainerCreating', 'pod deleted before its container could start');
        await report({ reason: 'CreateContainerConfigError', message: errorMessage(error) });
        await new Promise((resolve) => setTimeout(resolve, CONFIG_RETRY_MS));
      }
    }
    if (!canMount && mounts.length > 0) {
      return fail('StandInNeedsRoot', 'volume mounts need root on the node stand-in (it bind-mounts them with unshare --mount)');
    }
    await report(undefined);
    const startedAt = new Date();
    const terminationPath = container.terminationMessagePath ?? '/dev/termination-log';
    const terminationFile = join(dir, 'termination-log');
    await writeFile(terminationFile, '');
    if (!canMount && mounts.length > 0) {
      return fail('StandInNeedsRoot', 'volume mounts need root on the node stand-in (it bind-mounts them with unshare --mount)');
    }
    mounts.push({ source: terminationFile, target: terminationPath, readOnly: false });

    const argv = [...container.command, ...(container.args ?? [])].map((arg) => expandVariables(arg, env));
    const [command, args] = canMount ? inMountNamespace(argv, mounts) : [argv[0] ?? '', argv.slice(1)];
    const logPath = join(dir, 'log');
    const log = await open(logPath, 'a');
    const child = spawn(command, args, {
      cwd: container.workingDir ?? '/', env, stdio: ['ignore', log.fd, log.fd], detached: true,
    });
    await log.close();
    state.process = child;
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('error', () => { resolve([127, null]); });
      child.once('exit', (exitCode, exitSignal) => { resolve([exitCode, exitSignal]); });
    });
    state.process = undefined;
    const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
    let message = (await readFile(terminationFile, 'utf8').catch(() => '')).slice(0, MAX_TERMINATION_MESSAGE_BYTES);
    if (!message && exitCode !== 0 && container.terminationMessagePolicy === 'FallbackToLogsOnError') {
      const lines = (await readFile(logPath, 'utf8').catch(() => '')).trimEnd().split('\n');
      message = lines.slice(-FALLBACK_LOG_LINES).join('\n').slice(-MAX_TERMINATION_MESSAGE_BYTES);
    }
    return { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', message, startedAt };
  }

  /** Wraps argv so that it runs in a private mount namespace with the pod's volumes bind-mounted. */
  function inMountNamespace(argv: string[], mounts: Mount[]): [string, string[]] {
    // Every source is first bound into a staging directory, so that a volume mounted over a parent
    // of the stand-in's own directory (an emptyDir on /tmp) cannot hide the sources mounted after
    // it; then targets are mounted parents first.
    const ordered = [...mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
    // The staging tmpfs exists only in this pod's mount namespace: nothing is left behind.
    const script: string[] = ['set -e', 'stage=/run/dmo-standin-stage', 'mkdir -p "$stage"', 'mount -t tmpfs tmpfs "$stage"'];
    ordered.forEach((_mount, index) => {
      const source = `"\${M${index}S}"`;
      script.push(`if [ -d ${source} ]; then mkdir -p "$stage/${index}"; else : > "$stage/${index}"; fi`);
      script.push(`mount --bind ${source} "$stage/${index}"`);
    });
    ordered.forEach((mount, index) => {
      const staged = `"$stage/${index}"`;
      const target = `"\${M${index}T}"`;
      script.push(`if [ -d ${staged} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})"; [ -e ${target} ] || : > ${target}; fi`);
      script.push(`mount --bind ${staged} ${target}`);
      if (mount.readOnly) script.push(`mount -o remount,bind,ro ${target}`);
    });
    script.push('exec "$@"');
    const env = ordered.flatMap((mount, index) => [`M${index}S=${mount.source}`, `M${index}T=${mount.target}`]);
    return ['unshare', ['--mount', '--propagation', 'private', 'env', ...env, 'sh', '-c', script.join('\n'), 'sh', ...argv]];
  }

  async function containerEnv(pod: k8s.V1Pod, container: k8s.V1Container): Promise<Record<string, string>> {
    const namespace = pod.metadata?.namespace ?? 'default';
    // What a container gets without asking: a PATH, its hostname, and the API server's address;
    // and, as an image's ENV would, the test run's Node compile cache (step pods start faster).
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: '/root',
      ...(process.env.NODE_COMPILE_CACHE ? { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE } : {}),
      HOSTNAME: pod.metadata?.name ?? '',
      KUBERNETES_SERVICE_HOST: apiServer.hostname,
      KUBERNETES_SERVICE_PORT: apiServer.port || '443',
    };
    for (const source of container.envFrom ?? []) {
      const prefix = source.prefix ?? '';
      if (source.secretRef) {
        const secret = await readSecret(namespace, source.secretRef.name ?? '', source.secretRef.optional);
        for (const [k, v] of Object.entries(secret?.data ?? {})) env[prefix + k] = Buffer.from(v, 'base64').toString('utf8');
      }
      if (source.configMapRef) {
        const configMap = await readConfigMap(namespace, source.configMapRef.name ?? '', source.configMapRef.optional);
        for (const [k, v] of Object.entries(configMap?.data ?? {})) env[prefix + k] = v;
      }
    }
    for (const variable of container.env ?? []) {
      const value = await envValue(pod, variable, env);
      if (value !== undefined) env[variable.name] = value;
    }
    return env;
  }

  async function envValue(pod: k8s.V1Pod, variable: k8s.V1EnvVar, env: Record<string, string>): Promise<string | undefined> {
    const namespace = pod.metadata?.namespace ?? 'default';
    if (variable.value !== undefined) return expandVariables(variable.value, env);
    const from = variable.valueFrom;
    if (from?.secretKeyRef) {
      const { name = '', key: dataKey, optional } = from.secretKeyRef;
      const value = (await readSecret(namespace, name, optional))?.data?.[dataKey];
      if (value === undefined && !optional) throw new Error(`couldn't find key ${dataKey} in Secret ${namespace}/${name}`);
      return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
    }
    if (from?.configMapKeyRef) {
      const { name = '', key: dataKey, optional } = from.configMapKeyRef;
      const value = (await readConfigMap(namespace, name, optional))?.data?.[dataKey];
      if (value === undefined && !optional) throw new Error(`couldn't find key ${dataKey} in ConfigMap ${namespace}/${name}`);
      return value;
    }
    if (from?.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath);
    return undefined;
  }

  function fieldValue(pod: k8s.V1Pod, path: string): string | undefined {
    const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (labelOrAnnotation) {
      const map = labelOrAnnotation[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
      return map?.[labelOrAnnotation[2] ?? ''];
    }
    const fields: Record<string, string | undefined> = {
      'metadata.name': pod.metadata?.name, 'metadata.namespace': pod.metadata?.namespace, 'metadata.uid': pod.metadata?.uid,
      'spec.nodeName': STANDIN_NODE_NAME, 'spec.serviceAccountName': pod.spec?.serviceAccountName,
      'status.podIP': '127.0.0.1', 'status.hostIP': '127.0.0.1',
    };
    return fields[path];
  }

  async function readSecret(namespace: string, name: string, optional?: boolean): Promise<k8s.V1Secret | undefined> {
    try {
      return await core.readNamespacedSecret({ name, namespace });
    } catch (error) {
      if (optional) return undefined;
      throw new Error(readFailure('secret', name, namespace, error), { cause: error });
    }
  }

  async function readConfigMap(namespace: string, name: string, optional?: boolean): Promise<k8s.V1ConfigMap | undefined> {
    try {
      return await core.readNamespacedConfigMap({ name, namespace });
    } catch (error) {
      if (optional) return undefined;
      throw new Error(readFailure('configmap', name, namespace, error), { cause: error });
    }
  }

  /** Writes each volume the container mounts into the pod's directory; returns the bind mounts. */
  async function materializeVolumes(pod: k8s.V1Pod, container: k8s.V1Container, dir: string): Promise<Mount[]> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
    const mounts: Mount[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = volumes.get(mount.name);
      if (!volume) throw new Error(`volume ${mount.name} is not defined in the pod`);
      const volumeDir = join(dirname(dir), 'volumes', mount.name);
      if (volume.emptyDir) {
        await mkdir(volumeDir, { recursive: true });
      } else if (volume.configMap) {
        const configMap = await readConfigMap(namespace, volume.configMap.name ?? '', volume.configMap.optional);
        await writeKeys(volumeDir, configMap?.data ?? {}, volume.configMap.items);
      } else if (volume.secret) {
        const secret = await readSecret(namespace, volume.secret.secretName ?? '', volume.secret.optional);
        const data = Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
        await writeKeys(volumeDir, data, volume.secret.items);
      } else if (volume.projected) {
        await mkdir(volumeDir, { recursive: true });
        for (const source of volume.projected.sources ?? []) {
          if (source.serviceAccountToken) {
            const token = await core.createNamespacedServiceAccountToken({
              name: pod.spec?.serviceAccountName ?? 'default', namespace,
              body: { spec: { audiences: source.serviceAccountToken.audience ? [source.serviceAccountToken.audience] : [], expirationSeconds: source.serviceAccountToken.expirationSeconds ?? 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' } } },
            });
            await writeFile(join(volumeDir, source.serviceAccountToken.path), token.status?.token ?? '', { mode: 0o600 });
          } else if (source.configMap) {
            const configMap = await readConfigMap(namespace, source.configMap.name ?? '', source.configMap.optional);
            await writeKeys(volumeDir, configMap?.data ?? {}, source.configMap.items);
          } else if (source.secret) {
            const secret = await readSecret(namespace, source.secret.name ?? '', source.secret.optional);
            const data = Object.fromEntries(Object.entries(secret?.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
            await writeKeys(volumeDir, data, source.secret.items);
          } else if (source.downwardAPI) {
            for (const item of source.downwardAPI.items ?? []) {
              const value = item.fieldRef ? fieldValue(pod, item.fieldRef.fieldPath) : undefined;
              await writeKeys(volumeDir, { [item.path]: value ?? '' });
            }
          }
        }
      } else {
        throw new Error(`volume ${mount.name}: only emptyDir, configMap, secret and projected volumes run on the node stand-in`);
      }
      const source = mount.subPath ? join(volumeDir, mount.subPath) : volumeDir;
      mounts.push({ source, target: mount.mountPath, readOnly: mount.readOnly ?? false });
    }
    return mounts;
  }

  function stopContainer(state: RunningPod, graceSeconds: number): void {
    state.stopping = true;
    const child = state.process;
    if (!child?.pid) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch { /* already gone */ }
    setTimeout(() => {
      try {
        if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch { /* already gone */ }
    }, graceSeconds * 1000).unref();
  }

  const informer = k8s.makeInformer<k8s.V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const onPod = (pod: k8s.V1Pod): void => {
    if (stopped) return;
    const nodeName = pod.spec?.nodeName;
    if (!nodeName && !pod.metadata?.deletionTimestamp) {
      void bind(pod);
      return;
    }
    if (nodeName !== STANDIN_NODE_NAME) return;
    const state = pods.get(key(pod));
    if (pod.metadata?.deletionTimestamp) {
      if (state && state.uid === pod.metadata.uid && !state.stopping) {
        const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
        const waitingIndex = waiting.findIndex((p) => p.metadata?.uid === state.uid);
        if (waitingIndex >= 0) waiting.splice(waitingIndex, 1);
        stopContainer(state, grace);
        if (!state.process) void finishDeletion(pod);
      } else if (!state || state.uid !== pod.metadata.uid) {
        void finishDeletion(pod);
      }
      return;
    }
    admit(pod);
  };
  informer.on('add', onPod);
  informer.on('update', onPod);
  informer.on('delete', (pod) => {
    const state = pods.get(key(pod));
    if (state && state.uid === pod.metadata?.uid) {
      stopContainer(state, 0);
      pods.delete(key(pod));
    }
  });
  informer.on('error', () => {
    // client-node leaves a watch stopped after an error: start it again.
    if (!stopped) setTimeout(() => void informer.start().catch(() => undefined), 1000);
  });
  await informer.start();

  return {
    workDir,
    async stop() {
      stopped = true;
      await informer.stop();
      for (const state of pods.values()) stopContainer(state, 0);
      await core.deleteNode({ name: STANDIN_NODE_NAME }).catch(() => undefined);
      if (!options.workDir) await removeDir(workDir);
    },
  };
}

/** A kubelet-like reason for an object it could not read: "not found" only when it is absent. */
function readFailure(kind: string, name: string, namespace: string, error: unknown): string {
  if ((error as { code?: number }).code === 404) return `${kind} "${name}" not found in ${namespace}`;
  return `reading ${kind} ${namespace}/${name}: ${errorMessage(error).split('\n')[0] ?? ''}`;
}

async function writeKeys(dir: string, data: Record<string, string>, items?: { key: string; path: string }[]): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entries = items ? items.map((item) => [item.path, data[item.key] ?? ''] as const) : Object.entries(data);
  for (const [path, value] of entries) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), value);
  }
}

async function registerNode(core: k8s.CoreV1Api): Promise<void> {
  const body: k8s.V1Node = {
    metadata: { name: STANDIN_NODE_NAME, labels: { 'kubernetes.io/hostname': STANDIN_NODE_NAME, 'kubernetes.io/os': 'linux' } },
  };
  await core.createNode({ body }).catch((error: unknown) => {
    if (!errorMessage(error).includes('AlreadyExists') && !errorMessage(error).includes('409')) throw error;
  });
  const now = new Date();
  await core.patchNodeStatus({
    name: STANDIN_NODE_NAME,
    body: {
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'node stand-in is running pods as local processes', lastHeartbeatTime: now, lastTransitionTime: now }],
        capacity: { cpu: '64', memory: '256Gi', pods: '1000' },
        allocatable: { cpu: '64', memory: '256Gi', pods: '1000' },
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: STANDIN_NODE_NAME }],
        nodeInfo: {
          architecture: process.arch, bootID: '', containerRuntimeVersion: 'dmo-standin://1', kernelVersion: '', kubeProxyVersion: '',
          kubeletVersion: 'standin', machineID: '', operatingSystem: 'linux', osImage: 'node stand-in', systemUUID: '',
        },
      },
    },
  }, mergePatch);
}
