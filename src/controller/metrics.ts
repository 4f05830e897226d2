// Prometheus metrics of the operator (prom-client), on its own registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'result'>;
  readonly reconcileErrors: Counter;
  readonly reconcileDuration: Histogram;
  readonly queueDepth: Gauge;
  readonly migrationsByPhase: Gauge<'phase'>;
  readonly rowsCopied: Gauge<'namespace' | 'name'>;
  readonly lastPhaseChange: Gauge<'namespace' | 'name' | 'phase'>;
  readonly leader: Gauge;
}

export function createMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'datamigration_operator_' });
  return {
    registry,
    reconcileTotal: new Counter({ name: 'datamigration_reconcile_total', help: 'Reconciles, by result (done, requeue, conflict, error).', labelNames: ['result'], registers: [registry] }),
    reconcileErrors: new Counter({ name: 'datamigration_reconcile_errors_total', help: 'Reconciles that returned an error.', registers: [registry] }),
    reconcileDuration: new Histogram({
      name: 'datamigration_reconcile_duration_seconds', help: 'Time of one reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
    }),
    queueDepth: new Gauge({ name: 'datamigration_workqueue_depth', help: 'Keys waiting in the work queue.', registers: [registry] }),
    migrationsByPhase: new Gauge({ name: 'datamigration_migrations', help: 'DataMigrations by phase.', labelNames: ['phase'], registers: [registry] }),
    rowsCopied: new Gauge({ name: 'datamigration_rows_copied', help: 'Rows copied so far, per DataMigration.', labelNames: ['namespace', 'name'], registers: [registry] }),
    lastPhaseChange: new Gauge({
      name: 'datamigration_last_phase_change_timestamp_seconds', help: 'When a DataMigration last changed phase (Unix time).',
      labelNames: ['namespace', 'name', 'phase'], registers: [registry],
    }),
    leader: new Gauge({ name: 'datamigration_leader', help: '1 while this replica is the leader.', registers: [registry] }),
  };
}
