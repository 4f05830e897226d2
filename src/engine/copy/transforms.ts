// Column transforms run inside the source's SELECT, so values arrive transformed and the copy's
// data path stays a stream (for PostgreSQL to PostgreSQL, an untouched byte stream).

import { TRANSFORMS, type TransformName } from '../../api/constants.ts';
import { adapterFor } from '../db/adapter.ts';
import type { Engine } from '../db/dialect.ts';

export { TRANSFORMS };
export type Transform = TransformName;

const SQL: Record<Transform, (expression: string, engine: Engine) => string> = {
  trim: (e) => `TRIM(${e})`,
  ltrim: (e) => `LTRIM(${e})`,
  rtrim: (e) => `RTRIM(${e})`,
  lowercase: (e) => `LOWER(${e})`,
  uppercase: (e) => `UPPER(${e})`,
  nullIfEmpty: (e) => `NULLIF(${e}, '')`,
  emptyIfNull: (e) => `COALESCE(${e}, '')`,
  // Lower-case hex of the UTF-8 bytes on both engines, so a pseudonymised value matches across them.
  sha256: (e, engine) => adapterFor(engine).sha256HexSql(e),
};

/** Wraps an SQL expression (of `engine`, the source) in the transforms, first listed applied first. */
export function applyTransforms(expression: string, transforms: readonly Transform[], engine: Engine): string {
  return transforms.reduce((sql, transform) => SQL[transform](sql, engine), expression);
}
