// The fields a DataMigration hands on to Kubernetes (pod labels and annotations, selectors, node
// selector, affinity, tolerations, the cutover Service's name), checked at admission the way the
// API server checks them on the Job or the Service patch: what it would refuse there could only
// fail for ever, so it is refused here, on the DataMigration, with the field named.
// Regular expressions use [.] rather than \. so they read the same in TypeScript, YAML and CEL.
import { reservedKeysRule } from './reserved-keys.ts';
import { array, enumOf, integer, object, optional, required, string, stringMap, type CelRule, type SchemaNode } from './schema-builder.ts';

const DNS_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS_SUBDOMAIN = `${DNS_LABEL}([.]${DNS_LABEL})*`;
/** A label value, or the name part of a qualified name: at most 63, alphanumeric at both ends. */
const NAME_63 = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const QUALIFIED_NAME = `^(${DNS_SUBDOMAIN}/)?${NAME_63}$`;
/** Annotation keys are checked lower-cased, so their prefix may have capitals. */
const ANNOTATION_KEY = `^([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?${NAME_63}$`;
/** A prefix over 253 characters (a DNS subdomain's limit), which the patterns alone let through. */
const LONG_PREFIX = '^[^/]{254,}/';

/** An object name: a DNS-1123 subdomain (Secrets, ConfigMaps, ServiceAccounts, Deployments, PriorityClasses). */
export const K8S_NAME = { minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' };
/** A Service name: a DNS-1035 label (the API server's rule for Services). */
export const DNS1035_LABEL = { minLength: 1, maxLength: 63, pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$' };
/** A namespace name: a DNS-1123 label. */
const DNS1123_LABEL = { minLength: 1, maxLength: 63, pattern: `^${DNS_LABEL}$` };
const LABEL_VALUE = { maxLength: 63, pattern: `^(${NAME_63})?$` };

const QUALIFIED_HELP = 'an optional DNS subdomain prefix of at most 253 characters and "/", then a name of at most 63 characters (letters, digits, "-", "_", "."; a letter or digit at both ends)';
const isQualified = (v: string, pattern = QUALIFIED_NAME): string => `(${v}.matches('${pattern}') && !${v}.matches('${LONG_PREFIX}'))`;

/** One rule on a map: every key is a qualified name (the API server gives map keys no pattern of their own). */
function keyRule(what: string, pattern = QUALIFIED_NAME): CelRule {
  return {
    rule: `self.all(k, ${isQualified('k', pattern)})`,
    message: `${what}: every key must be a qualified name: ${QUALIFIED_HELP}`,
  };
}

/** Labels, a selector or a node selector: qualified-name keys, label values. */
export function labelMap(description: string, what: string, extra: Partial<SchemaNode> = {}, rules: CelRule[] = []): SchemaNode {
  return stringMap(description, {
    maxProperties: 32, ...extra,
    additionalProperties: string('', LABEL_VALUE),
    'x-kubernetes-validations': [keyRule(what), ...rules],
  });
}

/** The labels a user adds to the step pods: a label map without reserved keys. */
export const podLabels = (description: string): SchemaNode =>
  labelMap(description, 'spec.jobTemplate.labels', {}, [reservedKeysRule('labels')]);

/** The annotations a user adds to the step pods: qualified keys, bounded values, no reserved keys. */
export const podAnnotations = (description: string): SchemaNode => stringMap(description, {
  // 32 values of 4096 characters stay well inside the API server's 256 KiB for all annotations.
  maxProperties: 32,
  additionalProperties: string('', { maxLength: 4096 }),
  'x-kubernetes-validations': [keyRule('spec.jobTemplate.annotations', ANNOTATION_KEY), reservedKeysRule('annotations')],
});

/** A string that is a qualified name (a label key, a topology key). */
const qualifiedName = (description: string): SchemaNode => string(description, {
  minLength: 1, maxLength: 317, pattern: QUALIFIED_NAME,
  'x-kubernetes-validations': [{ rule: `!self.matches('${LONG_PREFIX}')`, message: 'the prefix of a qualified name (before "/") may have at most 253 characters' }],
});

export const toleration = object('Toleration', 'A toleration, as in a Pod spec.', {
  key: optional(string('The taint key, a qualified name (empty, with operator Exists: every taint).', { maxLength: 317, pattern: `^(${DNS_SUBDOMAIN}/)?(${NAME_63})?$` })),
  operator: optional(enumOf(['Exists', 'Equal'], 'Exists or Equal (default).')),
  value: optional(string('The taint value (Equal), a label value.', LABEL_VALUE)),
  effect: optional(enumOf(['NoSchedule', 'PreferNoSchedule', 'NoExecute'], 'The taint effect to tolerate (empty: all).')),
  tolerationSeconds: optional(integer('NoExecute: how long the pod stays bound after the taint appears.', { format: 'int64' })),
}, {
  'x-kubernetes-validations': [
    { rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')", message: 'spec.jobTemplate.tolerations[]: operator must be Exists when key is empty', fieldPath: '.operator' },
    { rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''", message: 'spec.jobTemplate.tolerations[]: value must be empty when operator is Exists', fieldPath: '.value' },
    { rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')", message: 'spec.jobTemplate.tolerations[]: tolerationSeconds needs effect NoExecute', fieldPath: '.effect' },
    { rule: "!has(self.key) || !self.key.matches('" + LONG_PREFIX + "')", message: 'spec.jobTemplate.tolerations[].key: the prefix (before "/") may have at most 253 characters', fieldPath: '.key' },
  ],
});

// Affinity: Kubernetes' core/v1 Affinity, with the checks the API server makes on a Pod's.
const nodeSelectorRequirement = (fields: boolean): SchemaNode => object(fields ? 'NodeSelectorFieldRequirement' : 'NodeSelectorRequirement', 'A node label (or field) requirement.', {
  key: required(fields ? enumOf(['metadata.name'], 'The node field: metadata.name.') : qualifiedName('The node label key.')),
  operator: required(enumOf(fields ? ['In', 'NotIn'] : ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'], 'In, NotIn, Exists, DoesNotExist, Gt or Lt.')),
  values: optional(array(string('A value.', { maxLength: 253 }), 'The values: some for In and NotIn, none for Exists and DoesNotExist, one integer for Gt and Lt.', { maxItems: 64, 'x-kubernetes-list-type': 'atomic' })),
}, {
  'x-kubernetes-validations': fields
    ? [{ rule: 'has(self.values) && size(self.values) == 1', message: 'a matchFields requirement takes exactly one value', fieldPath: '.values' }]
    : [
        { rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)", message: 'values must be non-empty for operator In and NotIn', fieldPath: '.values' },
        { rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0", message: 'values must be empty for operator Exists and DoesNotExist', fieldPath: '.values' },
        { rule: "!(self.operator in ['Gt', 'Lt']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^[-+]?[0-9]{1,18}$'))", message: 'operator Gt and Lt take exactly one integer value', fieldPath: '.values' },
      ],
});

const nodeSelectorTerm = object('NodeSelectorTerm', 'Requirements all of which a node must meet.', {
  matchExpressions: optional(array(nodeSelectorRequirement(false), 'Requirements on node labels.', { maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
  matchFields: optional(array(nodeSelectorRequirement(true), 'Requirements on node fields.', { maxItems: 4, 'x-kubernetes-list-type': 'atomic' })),
});

const labelSelector = (description: string): SchemaNode => object('LabelSelector', description, {
  matchLabels: optional(labelMap('Labels the pods must have.', 'matchLabels', { maxProperties: 16 })),
  matchExpressions: optional(array(object('LabelSelectorRequirement', 'A label requirement.', {
    key: required(qualifiedName('The label key.')),
    operator: required(enumOf(['In', 'NotIn', 'Exists', 'DoesNotExist'], 'In, NotIn, Exists or DoesNotExist.')),
    values: optional(array(string('A label value.', LABEL_VALUE), 'The values: some for In and NotIn, none for Exists and DoesNotExist.', { maxItems: 64, 'x-kubernetes-list-type': 'atomic' })),
  }, {
    'x-kubernetes-validations': [
      { rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)", message: 'values must be non-empty for operator In and NotIn', fieldPath: '.values' },
      { rule: "self.operator in ['In', 'NotIn'] || !has(self.values) || size(self.values) == 0", message: 'values must be empty for operator Exists and DoesNotExist', fieldPath: '.values' },
    ],
  }), 'Label requirements.', { maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
});

const labelKeys = (description: string): SchemaNode => array(qualifiedName('A label key.'), description, { maxItems: 16, 'x-kubernetes-list-type': 'atomic' });

const podAffinityTerm = object('PodAffinityTerm', 'Pods (by labels, in some namespaces) that must or must not share a topology domain with this pod.', {
  labelSelector: optional(labelSelector('The pods.')),
  namespaceSelector: optional(labelSelector('The namespaces whose pods count (empty: all).')),
  namespaces: optional(array(string('A namespace.', DNS1123_LABEL), 'The namespaces whose pods count (default: this one).', { maxItems: 32, 'x-kubernetes-list-type': 'atomic' })),
  topologyKey: required(qualifiedName('The node label whose values are the topology domains (kubernetes.io/hostname, topology.kubernetes.io/zone).')),
  matchLabelKeys: optional(labelKeys('Label keys whose values, taken from this pod, are added to labelSelector (In).')),
  mismatchLabelKeys: optional(labelKeys('Label keys whose values, taken from this pod, are added to labelSelector (NotIn).')),
}, {
  'x-kubernetes-validations': [{
    rule: '(!has(self.matchLabelKeys) && !has(self.mismatchLabelKeys)) || has(self.labelSelector)',
    message: 'matchLabelKeys and mismatchLabelKeys need a labelSelector',
  }],
});

const weighted = (typeName: string, field: string, term: SchemaNode, description: string): SchemaNode => object(typeName, description, {
  weight: required(integer('The weight, 1 to 100.', { minimum: 1, maximum: 100 })),
  [field]: required(term),
});

const podAffinity = (typeName: string, description: string): SchemaNode => object(typeName, description, {
  requiredDuringSchedulingIgnoredDuringExecution: optional(array(podAffinityTerm, 'Terms every one of which must hold for the pod to be scheduled.', { maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
  preferredDuringSchedulingIgnoredDuringExecution: optional(array(weighted('WeightedPodAffinityTerm', 'podAffinityTerm', podAffinityTerm, 'A preferred term and its weight.'), 'Terms the scheduler prefers, by weight.', { maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
});

export const affinity = (description: string): SchemaNode => ({
  ...object('Affinity', description, {
    nodeAffinity: optional(object('NodeAffinity', 'Which nodes the pods may (or should) run on.', {
      requiredDuringSchedulingIgnoredDuringExecution: optional(object('NodeSelector', 'Node selector terms, any one of which a node must meet.', {
        nodeSelectorTerms: required(array(nodeSelectorTerm, 'The terms (ORed).', { minItems: 1, maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
      })),
      preferredDuringSchedulingIgnoredDuringExecution: optional(array(weighted('PreferredSchedulingTerm', 'preference', nodeSelectorTerm, 'A preferred node selector term and its weight.'), 'Node selector terms the scheduler prefers, by weight.', { maxItems: 16, 'x-kubernetes-list-type': 'atomic' })),
    })),
    podAffinity: optional(podAffinity('PodAffinity', 'Pods the pods should run near.')),
    podAntiAffinity: optional(podAffinity('PodAntiAffinity', 'Pods the pods should run away from.')),
  }),
  // Unknown fields are pruned (or refused, under strict field validation): an affinity of
  // nothing but unknown fields would be pruned to {}, so {} is refused instead of ignored.
  minProperties: 1,
  tsType: 'V1Affinity',
});

const KUBERNETES_DOMAIN = '^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/';
/** A container's resource names: the standard ones, hugepages-<size>, or an extended resource outside Kubernetes' domains. */
const RESOURCE_NAME = `k in ['cpu', 'memory', 'ephemeral-storage'] || k.matches('^hugepages-[0-9]+[KMGTPE]i?$') || (${isQualified('k')} && k.contains('/') && !k.matches('${KUBERNETES_DOMAIN}') && !k.startsWith('requests.'))`;

/** Resource quantities by resource name (requests or limits). */
export const quantities = (description: string, what: string): SchemaNode => ({
  type: 'object', description, maxProperties: 16,
  // No sign but "+": a Pod's quantities are never negative, so a negative one could only have its Jobs refused for ever.
  additionalProperties: { description: '', 'x-kubernetes-int-or-string': true, minimum: 0, pattern: '^\\+?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$' },
  'x-kubernetes-validations': [{
    rule: `self.all(k, ${RESOURCE_NAME})`,
    message: `${what}: a resource is cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource named <domain>/<name> outside kubernetes.io`,
  }],
});

/**
 * A migration version's canonical text, as the engine compares versions (1, 1.0, 01 and 1_0 are
 * one version): "_" read as ".", leading zeros dropped (by 16, 8, 4, 2 and 1, which removes up to
 * the 31 a 32-character version can have; a zero part becomes empty), trailing empty parts dropped.
 * Plain string functions keep the rule's estimated cost inside the API server's budget.
 */
const canonicalVersion = (v: string): string =>
  `('.' + ${v}.replace('_', '.'))${[16, 8, 4, 2, 1].map((n) => `.replace('.${'0'.repeat(n)}', '.')`).join('')}.find('^.*[0-9]')`;

/** Inline migrations' versions are unique as numbers, not only as text. */
export const uniqueVersionsRule: CelRule = {
  rule: `self.all(a, self.exists_one(b, ${canonicalVersion('b.version')} == ${canonicalVersion('a.version')}))`,
  message: 'spec.schema.migrations: two migrations have the same version as numbers (1, 1.0, 01 and 1_0 are one version)',
};
