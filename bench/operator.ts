// `npm run bench:operator [-- --migrations N]`: N DataMigrations (default 500) applied at once
// against a real control plane (etcd, kube-apiserver, kube-controller-manager and the node
// stand-in of the test platform), with the operator running as its own process. Measures how long
// until every DataMigration has its first Job, the reconcile latency (from the operator's own
// histogram) and the operator's peak memory. Prints figures as it goes and ends with one JSON line.
// The engine command is `true`: each step Job's pod exits 0 at once and never touches the
// (unreachable) databases in the Secrets; only the operator's path to the first Job is measured.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { request as httpsRequest, Agent as HttpsAgent, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, LABELS, MANAGED_BY, PLURAL, VERSION } from '../src/api/constants.ts';
import { jobState } from '../src/controller/observe.ts';
import { OPERATOR_NODE_FLAGS } from '../src/controller/node-flags.ts';
import { ENV_BIN_DIR, ENV_KUBECONFIG, ENV_NODE_DIR } from '../test/support/kube.ts';
import { repoRoot, startPlatform } from '../test/support/platform.ts';
import { freePort, onExit, runChecked, waitFor } from '../test/support/process.ts';
import { round, runExitCleanups } from './support.ts';

// --cpu-prof: profile the operator (V8 CPU profile) and print where its own CPU time goes; it
// slows the operator down, so the figures of such a run are not the benchmark's.
const { values } = parseArgs({ options: {
  migrations: { type: 'string', default: '500' }, concurrency: { type: 'string', default: '50' }, timeout: { type: 'string', default: '300' },
  'cpu-prof': { type: 'boolean', default: false },
} });
const migrations = Number(values.migrations);
const concurrency = Number(values.concurrency);
const timeoutSeconds = Number(values.timeout);
if (!Number.isInteger(migrations) || migrations < 1) throw new Error(`--migrations must be a positive integer, not ${values.migrations}`);

const JOB_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;
const MIGRATION_LABEL = LABELS.migration;
const DB_URL = 'postgres://u:p@127.0.0.1:1/x'; // never connected to: the Jobs run `true`
const METADATA_ONLY = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const GOALS = { seconds_to_all_first_jobs: 60, reconcile_p99_ms: 250, peak_rss_mb: 200 };

interface Bucket { le: number; count: number }

/** `name value` samples of one metric family from Prometheus text (labels kept as the raw `{...}`). */
function samples(text: string, name: string): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match?.[1] !== name) continue;
    out.push({ labels: match[2] ?? '', value: Number(match[3]) });
  }
  return out;
}

function histogramBuckets(text: string, name: string): Bucket[] {
  return samples(text, `${name}_bucket`).map(({ labels, value }) => {
    const le = /le="([^"]+)"/.exec(labels)?.[1] ?? '+Inf';
    return { le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value };
  }).sort((a, b) => a.le - b.le);
}

/**
 * A quantile estimated from cumulative histogram buckets the way Prometheus' histogram_quantile
 * does: find the bucket holding the rank and interpolate linearly between its bounds. It is a
 * bucket estimate, not a measured latency: its resolution is the bucket widths (5, 10, 25, 50,
 * 100, 250, 500 ms, ...), and a rank in the +Inf bucket yields the largest finite bound.
 */
function histogramQuantile(q: number, buckets: Bucket[]): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bucket of buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return lowerBound;
      const inBucket = bucket.count - lowerCount;
      return inBucket === 0 ? bucket.le : lowerBound + (bucket.le - lowerBound) * ((rank - lowerCount) / inBucket);
    }
    lowerBound = bucket.le;
    lowerCount = bucket.count;
  }
  return lowerBound;
}

async function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  const text = await readFile(`/proc/${String(pid)}/status`, 'utf8').catch(() => '');
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1];
  return kb === undefined ? undefined : Number(kb);
}

/** Runs `task` over 0..n-1 with at most `limit` in flight. */
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

