// What a failed connection or a timed-out statement says: which side, and what timed out, never
// the URL or its password.
import type { Side } from './connection-options.ts';
import { ConnectionSettingsError } from './connection-options.ts';
import { redactSecrets, secretsOfUrls } from './redact.ts';

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

const CONNECT_TIMEOUT = /timeout expired|ETIMEDOUT|connection timeout|connect_timeout/i;

/** A connect failure as the CLI and the operator show it: "cannot connect to postgres (the source): …". */
export function connectError(error: unknown, url: string, side: Side | undefined, engine: string, connectMs: number): Error {
  if (error instanceof ConnectionSettingsError) return error;
  // Driver errors can echo the connection string; never let a password through.
  const message = redactSecrets(messageOf(error), secretsOfUrls([url]));
  const what = CONNECT_TIMEOUT.test(message) || codeOf(error) === 'ETIMEDOUT'
    ? `connect timed out after ${String(connectMs / 1000)} s (the server accepted nothing or did not answer; DMO_CONNECT_TIMEOUT_SECONDS sets the bound)`
    : message;
  // No `cause`: the driver's error may hold the URL, and whoever logs this error logs its cause.
  return new Error(`cannot connect to ${engine}${side ? ` (the ${side})` : ''}: ${what}`);
}

/**
 * A statement error, with the side and the timeout named when one ended it (PostgreSQL 57014
 * statement_timeout, 25P03 idle_in_transaction_session_timeout, pg's query_timeout; MariaDB 1969
 * max_statement_time, MySQL 3024 max_execution_time); other errors pass unchanged.
 */
export function statementError(error: unknown, side: Side | undefined, statementMs: number | undefined): unknown {
  const code = codeOf(error);
  const message = messageOf(error);
  const timedOut = code === '57014' && /statement timeout/i.test(message) ? `statement timed out after ${String((statementMs ?? 0) / 1000)} s (statement_timeout)`
    : code === '25P03' ? 'the transaction stayed idle longer than idle_in_transaction_session_timeout'
      : code === 1969 || code === 3024 || code === 'ER_STATEMENT_TIMEOUT' ? `statement timed out after ${String((statementMs ?? 0) / 1000)} s`
        : /Query read timeout/i.test(message) ? `no answer from the server within ${String((statementMs ?? 0) / 1000 + 5)} s (query_timeout)`
          : undefined;
  if (timedOut === undefined) return error;
  const wrapped = new Error(`${side ?? 'database'}: ${timedOut}: ${message}`);
  return Object.assign(wrapped, { code });
}
