// Column transforms run inside the source's SELECT, so values arrive transformed and the copy's
// data path stays a stream (for PostgreSQL to PostgreSQL, an untouched byte stream).

export const TRANSFORMS = ['trim', 'lowercase', 'uppercase', 'nullIfEmpty', 'emptyIfNull'] as const;
export type Transform = (typeof TRANSFORMS)[number];

const SQL: Record<Transform, (expression: string) => string> = {
  trim: (e) => `TRIM(${e})`,
  lowercase: (e) => `LOWER(${e})`,
  uppercase: (e) => `UPPER(${e})`,
  nullIfEmpty: (e) => `NULLIF(${e}, '')`,
  emptyIfNull: (e) => `COALESCE(${e}, '')`,
};

/** Wraps an SQL expression in the transforms, first listed applied first. */
export function applyTransforms(expression: string, transforms: readonly Transform[]): string {
  return transforms.reduce((sql, transform) => SQL[transform](sql), expression);
}
