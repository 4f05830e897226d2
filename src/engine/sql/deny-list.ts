// Functions a manifest fragment may not call, per engine: those with side effects outside the
// query (writes, sequences, settings, locks, signals, replication, files, programs, other
// connections), those that run SQL given as text (which no parse of the fragment can see into),
// and those that only stall the server. A read-only transaction stops many of them too; this
// list also covers the ones it does not (locks, signals, reads of server files, dblink's own
// connections, SQL text executed later).
import type { Engine } from '../db/dialect.ts';

interface DenyList {
  names: ReadonlySet<string>;
  prefixes: readonly string[];
}

const POSTGRES: DenyList = {
  names: new Set([
    // settings, sequences, transactions, notifications
    'set_config', 'nextval', 'setval', 'currval', 'lastval', 'pg_notify', 'pg_export_snapshot',
    // stalls
    'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
    // server files and programs
    'pg_stat_file', 'pg_logdir_ls', 'loread', 'lowrite',
    // other backends and the server itself
    'pg_terminate_backend', 'pg_cancel_backend', 'pg_signal_backend', 'pg_reload_conf', 'pg_rotate_logfile',
    'pg_promote', 'pg_create_restore_point', 'pg_start_backup', 'pg_stop_backup', 'pg_backup_start', 'pg_backup_stop',
    'pg_import_system_collations', 'pg_log_backend_memory_contexts', 'pg_switch_wal', 'pg_switch_xlog',
    'pg_logical_emit_message', 'pg_drop_replication_slot', 'pg_truncate_visibility_map',
    // index maintenance that writes
    'brin_summarize_new_values', 'brin_summarize_range', 'brin_desummarize_range', 'gin_clean_pending_list',
    // SQL given as text, run by the function
    'ts_stat', 'ts_rewrite', 'crosstab', 'crosstab2', 'crosstab3', 'crosstab4', 'connectby', 'xpath_table',
    // the functions behind the refused catalogs (POSTGRES_CREDENTIAL_TABLES): other sessions'
    // statement text, and the server's configuration files (a primary_conninfo holds a password);
    // refusing the views alone left these a way around them (issue 13, found by attack)
    'pg_stat_get_activity', 'pg_show_all_file_settings', 'pg_hba_file_rules', 'pg_ident_file_mappings',
  ]),
  prefixes: [
    'pg_advisory', 'pg_try_advisory', 'lo_', 'dblink', 'txid_', 'pg_current_xact_id', 'pg_replication_',
    'pg_create_', 'pg_copy_', 'pg_logical_slot_', 'pg_ls_', 'pg_read_', 'pg_file_', 'pg_stat_reset',
    'pg_stat_statements_reset', 'pg_wal_replay_', 'pg_drop_',
    // the *_to_xml family: SQL given as text, or whole tables, schemas and databases (a catalog of
    // credentials among them) named by a string no parse sees as a table
    'query_to_xml', 'cursor_to_xml', 'table_to_xml', 'schema_to_xml', 'database_to_xml',
    // another backend's statement text (and pg_stat_get_backend_activity_start alike)
    'pg_stat_get_backend_activity',
  ],
};

const MYSQL: DenyList = {
  names: new Set([
    'sleep', 'benchmark', 'load_file',
    // user-level locks (even the inspecting ones: nothing a copy needs)
    'get_lock', 'release_lock', 'release_all_locks', 'is_free_lock', 'is_used_lock',
    'service_get_read_locks', 'service_get_write_locks', 'service_release_locks',
    // sequences (MariaDB) and the session's insert id (LAST_INSERT_ID(expr) sets it)
    'nextval', 'setval', 'lastval', 'last_insert_id',
    // replication waits
    'master_pos_wait', 'source_pos_wait', 'master_gtid_wait', 'wait_for_executed_gtid_set', 'wait_until_sql_thread_after_gtids',
    // well-known command-running UDFs (lib_mysqludf_sys and alike)
    'sys_exec', 'sys_eval', 'sys_get', 'sys_set', 'sys_bineval', 'lib_mysqludf_sys_info',
    'set_firewall_mode',
  ]),
  prefixes: ['version_tokens_', 'keyring_key_', 'audit_log_', 'group_replication_', 'asynchronous_connection_failover_', 'mysql_firewall_'],
};

/**
 * Catalogs that hold credentials (password hashes, foreign servers' and subscriptions' connection
 * strings, server settings files, other sessions' statement text): a fragment or a copied table
 * reading them would copy secrets into the target. PostgreSQL's are refused by name in any schema
 * (pg_catalog comes first in every search path, so the bare names mean these).
 */
const POSTGRES_CREDENTIAL_TABLES: ReadonlySet<string> = new Set([
  'pg_authid', 'pg_shadow', 'pg_user_mapping', 'pg_user_mappings', 'pg_subscription', 'pg_file_settings',
  'pg_hba_file_rules', 'pg_ident_file_mappings', 'pg_stat_activity',
]);
/** MySQL schemas refused whole (accounts, grants, server state, other sessions' statements). */
const MYSQL_CREDENTIAL_SCHEMAS: ReadonlySet<string> = new Set(['mysql', 'performance_schema', 'sys']);
/** Single MySQL tables outside those schemas (other sessions' statement text). */
// innodb_trx.trx_query is other sessions' running statements too (issue 13, found by attack).
const MYSQL_CREDENTIAL_TABLES: ReadonlySet<string> = new Set(['information_schema.processlist', 'information_schema.innodb_trx']);

/**
 * The form a name is compared in: compatibility-normalised (fullwidth and other look-alike
 * letters become plain ones, as some collations would treat them) and lower case.
 */
export function comparableName(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

/** Whether a fragment may not call the function `name` (unqualified, as written) on `engine`. */
export function isDeniedFunction(engine: Engine, name: string): boolean {
  const list = engine === 'postgres' ? POSTGRES : MYSQL;
  const comparable = comparableName(name);
  return list.names.has(comparable) || list.prefixes.some((prefix) => comparable.startsWith(prefix));
}

/** Whether a fragment may not read the table `name` (of `schema`, when the fragment names one) on `engine`. */
export function isCredentialTable(engine: Engine, schema: string | undefined, name: string): boolean {
  if (engine === 'postgres') return POSTGRES_CREDENTIAL_TABLES.has(comparableName(name));
  // Unqualified MySQL names are the application's: an application may well have a table named user.
  if (schema === undefined) return false;
  return MYSQL_CREDENTIAL_SCHEMAS.has(comparableName(schema)) || MYSQL_CREDENTIAL_TABLES.has(comparableName(`${schema}.${name}`));
}
