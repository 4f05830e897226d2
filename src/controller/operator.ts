// The running operator: informers (list+watch caches) for DataMigrations, the Jobs they own and
// Services; a rate-limited work queue keyed by namespace/name; workers calling the reconciler;
// leader election (only the leader reconciles); /metrics, and /healthz and /readyz on their own port; graceful stop.
import type { Server } from 'node:http';
import * as k8s from '@kubernetes/client-node';
import { GROUP, LABELS, MANAGED_BY, PLURAL, VERSION } from '../api/constants.ts';
import type { DataMigration } from '../api/types.ts';
import { metricsRoutes, probeRoutes, startHttpServer } from './http-server.ts';
import { InformerSet, type Cached } from './informer-set.ts';
import type { EngineConfig } from './job-builder.ts';
import { startLeaderElection, type LeaderElector } from './leader-election.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type OperatorMetrics } from './metrics.ts';
import { describeError, KubeCluster } from './kube-cluster.ts';
import { reuseConnections } from './kube-client.ts';
import { applyOutcome, outcomeOf, type Outcome } from './outcome.ts';
import { Reconciler } from './reconciler.ts';
import type { LabelSelector } from './selectors.ts';
import { WorkQueue } from './workqueue.ts';

export interface OperatorConfig {
  kc: k8s.KubeConfig;
  logger: Logger;
  engine: EngineConfig;
  /** Watch these namespaces (a Role in each) or, when empty or absent, all (a ClusterRole). */
  watchNamespaces?: readonly string[];
  workers?: number;
  /** Port for /metrics; 0 picks a free one; undefined: no server. */
  metricsPort?: number;
  /** Port for /healthz and /readyz (the probes); 0 picks a free one; undefined: no server. */
  healthPort?: number;
  leaderElection?: { namespace: string; name: string; identity: string; leaseDurationSeconds?: number; renewDeadlineSeconds?: number; retryPeriodSeconds?: number };
  identity: string;
  /** How often a running copy's progress is read (default 9 s; tests shorten it). */
  progressIntervalMs?: number;
  /** Cutover Services whose labels match this may be switched without naming the DataMigration (CUTOVER_OPT_IN_SELECTOR). */
  optInSelector?: LabelSelector;
}

