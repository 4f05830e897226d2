// Leader election through a coordination.k8s.io Lease, with client-go's rules: a candidate takes
// the Lease when it is free or when its holder has not renewed it for leaseDuration, measured on
// the candidate's own clock from the moment it last saw the record change (so clock skew between
// replicas cannot hand the Lease to two of them); the leader renews every retry period and steps
// down if it cannot renew within the renew deadline. Writes use the record's resourceVersion, so
// of two candidates racing for a free Lease exactly one wins. client-node has no leader election.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from './logger.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  onStartedLeading: () => void;
  /** Called once when leadership is lost or released; the process should stop reconciling. */
  onStoppedLeading: () => void;
  logger?: Logger;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** Stops campaigning; a leader releases the Lease so another replica takes over at once. */
  stop(): Promise<void>;
}

/** MicroTime as the API server parses it: six fractional digits (client-node writes three). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function statusCode(error: unknown): number | undefined {
  return (error as { code?: number }).code;
}

export function startLeaderElection(kc: k8s.KubeConfig, options: LeaderElectionOptions): LeaderElector {
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  const leaseDuration = (options.leaseDurationSeconds ?? 15) * 1000;
  const renewDeadline = (options.renewDeadlineSeconds ?? 10) * 1000;
  const retryPeriod = (options.retryPeriodSeconds ?? 2) * 1000;
  const { namespace, name, identity } = options;
  let leader = false;
  let stopped = false;
  let lastRenew = 0;
  let observed: { record: string; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const spec = (now: Date, acquire: boolean, transitions: number): Record<string, unknown> => ({
    holderIdentity: identity,
    leaseDurationSeconds: leaseDuration / 1000,
    renewTime: microTime(now),
    ...(acquire ? { acquireTime: microTime(now), leaseTransitions: transitions } : {}),
  });

  async function tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    let lease: k8s.V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      // Created without times (client-node would write them in a format the server rejects),
      // then stamped by the patch below under optimistic concurrency.
      lease = await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: leaseDuration / 1000, leaseTransitions: 0 } } });
      await api.patchNamespacedLease({ name, namespace, body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: spec(now, true, 0) } }, mergePatch);
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const record = JSON.stringify([holder, lease.spec?.renewTime, lease.spec?.leaseTransitions]);
    if (observed?.record !== record) observed = { record, at: Date.now() };
    const expired = holder === '' || observed.at + (lease.spec?.leaseDurationSeconds ?? 15) * 1000 < Date.now();
    if (holder !== identity && !expired) return false;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    await api.patchNamespacedLease({
      name, namespace,
      body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: spec(now, holder !== identity, transitions) },
    }, mergePatch);
    return true;
  }

  async function tick(): Promise<void> {
    if (stopped) return;
    try {
      const holding = await tryAcquireOrRenew();
      if (holding) {
        lastRenew = Date.now();
        if (!leader) {
          leader = true;
          options.logger?.info('became leader', { lease: `${namespace}/${name}`, identity });
          options.onStartedLeading();
        }
      } else if (leader) {
        loseLeadership('another replica holds the lease');
      }
    } catch (error) {
      // A conflict means another candidate wrote first; anything else is retried until the deadline.
      if (leader && Date.now() - lastRenew > renewDeadline) loseLeadership(`could not renew within ${renewDeadline / 1000} s: ${(error as Error).message}`);
      else if (statusCode(error) !== 409) options.logger?.warn('leader election attempt failed', { error: (error as Error).message });
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may run while this tick awaited
    if (!stopped) timer = setTimeout(() => void tick(), retryPeriod);
  }

  function loseLeadership(reason: string): void {
    leader = false;
    options.logger?.error('lost leadership', { reason });
    options.onStoppedLeading();
  }

  void tick();
  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (!leader) return;
      leader = false;
      try {
        const lease = await api.readNamespacedLease({ name, namespace });
        if (lease.spec?.holderIdentity === identity) {
          await api.patchNamespacedLease({
            name, namespace,
            body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: { holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) } },
          }, mergePatch);
        }
      } catch (error) {
        options.logger?.warn('could not release the lease', { error: (error as Error).message });
      }
      options.onStoppedLeading();
    },
  };
}
