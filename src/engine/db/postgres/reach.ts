// PostgreSQL: what the target's role may write of the source's database when both are in one
// cluster (see pipeline/source-reach.ts). A session sees only its own database's tables, so the
// source session's catalog is asked about the target's role, by name; roles are cluster-wide.
//
// The role counts with every role it may become: those it is a member of (SET ROLE works without
// INHERIT too) and those it administers (it may grant them to itself). Catalog names are
// pg_catalog-qualified, operators too (see the adapter's identity()).
import type { WriteAccess } from '../adapter.ts';
import { text, truthy } from '../catalog-rows.ts';
import type { SqlSession } from '../session.ts';

export interface ReachableRole {
  name: string;
  superuser: boolean;
  createRole: boolean;
}

/** What the source's catalog says about the target's role; `found` false: the role is not there. */
export interface PostgresReachFacts {
  role: string;
  found: boolean;
  /** server_version_num of the cluster. */
  version: number;
  /** The role and every role it may become. */
  roles: ReachableRole[];
  /** One of them may CONNECT to the source database; may CREATE schemas in it. */
  connect: boolean;
  createSchemas: boolean;
  /** Schemas of the source database where one of them may CREATE objects. */
  schemas: string[];
  /** Relations (tables, views, sequences) of the source database one of them may write, first few, and how many. */
  relations: string[];
  relationCount: number;
}

/** Roles whose members run programs or write files on the server: as good as a superuser. */
const SERVER_ROLES: Record<string, string> = {
  pg_execute_server_program: 'may run programs on the database server',
  pg_write_server_files: 'may write files on the database server',
};

const through = (role: ReachableRole, facts: PostgresReachFacts): string => (role.name === facts.role ? '' : ` (through role ${role.name})`);

/** Each reason the role may write the source database. Pure; empty when it cannot. */
export function postgresWriteRoutes(facts: PostgresReachFacts): string[] {
  if (!facts.found) return [`role ${facts.role} is not in the source's catalog, so what it may do there cannot be told`];
  // A superuser may do all that follows (and is a member of every role): that alone is said.
  const superusers = facts.roles.filter((role) => role.superuser);
  if (superusers.length > 0) return superusers.map((role) => `is a superuser${through(role, facts)}, so it may write any database of the cluster (dblink, postgres_fdw, COPY … TO PROGRAM)`);
  const routes: string[] = [];
  for (const role of facts.roles) {
    const server = SERVER_ROLES[role.name];
    if (server !== undefined) routes.push(`${server} (member of ${role.name})`);
    // PostgreSQL 16 made CREATEROLE grant only roles it administers.
    if (role.createRole && facts.version < 160000) routes.push(`has CREATEROLE${through(role, facts)}, which before PostgreSQL 16 may grant itself any role but a superuser`);
  }
  if (!facts.connect) return routes;
  if (facts.createSchemas) routes.push('may CONNECT to the source database and CREATE schemas in it');
  for (const schema of facts.schemas) routes.push(`may CONNECT to the source database and CREATE objects in its schema ${schema}`);
  if (facts.relationCount > 0) {
    const more = facts.relationCount > facts.relations.length ? ` and ${String(facts.relationCount - facts.relations.length)} more` : '';
    routes.push(`may CONNECT to the source database and write ${facts.relations.join(', ')}${more} (INSERT, UPDATE, DELETE or TRUNCATE; sequences: nextval or setval)`);
  }
  return routes;
}

/** How many writable relations a message names. */
const NAMED_RELATIONS = 5;

const ROLES_SQL = `SELECT r.oid::pg_catalog.text AS oid, r.rolname AS name, r.rolsuper::pg_catalog.text AS super, r.rolcreaterole::pg_catalog.text AS createrole
  FROM pg_catalog.pg_roles r
  WHERE pg_catalog.pg_has_role(CAST($1 AS pg_catalog.name), r.oid, 'MEMBER') OR pg_catalog.pg_has_role(CAST($1 AS pg_catalog.name), r.oid, 'MEMBER WITH ADMIN OPTION')
  ORDER BY r.rolname`;

