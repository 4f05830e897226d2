// What a DataMigration may ask of its step pods (pure). The operator creates the pods with its
// own rights on behalf of whoever may create a DataMigration, so a spec may not borrow more than
// that right lends: the engine image comes from the operator's configuration (an allow-list,
// image-reference.ts), a ServiceAccount's token is mounted only for an account the configuration
// allows, and the labels and annotations a spec adds may not use keys that Kubernetes, the Job
// controller, container runtimes, well-known injecting webhooks or this operator give a meaning
// (src/api/reserved-keys.ts, which the CRD's admission rule is built from too).
// The decision refuses a spec that breaks a rule before any Job (context.ts mayStartJob), and
// job-builder.ts checks again, so a Job that breaks one is never built.
import { REASONS } from '../api/constants.ts';
import { reservedKey } from '../api/reserved-keys.ts';
import type { DataMigration, JobTemplateSpec } from '../api/types.ts';
import { imageMatches, parseAllowedImage, parseImageReference, type AllowedImage } from './image-reference.ts';

/** The operator's configuration of what step pods may be (ENGINE_* environment, chart `engine.*`). */
export interface PodPolicyConfig {
  /** The engine image: always allowed (it is the default). */
  image: string;
  /** A ServiceAccount for pods whose spec names none; its token is not mounted. */
  serviceAccountName?: string;
  /** More images a spec may name (ENGINE_ALLOWED_IMAGES): exact images, repositories, prefixes ending in `/`. */
  allowedImages?: readonly string[];
  /** ServiceAccounts a spec may name, whose token is then mounted (ENGINE_ALLOWED_SERVICE_ACCOUNTS): `name` or `namespace/name`. */
  allowedServiceAccounts?: readonly string[];
}

/** InvalidSpec: a manifest too large for the step pods' environment (job-builder.ts manifestProblem). */
export type PodPolicyReason = typeof REASONS.ImageNotAllowed | typeof REASONS.ServiceAccountNotAllowed | typeof REASONS.ReservedKey | typeof REASONS.InvalidSpec;

export interface PodPolicyRefusal {
  /** The first rule broken. */
  reason: PodPolicyReason;
  /** Every rule broken, for people. */
  message: string;
}

/** The pod's account: the one named (or the operator's default), and whether its token is mounted. */
export interface PodIdentity {
  serviceAccountName?: string;
  automountToken: boolean;
}

/** The reserved-key check, one for admission and the operator (src/api/reserved-keys.ts). */
export { reservedKey };

/** A ServiceAccount name (a DNS subdomain), alone or after a namespace and a slash. */
const ACCOUNT_ENTRY = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\/)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
/** At most this many allow-list entries are listed in a refusal; the rest are counted. */
const LISTED = 8;

function allowedImages(config: PodPolicyConfig): AllowedImage[] {
  return (config.allowedImages ?? []).flatMap((entry) => parseAllowedImage(entry) ?? []);
}

function listed(entries: readonly string[]): string {
  const shown = entries.slice(0, LISTED).map((entry) => `"${entry}"`).join(', ');
  return entries.length > LISTED ? `${shown} and ${String(entries.length - LISTED)} more` : shown;
}

/** Why the image may not run, or undefined when it may. */
export function imageProblem(image: string, config: PodPolicyConfig): string | undefined {
  if (image === config.image) return undefined;
  const allowed = config.allowedImages ?? [];
  const what = `the operator's engine image "${config.image}"${allowed.length > 0 ? ` and the images its configuration allows: ${listed(allowed)}` : ' (its configuration allows no other)'}`;
  const reference = parseImageReference(image);
  if (reference === undefined) return `spec.jobTemplate.image ${JSON.stringify(image)} is not a valid image reference; allowed: ${what}`;
  const engine = parseImageReference(config.image);
  if (engine !== undefined && imageMatches(reference, { kind: 'exact', entry: config.image, image: engine })) return undefined;
  if (allowedImages(config).some((entry) => imageMatches(reference, entry))) return undefined;
  return `spec.jobTemplate.image "${image}" is not allowed; allowed: ${what}. Remove spec.jobTemplate.image to run the engine image, or ask the operator's administrator to allow it`;
}

/**
 * An entry `name` allows that account in any namespace, `namespace/name` in that one only. A name
 * with a slash is no account (admission refuses it too): never matched, so `shop/cloud-sa` named
 * in another namespace does not borrow the entry `shop/cloud-sa`.
 */
function accountAllowed(name: string, namespace: string, config: PodPolicyConfig): boolean {
  if (name.includes('/')) return false;
  return (config.allowedServiceAccounts ?? []).some((entry) => (entry.includes('/') ? entry === `${namespace}/${name}` : entry === name));
}

