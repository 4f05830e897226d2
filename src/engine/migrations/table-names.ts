// One name per table in the bookkeeping: `items`, `public.items` and `"public"."items"` are the
// same PostgreSQL table (and `items`, `db.items` the same MySQL one), so records are compared by
// (schema, name), never by the text a manifest happened to use.
import { tableAndSchema } from '../db/dialect.ts';
import type { SqlSession } from '../db/session.ts';

/** A table name resolved to `schema.name` (PostgreSQL: the schema it resolves to, else the current one; MySQL: the database). */
export type CanonicalName = string;

/** Resolves names to their canonical form, caching the session's current schema. */
export class TableNames {
  readonly #session: SqlSession;
  #current: string | undefined;
  readonly #cache = new Map<string, CanonicalName>();

  constructor(session: SqlSession) {
    this.#session = session;
  }

  async canonical(name: string): Promise<CanonicalName> {
    const known = this.#cache.get(name);
    if (known !== undefined) return known;
    const { table, schema } = tableAndSchema(name);
    const resolved = `${schema ?? await this.#schemaOf(name)}.${table}`;
    this.#cache.set(name, resolved);
    return resolved;
  }

  async canonicalAll(names: Iterable<string>): Promise<Set<CanonicalName>> {
    const out = new Set<CanonicalName>();
    for (const name of names) out.add(await this.canonical(name));
    return out;
  }

  async #schemaOf(name: string): Promise<string> {
    const d = this.#session.dialect;
    if (d.tableSchemaSql !== undefined) {
      const [row] = await this.#session.query(d.tableSchemaSql, [d.quoteQualified(name)]);
      return row?.s?.toString() ?? '';
    }
    if (this.#current === undefined) {
      const [row] = await this.#session.query(d.currentDatabaseSql);
      this.#current = row?.db?.toString() ?? '';
    }
    return this.#current;
  }
}