const DATABASE_SQL = `SELECT
    pg_catalog.bool_or(pg_catalog.has_database_privilege(r.oid, pg_catalog.current_database(), 'CONNECT'))::pg_catalog.text AS connect,
    pg_catalog.bool_or(pg_catalog.has_database_privilege(r.oid, pg_catalog.current_database(), 'CREATE'))::pg_catalog.text AS create_schemas,
    pg_catalog.current_setting('server_version_num') AS version
  FROM pg_catalog.unnest(CAST($1 AS pg_catalog.oid[])) AS r(oid)`;

const SCHEMAS_SQL = `SELECT n.nspname AS name FROM pg_catalog.pg_namespace n
  WHERE pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
    AND EXISTS (SELECT 1 FROM pg_catalog.unnest(CAST($1 AS pg_catalog.oid[])) AS r(oid) WHERE pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE'))
  ORDER BY n.nspname`;

// Column grants count (UPDATE (note) ON orders writes orders); views too (an updatable view writes its table).
const RELATIONS_SQL = `SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) AS name,
    pg_catalog.count(*) OVER ()::pg_catalog.text AS total
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  WHERE c.relkind OPERATOR(pg_catalog.=) ANY (CAST('{r,p,v,m,f,S}' AS pg_catalog."char"[]))
    AND pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
    AND EXISTS (SELECT 1 FROM pg_catalog.unnest(CAST($1 AS pg_catalog.oid[])) AS r(oid) WHERE CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S'
      THEN pg_catalog.has_sequence_privilege(r.oid, c.oid, 'USAGE, UPDATE')
      ELSE pg_catalog.has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') OR pg_catalog.has_any_column_privilege(r.oid, c.oid, 'INSERT, UPDATE') END)
  ORDER BY n.nspname, c.relname
  LIMIT ${String(NAMED_RELATIONS)}`;

/** Reads the facts about the target's role (its session user) from the source's catalog. */
export async function postgresReachFacts(source: SqlSession, target: SqlSession): Promise<PostgresReachFacts> {
  // The login role: it may become every role checked below, whatever role the session starts as.
  const [who] = await target.query('SELECT session_user AS who');
  const role = text(who?.who) ?? '';
  const [exists] = await source.query('SELECT 1 AS found FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1', [role]);
  const empty = { role, version: 0, roles: [], connect: false, createSchemas: false, schemas: [], relations: [], relationCount: 0 };
  if (!exists) return { ...empty, found: false };
  const roleRows = await source.query(ROLES_SQL, [role]);
  // A superuser is a member of every role and may do everything: nothing more to ask.
  if (roleRows.some((r) => truthy(r.super))) {
    return { ...empty, found: true, roles: roleRows.filter((r) => truthy(r.super)).map((r) => ({ name: text(r.name) ?? '', superuser: true, createRole: truthy(r.createrole) })) };
  }
  const oids = `{${roleRows.map((r) => text(r.oid) ?? '0').join(',')}}`;
  const [database] = await source.query(DATABASE_SQL, [oids]);
  const schemas = await source.query(SCHEMAS_SQL, [oids]);
  const relations = await source.query(RELATIONS_SQL, [oids]);
  return {
    ...empty,
    found: true,
    version: Number(text(database?.version) ?? '0'),
    roles: roleRows.map((r) => ({ name: text(r.name) ?? '', superuser: truthy(r.super), createRole: truthy(r.createrole) })),
    connect: truthy(database?.connect),
    createSchemas: truthy(database?.create_schemas),
    schemas: schemas.map((r) => text(r.name) ?? ''),
    relations: relations.map((r) => text(r.name) ?? ''),
    relationCount: Number(text(relations[0]?.total) ?? '0'),
  };
}

export async function postgresSourceWriteAccess(source: SqlSession, target: SqlSession): Promise<WriteAccess> {
  const facts = await postgresReachFacts(source, target);
  return { account: facts.role, routes: postgresWriteRoutes(facts) };
}