/** The pod's account and whether its token is mounted; a string says why the named account is refused. */
export function podIdentity(template: JobTemplateSpec | undefined, namespace: string, config: PodPolicyConfig): PodIdentity | string {
  const named = template?.serviceAccountName;
  const fallback = config.serviceAccountName;
  if (named === undefined) return { ...(fallback !== undefined ? { serviceAccountName: fallback } : {}), automountToken: false };
  if (accountAllowed(named, namespace, config)) return { serviceAccountName: named, automountToken: true };
  // The operator's own default, named explicitly: what the pod gets anyway, still without a token.
  if (named === fallback) return { serviceAccountName: named, automountToken: false };
  const allowed = config.allowedServiceAccounts ?? [];
  return `spec.jobTemplate.serviceAccountName "${named}" is not allowed: the operator's configuration allows ${allowed.length > 0 ? listed(allowed) : 'no ServiceAccount'}`
    + `${fallback !== undefined ? ` besides its default "${fallback}" (without a token)` : ''}. Remove it to run as ${fallback !== undefined ? `"${fallback}"` : 'the namespace\'s default account'} with no token, or ask the operator's administrator to allow it`;
}

/** Why the spec's labels or annotations are refused (every reserved key, named), or undefined. */
export function reservedKeysProblem(template: JobTemplateSpec | undefined): string | undefined {
  const found = (['labels', 'annotations'] as const).flatMap((field) => Object.keys(template?.[field] ?? {})
    .flatMap((key) => { const why = reservedKey(key, field); return why === undefined ? [] : [`spec.jobTemplate.${field} key "${key}" (${why})`]; }));
  if (found.length === 0) return undefined;
  const shown = found.slice(0, LISTED).join('; ');
  return `reserved key${found.length > 1 ? 's' : ''}: ${shown}${found.length > LISTED ? `; and ${String(found.length - LISTED)} more` : ''}. Remove ${found.length > 1 ? 'them' : 'it'}`;
}

/** What servedByProblem() needs of a Service. */
export interface ServiceSelecting {
  name: string;
  selector: Readonly<Record<string, string>>;
  publishNotReadyAddresses: boolean;
}

/**
 * Why the step pods' labels would make them endpoints of a Service, or undefined. Step pods carry
 * a readiness gate nobody sets (job-builder.ts), so a Service that only routes to Ready pods never
 * reaches them, whatever labels they carry; one that publishes not-ready addresses does, so labels
 * its selector matches are refused. `podLabels`: the spec's labels and the operator's own.
 */
export function servedByProblem(podLabels: Readonly<Record<string, string>>, services: readonly ServiceSelecting[]): string | undefined {
  const serving = services.filter((service) => service.publishNotReadyAddresses && Object.keys(service.selector).length > 0
    && Object.entries(service.selector).every(([key, value]) => podLabels[key] === value));
  if (serving.length === 0) return undefined;
  const names = serving.slice(0, LISTED).map((service) => `"${service.name}"`).join(', ');
  return `spec.jobTemplate.labels would make the step pods endpoints of Service${serving.length > 1 ? 's' : ''} ${names}${serving.length > LISTED ? ` and ${String(serving.length - LISTED)} more` : ''}, `
    + 'which publish not-ready addresses (spec.publishNotReadyAddresses), so the pods\' readiness gate cannot keep them out. Remove or change the labels its selector matches';
}

/** Every rule the migration's pods would break, or undefined when they break none. */
export function checkPodPolicy(migration: DataMigration, config: PodPolicyConfig): PodPolicyRefusal | undefined {
  const template = migration.spec.jobTemplate;
  const problems: { reason: PodPolicyReason; message: string }[] = [];
  const image = template?.image === undefined ? undefined : imageProblem(template.image, config);
  if (image !== undefined) problems.push({ reason: REASONS.ImageNotAllowed, message: image });
  const identity = podIdentity(template, migration.metadata?.namespace ?? 'default', config);
  if (typeof identity === 'string') problems.push({ reason: REASONS.ServiceAccountNotAllowed, message: identity });
  const keys = reservedKeysProblem(template);
  if (keys !== undefined) problems.push({ reason: REASONS.ReservedKey, message: keys });
  const first = problems[0];
  return first === undefined ? undefined : { reason: first.reason, message: problems.map((p) => p.message).join('; ') };
}

/** A Job the policy refuses was about to be built: a bug (the decision checks first). */
export class PodPolicyError extends Error {
  readonly refusal: PodPolicyRefusal;
  constructor(refusal: PodPolicyRefusal) {
    super(`refused by the operator's pod policy (${refusal.reason}): ${refusal.message}`);
    this.refusal = refusal;
  }
}

/** The operator's configuration from its environment; errors name each entry that is not valid. */
export function podPolicyFromEnv(env: Readonly<Record<string, string | undefined>>): { allowedImages: string[]; allowedServiceAccounts: string[]; errors: string[] } {
  const list = (text: string | undefined): string[] => (text ?? '').split(/[,\s]+/).filter((entry) => entry !== '');
  const allowedImages = list(env.ENGINE_ALLOWED_IMAGES);
  const allowedServiceAccounts = list(env.ENGINE_ALLOWED_SERVICE_ACCOUNTS);
  const errors = [
    ...allowedImages.filter((entry) => parseAllowedImage(entry) === undefined)
      .map((entry) => `ENGINE_ALLOWED_IMAGES: "${entry}" is not an image (registry/repository:tag or @sha256:…), a repository, or a prefix ending in "/"`),
    ...allowedServiceAccounts.filter((entry) => !ACCOUNT_ENTRY.test(entry))
      .map((entry) => `ENGINE_ALLOWED_SERVICE_ACCOUNTS: "${entry}" is not a ServiceAccount name or namespace/name`),
  ];
  return { allowedImages, allowedServiceAccounts, errors };
}
