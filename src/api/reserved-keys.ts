// The label and annotation keys a DataMigration may not put on its step pods, written once: the
// CRD refuses them at admission (the CEL rule below, in spec.jobTemplate.labels/annotations), and
// the operator's pod policy refuses them again before it builds a Job (src/controller/pod-policy.ts).
// The operator creates the pods with its own rights, so a key that Kubernetes, the Job controller,
// a container runtime, a webhook that injects containers or credentials, or this operator gives a
// meaning would lend the author of a DataMigration more than the right to create one.
import { GROUP } from './constants.ts';
import type { CelRule } from './schema-builder.ts';

/** A key's prefix (before "/") is reserved when it is one of these domains or a subdomain of one. */
export const RESERVED_DOMAINS: readonly { domain: string; why: string }[] = [
  { domain: GROUP, why: 'this operator\'s own' },
  { domain: 'kubernetes.io', why: 'reserved for Kubernetes (the Job controller, app.kubernetes.io labels the operator sets, AppArmor and seccomp annotations that loosen a pod)' },
  { domain: 'k8s.io', why: 'reserved for Kubernetes' },
  { domain: 'istio.io', why: 'read by Istio\'s sidecar injector, which can add images and volumes to the pod' },
  { domain: 'linkerd.io', why: 'read by Linkerd\'s proxy injector, which can add images to the pod' },
  { domain: 'vault.hashicorp.com', why: 'read by Vault\'s agent injector, which can give the pod Vault credentials' },
  // Cloud identity and networks handed out by pod metadata: credentials and reach the author of a
  // DataMigration does not have, lent by the operator creating the pod.
  { domain: 'consul.hashicorp.com', why: 'read by Consul\'s connect injector, which adds its sidecar and the service identity it names' },
  { domain: 'amazonaws.com', why: 'read by AWS integrations: kube2iam and kiam give the pod the AWS credentials of the role iam.amazonaws.com/role names' },
  { domain: 'k8s.aws', why: 'read by AWS controllers (App Mesh\'s injector adds its sidecar)' },
  { domain: 'azure.workload.identity', why: 'read by Azure Workload Identity\'s webhook, which projects the account\'s token and Azure credentials into the pod' },
  { domain: 'cni.cncf.io', why: 'read by Multus, which attaches the pod to the networks it names' },
  { domain: 'multus-cni.io', why: 'read by Multus, which replaces the pod\'s network with the one it names' },
  { domain: 'projectcalico.org', why: 'read by Calico\'s CNI plugin, which gives the pod the IP addresses or pools it names' },
  { domain: 'dapr.io', why: 'read by Dapr\'s sidecar injector, which adds its sidecar and the app identity it names' },
  { domain: 'opentelemetry.io', why: 'read by the OpenTelemetry operator, which adds sidecar and init containers to the pod' },
];
/** Unprefixed keys the Job controller sets (its labels before batch.kubernetes.io). */
export const RESERVED_NAMES: readonly string[] = ['controller-uid', 'job-name'];
/** Annotations container runtimes read (CRI-O, containerd, Kata, crun): some loosen the sandbox. */
export const RUNTIME_PREFIXES: readonly string[] = ['io.kubernetes.', 'io.containerd.', 'io.katacontainers.', 'run.oci.'];
/** A Kubernetes-domain annotation that loosens nothing: it only keeps the cluster autoscaler from evicting a long step. */
export const ALLOWED_ANNOTATIONS: readonly string[] = ['cluster-autoscaler.kubernetes.io/safe-to-evict'];

export type PodMetadataField = 'labels' | 'annotations';

/** Why a label or annotation key is reserved, or undefined when a spec may use it. */
export function reservedKey(key: string, field: PodMetadataField): string | undefined {
  if (field === 'annotations' && ALLOWED_ANNOTATIONS.includes(key)) return undefined;
  if (RESERVED_NAMES.includes(key)) return 'set by the Job controller';
  if (RUNTIME_PREFIXES.some((prefix) => key.startsWith(prefix))) return 'read by container runtimes, which it can tell to loosen the pod\'s sandbox';
  const slash = key.indexOf('/');
  if (slash === -1) return undefined;
  const prefix = key.slice(0, slash);
  return RESERVED_DOMAINS.find(({ domain }) => prefix === domain || prefix.endsWith(`.${domain}`))?.why;
}

/** Dots as [.], so the pattern reads the same in TypeScript, YAML, RE2 (CEL's matches) and JavaScript. */
const literal = (text: string): string => text.replaceAll('.', '[.]');

/** reservedKey() as a regular expression: a key matching it is reserved (before the allowed annotations). */
export const RESERVED_KEY_PATTERN = `^(${RESERVED_NAMES.map(literal).join('|')})$`
  + `|^(${RUNTIME_PREFIXES.map(literal).join('|')})`
  + `|^([^/]*[.])?(${RESERVED_DOMAINS.map(({ domain }) => literal(domain)).join('|')})/`;

/** What the refusal says: the reserved keys, in the words of the CRD's description. */
export const RESERVED_KEYS_TEXT = `${RESERVED_DOMAINS.map(({ domain }) => `${domain}/*`).join(', ')} and their subdomains (app.kubernetes.io/*, batch.kubernetes.io/*, AppArmor and seccomp annotations among them), keys starting with ${RUNTIME_PREFIXES.join(', ')} (container runtimes), controller-uid and job-name`;

/** The CEL rule on spec.jobTemplate.labels or .annotations (a map): no key is reserved. */
export function reservedKeysRule(field: PodMetadataField): CelRule {
  const allowed = field === 'annotations' ? ALLOWED_ANNOTATIONS.map((key) => `k == '${key}' || `).join('') : '';
  return {
    rule: `self.all(k, ${allowed}!k.matches('${RESERVED_KEY_PATTERN}'))`,
    message: `spec.jobTemplate.${field} may not use reserved keys: ${RESERVED_KEYS_TEXT}${field === 'annotations' ? ` (${ALLOWED_ANNOTATIONS.join(', ')} is allowed)` : ''}`,
  };
}