/**
 * Loaded into the operator with --import (a data: URL, so nothing but this file is involved): counts
 * the operator's API requests by verb and resource, their latency as the client sees it (request
 * created to response headers) and the TCP/TLS connections its HTTP client opens (and the time
 * spent opening them), from undici's diagnostics channels (client-node 2.x talks to the API server
 * through undici). On SIGUSR2 it writes what it has to DMO_BENCH_TRACE. It changes nothing the
 * operator does.
 */
const TRACE_PRELOAD = `
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
const stats = {}; const started = new WeakMap(); let connections = 0;
const kindOf = (method, path) => {
  const [bare, query = ''] = path.split('?');
  const parts = bare.split('/').filter(Boolean);
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const resource = (rest[0] ?? '?') + (rest[2] ? '/' + rest[2] : '');
  const verb = { GET: rest.length >= 2 ? 'get' : (/(^|&)watch=(true|1)/.test(query) ? 'watch' : 'list'), POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[method] ?? method;
  return verb + ' ' + resource;
};
subscribe('undici:request:create', ({ request }) => { started.set(request, performance.now()); });
const finish = (request, failed) => {
  const at = started.get(request); if (at === undefined) return; started.delete(request);
  const key = kindOf(request.method, request.path); const ms = performance.now() - at;
  const s = stats[key] ??= { count: 0, totalMs: 0, maxMs: 0, errors: 0 };
  s.count++; s.totalMs += ms; s.maxMs = Math.max(s.maxMs, ms); if (failed) s.errors++;
};
subscribe('undici:request:headers', ({ request }) => finish(request, false));
subscribe('undici:request:error', ({ request }) => finish(request, true));
const connecting = new WeakMap(); let connectMs = 0;
subscribe('undici:client:beforeConnect', ({ connector }) => { connecting.set(connector, performance.now()); });
subscribe('undici:client:connected', ({ connector }) => {
  connections++; const at = connecting.get(connector); if (at !== undefined) connectMs += performance.now() - at;
});
process.on('SIGUSR2', () => { writeFileSync(process.env.DMO_BENCH_TRACE, JSON.stringify({ connections, connectMs, stats })); });
`;

interface RequestStats { count: number; totalMs: number; maxMs: number; errors: number }
interface Trace { connections: number; connectMs: number; stats: Record<string, RequestStats> }

/** CPU seconds (user + system, with reaped children) of a process, from /proc/<pid>/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  const text = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the command: state is field 3, utime 14, stime 15, cutime 16, cstime 17 (1-based, man proc).
  const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index] ?? 0), 0);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** The control plane's processes (our descendants), by their command name. */
async function controlPlanePids(): Promise<Record<string, number>> {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    if (open < 0 || close < 0) continue;
    names.set(Number(entry), text.slice(open + 1, close));
    parents.set(Number(entry), Number(text.slice(close + 2).split(' ')[1]));
  }
  const isOurs = (pid: number): boolean => {
    for (let current = parents.get(pid); current !== undefined && current > 1; current = parents.get(current)) if (current === process.pid) return true;
    return false;
  };
  const found: Record<string, number> = {};
  for (const [pid, name] of names) {
    if (!isOurs(pid)) continue;
    if (name === 'etcd') found.etcd = pid;
    else if (name === 'kube-apiserver') found.apiserver = pid;
    else if (name.startsWith('kube-controller')) found.controller_manager = pid;
  }
  return found;
}

/** Sockets the process holds open (inodes), to see how many connections it keeps. */
async function socketInodes(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${String(pid)}/fd`).catch(() => []);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${String(pid)}/fd/${fd}`).catch(() => '')));
  return links.filter((link) => link.startsWith('socket:'));
}

/** GETs on the API server with the kubeconfig's credentials over `agent`, the body as JSON. */
async function apiGetter(kc: k8s.KubeConfig): Promise<(path: string, agent: HttpsAgent, accept?: string) => Promise<unknown>> {
  const server = new URL(kc.getCurrentCluster()?.server ?? '');
  const base: RequestOptions = {};
  await kc.applyToHTTPSOptions(base);
  return (path, agent, accept = 'application/json') => new Promise((resolve, reject) => {
    const request = httpsRequest({ ...base, agent, hostname: server.hostname, port: server.port, method: 'GET', path, headers: { ...(base.headers as Record<string, string> | undefined), accept } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      response.on('end', () => {
        if (response.statusCode === 200) resolve(JSON.parse(body) as unknown);
        else reject(new Error(`GET ${path}: HTTP ${String(response.statusCode)} ${body.slice(0, 200)}`));
      });
    });
    request.on('error', reject);
    request.end();
  });
}

