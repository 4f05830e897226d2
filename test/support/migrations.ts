// Reading DataMigrations and their Events on the test control plane (admin credentials), and
// waiting for a state: what the e2e tests share.
import * as k8s from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../src/api/constants.ts';
import type { DataMigration } from '../../src/api/types.ts';
import { testKubeConfig } from './kube.ts';
import { waitFor } from './process.ts';

const kc = testKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const events = kc.makeApiClient(k8s.EventsV1Api);

export async function getMigration(namespace: string, name: string): Promise<DataMigration> {
  return await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }) as DataMigration;
}

/** The migration once `done` holds; on timeout the error carries the last status seen. */
export async function waitForMigration(namespace: string, name: string, what: string, done: (m: DataMigration) => boolean, timeoutMs = 180_000): Promise<DataMigration> {
  let last: DataMigration | undefined;
  try {
    return await waitFor(`DataMigration ${name}: ${what}`, async () => {
      last = await getMigration(namespace, name);
      return done(last) ? last : undefined;
    }, timeoutMs, 250);
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status ?? {})}`, { cause: error });
  }
}

/** The migration once its phase is one of `phases`. */
export function waitForPhase(namespace: string, name: string, phases: string[], timeoutMs = 180_000): Promise<DataMigration> {
  return waitForMigration(namespace, name, `in ${phases.join('/')}`, (m) => phases.includes(m.status?.phase ?? ''), timeoutMs);
}

export const readyOf = (m: DataMigration): { reason?: string; message?: string } => m.status?.conditions?.find((c) => c.type === 'Ready') ?? {};

/** The reasons of the Events about a DataMigration, in the order the API server lists them. */
export async function eventReasons(namespace: string, name: string): Promise<string[]> {
  return (await events.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` })).items.map((e) => e.reason ?? '');
}
