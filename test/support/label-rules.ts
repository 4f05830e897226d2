// Kubernetes' rules for label keys and values (k8s.io/apimachinery/pkg/util/validation:
// IsQualifiedName, IsValidLabelValue), restated from their definitions, and the hard cases both
// the unit tests (dmctl lint's CEL) and the e2e tests (the API server's RE2) check the CRD against.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function isQualifiedName(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts.at(-1) ?? '';
  const prefix = parts.length === 2 ? parts[0] ?? '' : undefined;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME_PART.test(name);
}

export const isLabelValue = (value: string): boolean => value.length <= 63 && (value === '' || QUALIFIED_NAME_PART.test(value));

export const LABEL_KEY_CASES: readonly string[] = [
  'app', 'track', 'a', 'A', '9', 'a.b', 'a_b', 'a-b', 'example.com/track', 'EXAMPLE.com/track', 'example.com/Track', 'x/y/z', '/x', 'x/', '',
  'bad key!', '-a', 'a-', '_a', '.a', 'a.', 'a..b', 'ü', 'a:b', 'a'.repeat(63), 'a'.repeat(64), `${'p'.repeat(253)}/n`, `${'p'.repeat(254)}/n`,
  `${'p.'.repeat(126)}p/${'n'.repeat(63)}`, `example.com/${'n'.repeat(64)}`, 'kubernetes.io/os', '-example.com/x', 'example-.com/x',
];

export const LABEL_VALUE_CASES: readonly string[] = ['', 'blue', 'Blue_1.0-a', '-blue', 'blue-', 'a b', 'ü', 'g'.repeat(63), 'g'.repeat(64), 'a/b', '1', '.'];