export interface RunningOperator {
  readonly metrics: OperatorMetrics;
  /** The /metrics server and the probes' server, when their ports were given. */
  readonly servers: readonly Server[];
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Informer restart delay after a watch error (client-node leaves a failed watch stopped). */
const INFORMER_RESTART_MS = 2000;

export async function startOperator(config: OperatorConfig): Promise<RunningOperator> {
  const { logger } = config;
  const kc = reuseConnections(config.kc);
  const watched = config.watchNamespaces ?? [];
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const batch = kc.makeApiClient(k8s.BatchV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const jobSelector = `${LABELS.managedBy}=${MANAGED_BY}`;
  const path = (ns: string | undefined, group: string, resource: string): string => (ns ? `${group}/namespaces/${ns}/${resource}` : `${group}/${resource}`);

  const migrations = new InformerSet<DataMigration>(watched, (ns) => k8s.makeInformer<DataMigration>(kc, path(ns, `/apis/${GROUP}/${VERSION}`, PLURAL), async () => (ns
    ? custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })
    : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL })) as Promise<k8s.KubernetesListObject<DataMigration>>));
  const jobs = new InformerSet<k8s.V1Job>(watched, (ns) => k8s.makeInformer<k8s.V1Job>(kc, path(ns, '/apis/batch/v1', 'jobs'), () => (ns
    ? batch.listNamespacedJob({ namespace: ns, labelSelector: jobSelector })
    : batch.listJobForAllNamespaces({ labelSelector: jobSelector })), jobSelector));
  const services = new InformerSet<k8s.V1Service>(watched, (ns) => k8s.makeInformer<k8s.V1Service>(kc, path(ns, '/api/v1', 'services'), () => (ns
    ? core.listNamespacedService({ namespace: ns })
    : core.listServiceForAllNamespaces())));
  // Series naming a migration are read from its cache at each scrape, so a deleted one leaves none.
  const metrics = createMetrics({ migrations: () => migrations.list() });
  const queue = new WorkQueue(undefined, metrics.workqueue);

  // What the caches keep is trimmed, like client-go's informer TransformFunc: managedFields are
  // never read here, nor is a Job's pod template (its env carries the whole manifest). The cache
  // holds the very object its handlers get, so the first handler trims the cached copy.
  const trim = (obj: k8s.KubernetesObject): void => { delete obj.metadata?.managedFields; };
  for (const verb of ['add', 'update'] as const) {
    migrations.on(verb, trim);
    services.on(verb, trim);
    jobs.on(verb, (job: k8s.V1Job) => {
      trim(job);
      if (job.spec) job.spec.template = {};
    });
  }

  const keyOf = (obj: k8s.KubernetesObject): string => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  const enqueueMigration = (obj: DataMigration): void => { queue.add(keyOf(obj)); };
  for (const verb of ['add', 'update', 'delete'] as const) migrations.on(verb, enqueueMigration);
  // A Job's change wakes its migration (by label: the owner's name).
  const enqueueOwner = (job: k8s.V1Job): void => {
    const owner = job.metadata?.labels?.[LABELS.migration];
    if (owner) queue.add(`${job.metadata?.namespace ?? ''}/${owner}`);
  };
  for (const verb of ['add', 'update', 'delete'] as const) jobs.on(verb, enqueueOwner);
  // A cutover Service's change wakes the migrations that switch it.
  const enqueueServiceUsers = (service: k8s.V1Service): void => {
    for (const migration of migrations.list(service.metadata?.namespace)) {
      if (migration.spec.cutover?.service === service.metadata?.name) queue.add(keyOf(migration));
    }
  };
  for (const verb of ['add', 'update', 'delete'] as const) services.on(verb, enqueueServiceUsers);

  // Each informer by `kind` or `kind/namespace`: ready once every one has listed.
  const named = <T extends k8s.KubernetesObject>(kind: string, set: InformerSet<T>): [string, Cached<T>][] =>
    set.members.map(({ namespace, informer }) => [namespace === undefined ? kind : `${kind}/${namespace}`, informer]);
  const informers: [string, Cached<DataMigration> | Cached<k8s.V1Job> | Cached<k8s.V1Service>][] = [
    ...named('datamigrations', migrations), ...named('jobs', jobs), ...named('services', services),
  ];
  const synced = new Set<string>();
  let stopping = false;
  for (const [name, informer] of informers) {
    informer.on('connect', () => { synced.add(name); });
    informer.on('error', (error: unknown) => {
      synced.delete(name);
      if (stopping) return;
      logger.warn('informer stopped; restarting', { informer: name, error: describeError(error) });
      setTimeout(() => { if (!stopping) informer.start().catch(() => undefined); }, INFORMER_RESTART_MS);
    });
  }
  await Promise.all(informers.map(([, informer]) => informer.start()));

  const cluster = new KubeCluster(kc, { migrations, jobs, services }, config.identity);
  const reconciler = new Reconciler({ cluster, engine: config.engine, logger, metrics, wake: (key) => { queue.add(key); }, ...(config.progressIntervalMs !== undefined ? { progressIntervalMs: config.progressIntervalMs } : {}), ...(config.optInSelector ? { optInSelector: config.optInSelector } : {}) });

  // Workers: one key at a time each; the queue never hands one key to two workers.
  let leading = config.leaderElection === undefined;
  let lastWorkerTick = Date.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      if (stopping) {
        // Stopping: the reconciles in flight finish; what still waits is the next leader's.
        queue.done(key);
        return;
      }
      lastWorkerTick = Date.now();
      if (!leading) {
        queue.done(key); // a standby keeps its caches warm; the leader reconciles
        continue;
      }
      const timer = metrics.reconcileDuration.startTimer();
      try {
        let outcome: Outcome;
        try {
          outcome = outcomeOf({ result: await reconciler.reconcile(key) });
        } catch (error) {
          outcome = outcomeOf({ error });
        }
        const [namespace, name] = key.split('/');
        switch (outcome.kind) {
          case 'done': case 'requeue':
            metrics.reconcileTotal.inc({ result: outcome.kind === 'requeue' ? 'requeue' : 'done' });
            break;
          case 'conflict':
            // Our cache was behind the object we wrote a moment ago: decide again on the fresh copy.
            logger.debug('status write conflicted; retrying', { namespace, name });
            metrics.reconcileTotal.inc({ result: 'conflict' });
            break;
          case 'error':
            metrics.reconcileErrors.inc();
            metrics.reconcileTotal.inc({ result: 'error' });
            logger.warn('reconcile failed; retrying with backoff', { namespace, name, error: describeError(outcome.error), failures: queue.failures(key) });
            break;
        }
        applyOutcome(queue, key, outcome);
      } finally {
        timer();
        queue.done(key);
      }
    }
  };
  const workers = Array.from({ length: config.workers ?? 2 }, () => worker());

  let elector: LeaderElector | undefined;
  if (config.leaderElection) {
    elector = startLeaderElection(kc, {
      ...config.leaderElection, logger,
      onStartedLeading: () => {
        leading = true;
        metrics.leader.set(1);
        for (const migration of migrations.list()) queue.add(keyOf(migration)); // take over every key
      },
      onStoppedLeading: () => {
        leading = false;
        metrics.leader.set(0);
      },
    });
  } else {
    metrics.leader.set(1);
    for (const migration of migrations.list()) queue.add(keyOf(migration));
  }

  const probes = probeRoutes({
    // Alive unless a worker holds one key for over ten minutes with work waiting (wedged).
    healthy: () => queue.length === 0 || Date.now() - lastWorkerTick < 600_000,
    ready: () => informers.every(([name]) => synced.has(name)),
  });
  const servers: Server[] = [];
  if (config.metricsPort !== undefined) servers.push(await startHttpServer(config.metricsPort, metricsRoutes(metrics.registry)));
  if (config.healthPort !== undefined) servers.push(await startHttpServer(config.healthPort, probes));

  return {
    metrics,
    servers,
    isLeader: () => leading,
    async stop() {
      stopping = true;
      queue.shutDown();
      await Promise.all(workers); // in-flight reconciles finish
      await elector?.stop();
      for (const [, informer] of informers) await informer.stop();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => { server.close(() => { resolve(); }); })));
    },
  };
}