/**
 * What one API request costs on this machine, with and without connection reuse: `n` sequential
 * GETs (of the default Namespace) over one kept-alive TLS connection, then over a fresh TLS
 * connection each (what client-node 2.0.1 does: a new undici Agent per request, see the report).
 */
async function connectionProbe(kc: k8s.KubeConfig, n: number): Promise<{ reusedMs: number; freshMs: number }> {
  const get = await apiGetter(kc);
  const time = async (agentFor: () => HttpsAgent): Promise<number> => {
    await get('/api/v1/namespaces/default', agentFor()); // warm-up
    const began = performance.now();
    for (let i = 0; i < n; i++) await get('/api/v1/namespaces/default', agentFor());
    return (performance.now() - began) / n;
  };
  const kept = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  const reusedMs = await time(() => kept);
  kept.destroy();
  const freshMs = await time(() => new HttpsAgent({ keepAlive: false }));
  return { reusedMs, freshMs };
}

function startOperatorProcess(kubeconfig: string, metricsPort: number, tracePath: string, profileDir?: string): { child: ChildProcess; tail(): string; lines(): number } {
  const preload = `--import=data:text/javascript,${encodeURIComponent(TRACE_PRELOAD)}`;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  // The operator as the image runs it: the compiled dist/ (built first) with its node flags.
  const child = spawn(join(repoRoot, 'node_modules/.bin/node'), [...OPERATOR_NODE_FLAGS, ...profile, preload, join(repoRoot, 'dist/controller/main.js')], {
    cwd: repoRoot,
    env: {
      ...process.env, KUBECONFIG: kubeconfig, DMO_BENCH_TRACE: tracePath,
      ENGINE_IMAGE: 'bench', ENGINE_COMMAND: '["true"]', LEADER_ELECTION: 'false',
      METRICS_PORT: String(metricsPort), LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep the last lines of its log for a failure report, and count them (warnings and errors).
  const kept: string[] = [];
  let count = 0;
  const collect = (chunk: string): void => {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      count++;
      kept.push(line);
      if (kept.length > 20) kept.shift();
    }
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);
  return { child, tail: () => kept.join('\n'), lines: () => count };
}

/** SIGTERM (the operator stops gracefully), SIGKILL after 60 s; how it ended. */
async function stopProcess(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return `had exited (${String(child.exitCode ?? child.signalCode)})`;
  const began = performance.now();
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => { resolve(`exited ${String(code ?? signal)} after ${String(round((performance.now() - began) / 1000, 1))} s`); }));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const how = await exited;
  clearTimeout(timer);
  return how;
}

interface ProfileNode { id: number; hitCount?: number; callFrame: { functionName: string; url: string; lineNumber: number } }

/** Self time of a V8 CPU profile by function and by package (the idle and GC pseudo-frames kept apart). */
async function summarizeProfile(dir: string): Promise<void> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'));
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
    const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
    const byFunction = new Map<string, number>();
    const byPackage = new Map<string, number>();
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url.startsWith('data:') ? 'data:' : url.replace(`file://${repoRoot}`, '').replace(/^\/?/, '');
      byFunction.set(`${functionName || '(anonymous)'} ${where}:${String(lineNumber + 1)}`, (byFunction.get(`${functionName || '(anonymous)'} ${where}:${String(lineNumber + 1)}`) ?? 0) + hits);
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1]
        ?? (where.startsWith('src/') ? where.split('/').slice(0, 2).join('/')
          : where.startsWith('node:internal/') ? where.split('/').slice(0, 2).join('/').replace(/\.js$/, '') // node:internal/tls, node:internal/streams, ...
            : where.startsWith('data:') ? '(the bench\'s request trace)'
              : functionName.startsWith('(') ? functionName : where || '(native)');
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + hits);
    }
    const share = (hits: number): string => `${round((hits / total) * 100, 1)}%`;
    console.log(`operator CPU profile (${round((profile.endTime - profile.startTime) / 1e6, 1)} s, ${String(total)} samples), self time by package:`);
    for (const [pkg, hits] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${share(hits).padStart(6)}  ${pkg}`);
    console.log('  top functions:');
    for (const [fn, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${share(hits).padStart(6)}  ${fn}`);
  }
}

