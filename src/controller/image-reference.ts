// Container image references and the operator's image allow-list (pure). A reference is parsed
// by the grammar container runtimes use (distribution/reference) and normalised as they normalise
// it, so `postgres`, `postgres:latest` and `docker.io/library/postgres:latest` are one image. An
// allow-list entry is one of three things:
//   - an exact image, with a tag (`ghcr.io/acme/dmo:1.4.0`) or a digest (`ghcr.io/acme/dmo@sha256:…`):
//     a tag entry allows that tag only without a digest (`…:1.4.0@sha256:X` runs X, whatever the
//     tag says); a digest entry allows that digest in that repository, with or without a tag;
//   - a repository (no tag, no digest: `ghcr.io/acme/dmo`): any tag or digest of exactly that
//     repository (not `ghcr.io/acme/dmo-x`, not `ghcr.io/acme/dmo/x`);
//   - a prefix ending in `/` (`registry.internal/dataops/`, `registry.internal/`): any image whose
//     repository lies under it.
// Anything that does not parse (spaces, upper case in the path, `..`) is refused, never guessed at.

export interface ImageReference {
  /** Normalised: `domain/path` (docker.io and library/ added where the runtime adds them). */
  repository: string;
  tag?: string;
  digest?: string;
}

export type AllowedImage =
  | { kind: 'exact'; entry: string; image: ImageReference }
  | { kind: 'repository'; entry: string; repository: string }
  | { kind: 'prefix'; entry: string; prefix: string };

const MAX_REFERENCE = 512;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
// Only the digests registries serve; anything else is refused rather than compared loosely.
const DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Whether the first component of a name is a registry (as the runtime decides it). */
const isDomain = (component: string): boolean => component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();

/**
 * A repository name normalised; `library` adds Docker Hub's `library/` to a one-component name
 * (an image's name does, a prefix's does not: `acme/` is Docker Hub's acme namespace).
 */
function normaliseName(name: string, library: boolean): string | undefined {
  const parts = name.split('/');
  let domain = 'docker.io';
  if (parts.length > 1 && isDomain(parts[0] ?? '')) {
    domain = parts.shift() ?? '';
    if (!DOMAIN.test(domain)) return undefined;
    if (domain === 'index.docker.io') domain = 'docker.io';
  }
  if (parts.length === 0 || !parts.every((part) => PATH_COMPONENT.test(part))) return undefined;
  if (domain === 'docker.io' && parts.length === 1 && library) parts.unshift('library');
  return `${domain}/${parts.join('/')}`;
}

/** The reference, normalised; undefined when it is not a valid image reference. */
export function parseImageReference(text: string): ImageReference | undefined {
  if (text.length === 0 || text.length > MAX_REFERENCE) return undefined;
  const at = text.indexOf('@');
  const digest = at === -1 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !DIGEST.test(digest)) return undefined;
  const named = at === -1 ? text : text.slice(0, at);
  const colon = named.lastIndexOf(':');
  const hasTag = colon > named.lastIndexOf('/');
  const tag = hasTag ? named.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag)) return undefined;
  const repository = normaliseName(hasTag ? named.slice(0, colon) : named, true);
  if (repository === undefined) return undefined;
  // No tag and no digest: the runtime pulls `latest`.
  if (digest !== undefined) return { repository, ...(tag !== undefined ? { tag } : {}), digest };
  return { repository, tag: tag ?? 'latest' };
}

/** One allow-list entry, parsed; undefined when it is none of the three forms. */
export function parseAllowedImage(entry: string): AllowedImage | undefined {
  if (entry.endsWith('/')) {
    const name = entry.slice(0, -1);
    // `registry.internal/`: a whole registry; otherwise a path (under Docker Hub when no registry is named).
    if (!name.includes('/') && isDomain(name)) return DOMAIN.test(name) ? { kind: 'prefix', entry, prefix: `${name === 'index.docker.io' ? 'docker.io' : name}/` } : undefined;
    const prefix = normaliseName(name, false);
    return prefix === undefined ? undefined : { kind: 'prefix', entry, prefix: `${prefix}/` };
  }
  const named = entry.split('@')[0] ?? '';
  const pinned = entry.includes('@') || named.lastIndexOf(':') > named.lastIndexOf('/');
  if (!pinned) {
    const repository = normaliseName(entry, true);
    return repository === undefined ? undefined : { kind: 'repository', entry, repository };
  }
  const image = parseImageReference(entry);
  return image === undefined ? undefined : { kind: 'exact', entry, image };
}

/** Whether the image is allowed by the entry (the rules at the top of this file). */
export function imageMatches(image: ImageReference, allowed: AllowedImage): boolean {
  switch (allowed.kind) {
    case 'prefix': return image.repository.startsWith(allowed.prefix);
    case 'repository': return image.repository === allowed.repository;
    case 'exact': {
      const want = allowed.image;
      if (image.repository !== want.repository) return false;
      // A digest decides what runs: compared whenever either side has one.
      if (want.digest !== undefined || image.digest !== undefined) return image.digest === want.digest;
      return image.tag === want.tag;
    }
  }
}
