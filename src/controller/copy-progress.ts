// Progress of a running copy, read where it is true: the checkpoints the engine commits with each
// batch in the target database (read-only session), against the source catalog's row estimates
// (read once per run). The engine Jobs need no Kubernetes API access for this, and the figures
// never run ahead of what is committed.
import { endpointSecrets } from '../api/defaults.ts';
import type { DataMigration, Progress } from '../api/types.ts';
import type { Cluster } from './cluster.ts';
import { copiedRowsByTable } from '../engine/copy/checkpoint.ts';
import { openSession } from '../engine/db/connect.ts';
import type { ConnectOptions, TlsOptions } from '../engine/db/session.ts';
import { introspectTable, listTables } from '../engine/schema/introspect.ts';
import { engineSettings } from '../engine/pipeline/settings.ts';

export interface ProgressSample {
  progress: Progress;
  /** For the rate: rows and time of this sample. */
  rows: number;
  at: number;
}

const estimates = new Map<string, Map<string, number>>();

async function sourceEstimates(key: string, sourceUrl: string, tables: { name: string; target: string }[] | undefined, connect: ConnectOptions): Promise<Map<string, number>> {
  const cached = estimates.get(key);
  if (cached) return cached;
  const session = await openSession(sourceUrl, connect);
  try {
    const names = tables ?? (await listTables(session)).map((name) => ({ name, target: name }));
    const result = new Map<string, number>();
    for (const table of names) result.set(table.target, (await introspectTable(session, table.name))?.estimatedRows ?? 0);
    estimates.set(key, result);
    return result;
  } finally {
    await session.close();
  }
}

/** Connection URLs, and the CA PEMs of spec.*.tls.caSecretRef when set. */
export interface ProgressUrls {
  source: string;
  target: string;
  sourceCa?: string;
  targetCa?: string;
}

/** The databases' URLs (and CAs) from the migration's Secrets, for the operator's read-only sessions (progress, lag). */
export async function migrationUrls(cluster: Pick<Cluster, 'secretValue'>, migration: DataMigration): Promise<ProgressUrls> {
  const namespace = migration.metadata?.namespace ?? '';
  const value = async (ref: { name: string; key: string }): Promise<string> => {
    const found = await cluster.secretValue(namespace, ref.name, ref.key);
    if (found === undefined || found === '') throw new Error(`Secret ${ref.name} has no key ${ref.key}`);
    return found;
  };
  const [source, target] = await Promise.all([migration.spec.source, migration.spec.target].map(async (endpoint) => {
    const refs = endpointSecrets(endpoint);
    return { url: await value(refs.url), ...(refs.ca ? { ca: await value(refs.ca) } : {}) };
  }));
  return {
    source: source?.url ?? '', target: target?.url ?? '',
    ...(source?.ca !== undefined ? { sourceCa: source.ca } : {}), ...(target?.ca !== undefined ? { targetCa: target.ca } : {}),
  };
}

/** Progress statements are catalog and checkpoint reads: bounded, like the connect (the engine's sessions get the same). */
const PROGRESS_STATEMENT_TIMEOUT_MS = 30_000;

/** The options of a progress session: read only, spec.*.tls as the engine reads it (db/connection-options.ts), a statement timeout. */
export function progressSession(migration: DataMigration, side: 'source' | 'target', ca: string | undefined): ConnectOptions {
  const spec = migration.spec[side].tls;
  const tls: TlsOptions | undefined = spec ? { mode: spec.mode, ...(ca ? { ca } : {}) } : undefined;
  return { readOnly: true, side, applicationName: 'datamigration operator progress', statementTimeoutMs: PROGRESS_STATEMENT_TIMEOUT_MS, ...(tls ? { tls } : {}) };
}

/**
 * The copy's progress now; `previous` (the last sample) gives the rate and the ETA. `key` is the
 * migration's namespace/name, under which the source estimates are kept (forgetEstimates).
 */
export async function readCopyProgress(migration: DataMigration, key: string, urls: ProgressUrls, previous: ProgressSample | undefined, now = Date.now()): Promise<ProgressSample> {
  const settings = engineSettings(migration);
  const tables = settings.tables.length > 0 ? settings.tables.map((t) => ({ name: t.name, target: t.target ?? t.name })) : undefined;
  const estimated = await sourceEstimates(`${key}/${migration.metadata?.uid ?? ''}/${migration.status?.runId ?? ''}`, urls.source, tables, progressSession(migration, 'source', urls.sourceCa));
  const session = await openSession(urls.target, progressSession(migration, 'target', urls.targetCa));
  try {
    const copied = await copiedRowsByTable(session, { uid: settings.uid, name: settings.migration });
    let rows = 0;
    let rowsEstimated = 0;
    let done = 0;
    for (const [table, estimate] of estimated) {
      const state = copied.get(table);
      rows += state?.rowsCopied ?? 0;
      rowsEstimated += Math.max(estimate, state?.rowsCopied ?? 0);
      if (state?.done) done++;
    }
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    const rate = previous && seconds > 0 ? Math.max(0, Math.round((rows - previous.rows) / seconds)) : undefined;
    const percent = rowsEstimated > 0 ? Math.min(100, Math.floor((rows / rowsEstimated) * 100)) : 0;
    const progress: Progress = {
      tablesTotal: estimated.size, tablesDone: done, rowsCopied: rows, rowsEstimated, percent,
      summary: `${String(percent)}% · ${String(done)}/${String(estimated.size)} tables · ${String(rows)} rows`,
      updatedAt: new Date(now).toISOString(),
      ...(rate !== undefined ? { rowsPerSecond: rate } : {}),
      ...(rate ? { etaSeconds: Math.round(Math.max(0, rowsEstimated - rows) / rate) } : {}),
    };
    return { progress, rows, at: now };
  } finally {
    await session.close();
  }
}

/** Forgets the estimates of a migration (namespace/name) whose copy is over or that is gone. */
export function forgetEstimates(key: string): void {
  for (const cached of estimates.keys()) if (cached.startsWith(`${key}/`)) estimates.delete(cached);
}