/** The API server's metric verbs for the trace's. */
const SERVER_VERBS: Record<string, string> = { get: 'GET', list: 'LIST', create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE' };

/** apiserver_request_duration_seconds sum and count by "verb resource[/subresource]", from the API server's /metrics. */
async function apiserverLatency(kubectl: string, kubeconfig: string): Promise<Map<string, { sum: number; count: number }>> {
  const text = await runChecked(kubectl, ['--kubeconfig', kubeconfig, 'get', '--raw', '/metrics']);
  const out = new Map<string, { sum: number; count: number }>();
  for (const part of ['sum', 'count'] as const) {
    for (const { labels, value } of samples(text, `apiserver_request_duration_seconds_${part}`)) {
      const label = (name: string): string => new RegExp(`[{,]${name}="([^"]*)"`).exec(labels)?.[1] ?? '';
      const key = `${label('verb')} ${label('resource')}${label('subresource') ? `/${label('subresource')}` : ''}`;
      const entry = out.get(key) ?? { sum: 0, count: 0 };
      entry[part] += value;
      out.set(key, entry);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const report: Record<string, number | string | boolean | null> = { migrations };
  console.log('building the operator (dist/)');
  await runChecked(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: repoRoot });
  console.log('starting the control plane');
  const platform = await startPlatform({ kubernetes: true, databases: false });
  console.log(`control plane up: ${JSON.stringify(platform.startSeconds)} s`);
  const kubeconfig = platform.env[ENV_KUBECONFIG] ?? '';
  const kubectl = join(platform.env[ENV_BIN_DIR] ?? '', 'kubectl');
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);

  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // Pods need the namespace's default ServiceAccount, which the controller manager creates.
  await waitFor(`ServiceAccount default in ${namespace}`, async () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace }).then(() => true, () => undefined), 30_000, 100);
  for (const name of ['source-db', 'target-db']) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { url: DB_URL } } });
  }
  // The API server answers 429 "storage is (re)initializing" for a while after a CRD is installed:
  // wait until DataMigrations can be listed, so the operator's informer does not start into it.
  await waitFor('DataMigrations can be listed', async () =>
    custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace }).then(() => true), 60_000, 200);

  const metricsPort = await freePort();
  const tracePath = join(tmpdir(), `dmo-bench-trace-${String(process.pid)}.json`);
  const profileDir = values['cpu-prof'] ? await mkdtemp(join(tmpdir(), 'dmo-bench-prof-')) : undefined;
  if (profileDir) console.log(`profiling the operator into ${profileDir} (its figures are slowed by the profiler)`);
  const operator = startOperatorProcess(kubeconfig, metricsPort, tracePath, profileDir);
  const pid = operator.child.pid;
  if (pid === undefined) throw new Error('the operator did not start');
  const unregister = onExit(async () => { await stopProcess(operator.child); });
  const metricsUrl = `http://127.0.0.1:${String(metricsPort)}`;
  await waitFor('the operator is ready', async () => {
    if (operator.child.exitCode !== null) throw new Error(`the operator exited (${String(operator.child.exitCode)}):\n${operator.tail()}`);
    const response = await fetch(`${metricsUrl}/readyz`).catch(() => undefined);
    return response?.ok ? true : undefined;
  }, 60_000, 100);
  await sleep(1000); // settle: the informers' initial lists are done
  const idleRssMb = ((await statusKb(pid, 'VmRSS')) ?? 0) / 1024;
  console.log(`operator ready (pid ${String(pid)}, metrics on :${String(metricsPort)}), RSS ${round(idleRssMb, 0)} MB idle`);

  // CPU of each part over the measured window (2 s of settling excluded), to see who is busy.
  const parts: Record<string, number> = { operator: pid, bench_and_node_standin: process.pid, ...(await controlPlanePids()) };
  const cpuBefore = Object.fromEntries(await Promise.all(Object.entries(parts).map(async ([name, p]) => [name, await cpuSeconds(p)] as const)));
  const serverBefore = await apiserverLatency(kubectl, kubeconfig);

  // Peak memory: VmRSS sampled every 100 ms (VmHWM, the kernel's own high-water mark, read at the end too);
  // the operator's open sockets every 500 ms.
  let peakRssKb = 0;
  let peakSockets = 0;
  const sampling = { on: true };
  const sampler = (async () => {
    for (let tick = 0; sampling.on; tick++) {
      peakRssKb = Math.max(peakRssKb, (await statusKb(pid, 'VmRSS')) ?? 0);
      if (tick % 5 === 0) peakSockets = Math.max(peakSockets, (await socketInodes(pid)).length);
      await sleep(100, undefined, { ref: false }); // never what keeps the process alive after a failure
    }
  })();

  const names = Array.from({ length: migrations }, (_, i) => `m-${String(i).padStart(5, '0')}`);
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  let createdAt = Number.NaN;
  let createFailures = 0;
  const creating = pool(migrations, concurrency, async (i) => {
    const body = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'DataMigration', metadata: { name: names[i] },
      spec: {
        source: { engine: 'postgres', secretRef: { name: 'source-db', key: 'url' } },
        target: { engine: 'postgres', secretRef: { name: 'target-db', key: 'url' } },
        tables: [{ name: 't' }],
      },
    };
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, body }).catch((error: unknown) => {
      createFailures++;
      if (createFailures <= 3) console.error(`create ${names[i] ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }).then(() => {
    createdAt = elapsed();
    console.log(`${String(migrations)} DataMigrations created in ${round(createdAt)} s (concurrency ${String(concurrency)}, ${String(createFailures)} failed)`);
  });

  // Every DataMigration has a Job once the distinct migration labels on the operator's Jobs cover them all.
  let withJob = 0;
  let jobs = 0;
  let lastPrint = 0;
  let allFirstJobs = Number.NaN;
  let halfFirstJobs = Number.NaN;
  const listMs: number[] = [];
  const apiGet = await apiGetter(kc);
  const pollAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
  while (elapsed() < timeoutSeconds) {
    const listStarted = performance.now();
    // Metadata only, from the API server's watch cache (resourceVersion 0): the labels are all this
    // needs, and full Job objects 4 times a second would load the machine the operator is measured on.
    // Over one kept-alive connection of the bench's own (not a new TLS connection per poll).
    const list = await apiGet(`/apis/batch/v1/namespaces/${namespace}/jobs?labelSelector=${encodeURIComponent(JOB_SELECTOR)}&resourceVersion=0`, pollAgent, METADATA_ONLY)
      .then((body) => body as { items?: k8s.V1ObjectMeta[] | null } | undefined, () => undefined);
    listMs.push(performance.now() - listStarted);
    if (list) {
      const items = (list.items ?? []) as { metadata?: k8s.V1ObjectMeta }[];
      jobs = items.length;
      withJob = new Set(items.map((job) => job.metadata?.labels?.[MIGRATION_LABEL]).filter(Boolean)).size;
    }
    if (Number.isNaN(halfFirstJobs) && withJob * 2 >= migrations) halfFirstJobs = elapsed();
    if (withJob >= migrations) {
      allFirstJobs = elapsed();
      break;
    }
    if (operator.child.exitCode !== null) throw new Error(`the operator exited (${String(operator.child.exitCode)}):\n${operator.tail()}`);
    if (elapsed() - lastPrint >= 5) {
      lastPrint = elapsed();
      console.log(`  ${round(lastPrint, 1)} s: ${String(withJob)}/${String(migrations)} DataMigrations have a Job (${String(jobs)} Jobs), operator RSS ${round(peakRssKb / 1024, 0)} MB peak, ${String(peakSockets)} sockets peak`);
    }
    await sleep(250);
  }
  const measured = elapsed();
  pollAgent.destroy();
  await creating;
  if (Number.isNaN(allFirstJobs)) console.log(`timed out after ${String(timeoutSeconds)} s: ${String(withJob)}/${String(migrations)} DataMigrations have a Job`);
  else console.log(`all ${String(migrations)} DataMigrations have a Job after ${round(allFirstJobs)} s (half after ${round(halfFirstJobs)} s; ${String(jobs)} Jobs)`);

  // The figures at this moment: the operator's metrics and request trace, CPU, the API server's latency.
  const metrics = await (await fetch(`${metricsUrl}/metrics`)).text();
  await rm(tracePath, { force: true });
  operator.child.kill('SIGUSR2');
  const trace = await waitFor('the operator request trace', async () => JSON.parse(await readFile(tracePath, 'utf8')) as Trace, 10_000, 50);
  await rm(tracePath, { force: true });
  const cpuAfter = Object.fromEntries(await Promise.all(Object.entries(parts).map(async ([name, p]) => [name, await cpuSeconds(p)] as const)));
  const serverAfter = await apiserverLatency(kubectl, kubeconfig);
  sampling.on = false;
  await sampler;
  peakRssKb = Math.max(peakRssKb, (await statusKb(pid, 'VmHWM')) ?? 0);

  const buckets = histogramBuckets(metrics, 'datamigration_reconcile_duration_seconds');
  const durationSum = samples(metrics, 'datamigration_reconcile_duration_seconds_sum')[0]?.value ?? Number.NaN;
  const durationCount = samples(metrics, 'datamigration_reconcile_duration_seconds_count')[0]?.value ?? 0;
  const byResult = Object.fromEntries(samples(metrics, 'datamigration_reconcile_total').map(({ labels, value }) => [/result="([^"]*)"/.exec(labels)?.[1] ?? '', value]));
  const reconcileTotal = Object.values(byResult).reduce((a, b) => a + b, 0);
  const errors = samples(metrics, 'datamigration_reconcile_errors_total')[0]?.value ?? 0;
  const queueDepth = samples(metrics, 'workqueue_depth')[0]?.value ?? Number.NaN;
  const processMetric = (name: string): number => samples(metrics, `datamigration_operator_${name}`)[0]?.value ?? Number.NaN;
  const gauge = (name: string): number => processMetric(name) / 1024 / 1024; // MB

  // p50/p99 are bucket estimates (linear interpolation inside the bucket), not exact latencies.
  report.seconds_to_all_first_jobs = Number.isNaN(allFirstJobs) ? null : round(allFirstJobs);
  report.seconds_to_half_first_jobs = Number.isNaN(halfFirstJobs) ? null : round(halfFirstJobs);
  report.seconds_to_create_all = round(createdAt);
  report.create_failures = createFailures;
  report.migrations_with_job = withJob;
  report.jobs = jobs;
  report.reconcile_p50_ms = round(histogramQuantile(0.5, buckets) * 1000, 1);
  report.reconcile_p99_ms = round(histogramQuantile(0.99, buckets) * 1000, 1);
  report.reconcile_mean_ms = durationCount > 0 ? round((durationSum / durationCount) * 1000, 1) : null;
  report.reconcile_total = reconcileTotal;
  for (const [result, value] of Object.entries(byResult)) report[`reconcile_total_${result}`] = value;
  report.reconcile_errors = errors;
  report.reconciles_per_s = round(durationCount / measured, 1);
  report.workqueue_depth_at_end = queueDepth;
  report.idle_rss_mb = round(idleRssMb, 0);
  report.peak_rss_mb = round(peakRssKb / 1024, 0);
  report.end_rss_mb = round(gauge('process_resident_memory_bytes'), 0);
  report.end_heap_used_mb = round(gauge('nodejs_heap_size_used_bytes'), 0);
  report.end_heap_total_mb = round(gauge('nodejs_heap_size_total_bytes'), 0);
  report.end_external_mb = round(gauge('nodejs_external_memory_bytes'), 0);
  report.operator_event_loop_lag_p99_ms = round(processMetric('nodejs_eventloop_lag_p99_seconds') * 1000, 1);
  report.operator_event_loop_lag_max_ms = round(processMetric('nodejs_eventloop_lag_max_seconds') * 1000, 1);
  report.operator_log_lines = operator.lines();
  console.log(`reconciles: ${String(reconcileTotal)} (${JSON.stringify(byResult)}), ${String(errors)} errors, ${String(report.reconciles_per_s)}/s; `
    + `p50 ${String(report.reconcile_p50_ms)} ms, p99 ${String(report.reconcile_p99_ms)} ms (bucket estimates), mean ${String(report.reconcile_mean_ms)} ms`);
  const perBucket = buckets.map((bucket, index) => `${Number.isFinite(bucket.le) ? `≤${String(bucket.le * 1000)}` : '>5000'}: ${String(bucket.count - (buckets[index - 1]?.count ?? 0))}`);
  console.log(`reconcile durations by bucket (ms): ${perBucket.join(', ')}`);
  console.log(`operator memory: peak RSS ${String(report.peak_rss_mb)} MB (idle ${String(report.idle_rss_mb)} MB); at the end RSS ${String(report.end_rss_mb)} MB, `
    + `heap ${String(report.end_heap_used_mb)}/${String(report.end_heap_total_mb)} MB used/total, external ${String(report.end_external_mb)} MB; `
    + `event loop lag p99 ${String(report.operator_event_loop_lag_p99_ms)} ms, max ${String(report.operator_event_loop_lag_max_ms)} ms`);

  // Where the time goes: the operator's API requests (client side: connect + TLS + server + transfer).
  const requests = Object.entries(trace.stats).filter(([kind]) => !kind.startsWith('watch ')).sort((a, b) => b[1].count - a[1].count);
  const requestCount = requests.reduce((sum, [, s]) => sum + s.count, 0);
  const requestMs = requests.reduce((sum, [, s]) => sum + s.totalMs, 0);
  report.operator_requests = requestCount;
  report.operator_requests_per_reconcile = round(requestCount / Math.max(1, durationCount), 2);
  report.operator_requests_per_s = round(requestCount / measured, 1);
  report.operator_request_mean_ms = round(requestMs / Math.max(1, requestCount), 1);
  report.operator_connections_opened = trace.connections;
  report.operator_connect_mean_ms = round(trace.connectMs / Math.max(1, trace.connections), 1);
  report.operator_peak_sockets = peakSockets;
  console.log(`operator API requests: ${String(requestCount)} (${String(report.operator_requests_per_reconcile)} per reconcile, ${String(report.operator_requests_per_s)}/s), `
    + `${String(trace.connections)} connections opened (TCP+TLS ${String(report.operator_connect_mean_ms)} ms each), ${String(peakSockets)} sockets open at peak; mean ${String(report.operator_request_mean_ms)} ms each`);
  for (const [kind, s] of requests) {
    const serverKey = kind.replace(/^(\w+) /, (_, verb: string) => `${SERVER_VERBS[verb] ?? verb} `);
    const server = serverAfter.get(serverKey);
    const before = serverBefore.get(serverKey);
    const serverCount = (server?.count ?? 0) - (before?.count ?? 0);
    const serverMs = serverCount > 0 ? (((server?.sum ?? 0) - (before?.sum ?? 0)) / serverCount) * 1000 : Number.NaN;
    console.log(`  ${kind.padEnd(36)} ${String(s.count).padStart(6)}  mean ${round(s.totalMs / s.count, 1)} ms (API server, all clients: ${round(serverMs, 1)} ms), max ${round(s.maxMs, 0)} ms${s.errors ? `, ${String(s.errors)} failed` : ''}`);
    report[`operator_${kind.replace(/[^a-z]+/g, '_')}`] = s.count;
  }
  const cpu = Object.fromEntries(Object.keys(parts).map((name) => [name, round((cpuAfter[name] ?? 0) - (cpuBefore[name] ?? 0), 1)]));
  for (const [name, seconds] of Object.entries(cpu)) report[`cpu_s_${name}`] = seconds;
  console.log(`CPU seconds over the ${round(measured, 1)} s (machine: ${String((await readFile('/proc/cpuinfo', 'utf8')).split('\n').filter((l) => l.startsWith('processor')).length)} CPUs): ${JSON.stringify(cpu)}`);
  const sortedList = [...listMs].sort((a, b) => a - b);
  console.log(`the bench's own Job list: median ${round(sortedList[Math.floor(sortedList.length / 2)] ?? Number.NaN, 1)} ms, max ${round(sortedList.at(-1) ?? Number.NaN, 0)} ms`);
  if (operator.lines() > 0) console.log(`last operator log lines:\n${operator.tail()}`);

  console.log(`operator stopped: ${await stopProcess(operator.child)}`);
  unregister();
  if (profileDir) {
    await summarizeProfile(profileDir);
    await rm(profileDir, { recursive: true, force: true });
  }
  // The node stand-in must be idle when the platform stops (a pod it is still starting as its
  // directory is removed fails the stop): the Jobs left (later steps, also `true`) run out first.
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const quietStarted = performance.now();
  let outstanding = '';
  let lastCount = -1;
  let stableSince = performance.now();
  const quiet = await waitFor('the remaining Jobs to finish', async () => {
    const [jobList, podList] = await Promise.all([batch.listNamespacedJob({ namespace }), core.listNamespacedPod({ namespace })]);
    const running = jobList.items.filter((job) => jobState(job) === 'Running');
    const pending = podList.items.filter((pod) => pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed');
    const phases = Object.entries(Object.groupBy(pending, (pod) => pod.status?.phase ?? 'none')).map(([phase, list]) => `${String(list?.length ?? 0)} ${phase}`);
    outstanding = `${String(running.length)} Jobs unfinished, ${String(pending.length)} pods not done (${phases.join(', ')})`;
    if (running.length + pending.length !== lastCount) {
      lastCount = running.length + pending.length;
      stableSince = performance.now();
    }
    // Done, or nothing moved for 15 s (a pod whose final status patch the stand-in lost stays "Running").
    return lastCount === 0 || performance.now() - stableSince > 15_000 ? true : undefined;
  }, 120_000, 1000).catch(() => false);
  console.log(`${quiet ? 'node stand-in idle' : 'still busy'} ${String(round((performance.now() - quietStarted) / 1000, 1))} s after the operator stopped: ${outstanding}`);

  const probe = await connectionProbe(kc, 200);
  report.probe_get_reused_connection_ms = round(probe.reusedMs, 2);
  report.probe_get_new_connection_ms = round(probe.freshMs, 2);
  console.log(`one GET with the operator stopped: ${round(probe.reusedMs, 2)} ms on a kept-alive connection, ${round(probe.freshMs, 2)} ms with a new TLS connection each`);

  const missed = Object.entries(GOALS).filter(([key, goal]) => {
    const value = report[key];
    return typeof value !== 'number' || value >= goal;
  }).map(([key, goal]) => `${key} (goal < ${String(goal)}: ${String(report[key])})`);
  report.goals_met = missed.length === 0;
  console.log(missed.length === 0 ? 'all goals met' : `goals missed: ${missed.join(', ')}`);

  // The node stand-in can still be writing into its directory as the platform stops: that is not a failure of this run.
  const nodeDir = platform.env[ENV_NODE_DIR] ?? '\0';
  process.on('unhandledRejection', (reason: unknown) => {
    if ((reason as NodeJS.ErrnoException | null)?.code === 'ENOENT' && String((reason as NodeJS.ErrnoException).path).startsWith(nodeDir)) return;
    throw reason;
  });
  try {
    await platform.stop();
  } catch (error) {
    // One part failed to stop (the node stand-in, when pods were still starting): stop the rest.
    console.log(`(stopping the platform: ${error instanceof Error ? error.message : String(error)}; stopping the rest)`);
    await platform.stop();
  }
  console.log(JSON.stringify(report));
}

main().then(runExitCleanups, async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await runExitCleanups();
  process.exitCode = 1;
});
