// The label-selector algebra of the cutover: a Service's selector as text, one side swapped for
// the other (other labels kept), and which side a selector selects. Pure.

export function selectorText(selector: Record<string, string>): string {
  return Object.keys(selector).sort().map((key) => `${key}=${selector[key] ?? ''}`).join(',');
}

/** `current` with the labels of `from` replaced by those of `to` (other labels are kept). */
export function replaceSelector(current: Record<string, string>, from: Record<string, string>, to: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(current)) if (!(key in from)) out[key] = value;
  for (const [key, value] of Object.entries(to)) out[key] = value;
  return out;
}

/** `selector` selects the `side`: every label of it, and no label of `other` that `side` does not set. */
export function selectsSide(selector: Record<string, string>, side: Record<string, string>, other: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(side)) if (selector[key] !== value) return false;
  for (const key of Object.keys(other)) if (!(key in side) && key in selector) return false;
  return true;
}
