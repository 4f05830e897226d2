// The one error every check of manifest SQL throws: which field, what it may be, what it was.
// It ends up in a plan refusal (exit 3, reason PlanRefused), in status and in Events, so the
// message is bounded and shows only a short excerpt of the manifest's own text.

/** Characters that print as nothing or reorder text: shown escaped in messages. */
const INVISIBLE = /[\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/gu;

/** Longest excerpt of a fragment a message quotes. */
const EXCERPT_CHARS = 48;

/** A manifest field whose SQL is not what the field may hold; nothing was run. */
export class FragmentRefused extends Error {
  /** The field path, such as spec.tables[orders].where. */
  readonly field: string;
  /** What the field may hold. */
  readonly expected: string;
  /** What was found instead (bounded). */
  readonly found: string;
  constructor(field: string, expected: string, found: string) {
    super(`${field}: expected ${expected}; found ${found}`);
    this.name = 'FragmentRefused';
    this.field = field;
    this.expected = expected;
    this.found = found;
  }
}

/**
 * A short, printable excerpt of `text` around `index` (or its start): at most EXCERPT_CHARS
 * characters, quoted as JSON so control characters and quotes cannot shape the message.
 */
export function excerpt(text: string, index = 0): string {
  const start = Math.max(0, Math.min(index, text.length) - EXCERPT_CHARS / 4);
  const end = Math.min(text.length, start + EXCERPT_CHARS);
  // JSON.stringify escapes C0 controls and lone surrogates; the rest of the invisible ones here.
  const shown = JSON.stringify(text.slice(start, end)).slice(1, -1).replace(INVISIBLE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
  return `${start > 0 ? '…' : ''}${shown}${end < text.length ? '…' : ''}`;
}

/** `found` for a problem at `index` of `text`: what, where, and the text around it. */
export function foundAt(what: string, text: string, index: number): string {
  return `${what} at character ${index + 1}: "${excerpt(text, index)}"`;
}

/**
 * A list element of a field path, by its name where the manifest has one (tables, columns,
 * rules), bounded and quoted when it is not a plain name, so that the path stays readable.
 */
export function pathKey(name: string): string {
  if (/^[A-Za-z0-9_.$-]{1,64}$/.test(name)) return name;
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}

/** "a DELETE statement", "an UPDATE statement". */
export function withArticle(words: string): string {
  return `${/^[AEIOU]/i.test(words) ? 'an' : 'a'} ${words}`;
}
