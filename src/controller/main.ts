#!/usr/bin/env node
// The operator process: configuration from the environment (set by the Helm chart or the
// kustomize manager Deployment), then the operator until SIGTERM/SIGINT, which stops it gracefully
// (in-flight reconciles finish, the Lease is released so a standby takes over at once).
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { DEFAULT_ENGINE_COMMAND } from './job-builder.ts';
import { LOG_FORMATS, logFormatOf } from '../api/log-schema.ts';
import { parseWatchNamespaces } from './informer-set.ts';
import { createLogger } from './logger.ts';
import { startOperator } from './operator.ts';
import { podDefaultsFromEnv } from './pod-defaults.ts';
import { podPolicyFromEnv } from './pod-policy.ts';
import { parseLabelSelector, type LabelSelector } from './selectors.ts';

const env = process.env;
const logFormat = logFormatOf(env.LOG_FORMAT);
const logger = createLogger(env.LOG_LEVEL ?? 'info', undefined, logFormat ?? 'json');
if (logFormat === undefined) {
  logger.error(`LOG_FORMAT "${env.LOG_FORMAT ?? ''}" is not one of ${LOG_FORMATS.join(', ')}`);
  process.exit(2);
}
const kc = new k8s.KubeConfig();
kc.loadFromDefault(); // in a pod: the service account; outside: KUBECONFIG

const identity = env.POD_NAME ?? `${hostname()}-${String(process.pid)}`;
const image = env.ENGINE_IMAGE;
if (!image) {
  logger.error('ENGINE_IMAGE is not set: the operator needs the image its engine Jobs run (the chart sets it to the operator\'s own)');
  process.exit(2);
}
// Cutover Services whose labels match may be switched by any DataMigration of their namespace
// (besides those that name it in dataops.dev/cutover-by); empty: none.
let optInSelector: LabelSelector | undefined;
try {
  optInSelector = parseLabelSelector(env.CUTOVER_OPT_IN_SELECTOR ?? '');
} catch (error) {
  logger.error(`CUTOVER_OPT_IN_SELECTOR is not a usable label selector: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
// What a DataMigration may choose for its pods besides the defaults (pod-policy.ts): refused at
// start when an entry is not valid, rather than allowing less (or more) than meant.
const policy = podPolicyFromEnv(env);
const podDefaults = podDefaultsFromEnv(env.ENGINE_POD_DEFAULTS);
if (policy.errors.length > 0 || podDefaults.errors.length > 0) {
  logger.error(`invalid pod policy configuration: ${[...policy.errors, ...podDefaults.errors].join('; ')}`);
  process.exit(2);
}
const leaderElection = env.LEADER_ELECTION !== 'false';
// WATCH_NAMESPACE: comma-separated namespaces (the chart's watchNamespaces), empty for all.
let watchNamespaces: string[];
try {
  watchNamespaces = parseWatchNamespaces(env.WATCH_NAMESPACE);
} catch (error) {
  logger.error(`WATCH_NAMESPACE: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
const operator = await startOperator({
  kc, logger, identity,
  engine: {
    image,
    command: env.ENGINE_COMMAND ? (JSON.parse(env.ENGINE_COMMAND) as string[]) : DEFAULT_ENGINE_COMMAND,
    ...(env.ENGINE_SERVICE_ACCOUNT ? { serviceAccountName: env.ENGINE_SERVICE_ACCOUNT } : {}),
    allowedImages: policy.allowedImages,
    allowedServiceAccounts: policy.allowedServiceAccounts,
    podDefaults: podDefaults.defaults,
    logFormat,
  },
  watchNamespaces,
  ...(optInSelector ? { optInSelector } : {}),
  metricsPort: Number(env.METRICS_PORT ?? 8080),
  healthPort: Number(env.HEALTH_PORT ?? 8081),
  workers: Number(env.WORKERS ?? 2),
  ...(leaderElection ? {
    leaderElection: {
      namespace: env.LEADER_ELECTION_NAMESPACE ?? env.POD_NAMESPACE ?? 'default',
      name: env.LEADER_ELECTION_LEASE ?? 'datamigration-operator',
      identity,
    },
  } : {}),
});
logger.info('operator started', { identity, watchNamespaces: watchNamespaces.length > 0 ? watchNamespaces : 'all', leaderElection, cutoverOptInSelector: optInSelector?.text ?? 'none',
  engineImage: image, allowedImages: policy.allowedImages, allowedServiceAccounts: policy.allowedServiceAccounts,
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    operator.stop().then(() => process.exit(0), (error: unknown) => {
      logger.error('unclean stop', { error: error instanceof Error ? error.message : String(error) });
      process.exit(1);
    });
  });
}
