// The CustomResourceDefinition object, assembled from the schema (datamigration-schema.ts) and the
// names in constants.ts. scripts/generate-api.ts writes it to crds/.
import { CATEGORIES, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from './constants.ts';
import { dataMigrationSchema } from './datamigration-schema.ts';
import { toCrdSchema } from './schema-builder.ts';

export const CRD_NAME = `${PLURAL}.${GROUP}`;

export const printerColumns = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Where the migration is.' },
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'True once the migration succeeded.' },
  { name: 'Progress', type: 'string', jsonPath: '.status.progress.summary', description: 'Copy progress.' },
  { name: 'Lag', type: 'string', jsonPath: '.status.sync.lag', description: 'ChangeCapture: how far the target is behind the source.' },
  { name: 'Source', type: 'string', jsonPath: '.spec.source.engine', description: 'The source engine.' },
  { name: 'Target', type: 'string', jsonPath: '.spec.target.engine', description: 'The target engine.' },
  { name: 'Active', type: 'string', jsonPath: '.status.active', description: 'The selector the cutover Service points at.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Message', type: 'string', jsonPath: '.status.message', priority: 1, description: 'The current state in one line.' },
];

export function dataMigrationCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'datamigration-operator', 'app.kubernetes.io/part-of': 'datamigration-operator' },
    },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: [...SHORT_NAMES], categories: [...CATEGORIES] },
      scope: 'Namespaced',
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: printerColumns,
        schema: { openAPIV3Schema: toCrdSchema(dataMigrationSchema) },
      }],
    },
  };
}
