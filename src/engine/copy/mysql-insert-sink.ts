// The other bulk path into MySQL: multi-row INSERT statements, built from the same encoded lines
// the LOAD DATA path streams. Kept to measure the choice (`DMO_MYSQL_BULK=insert`, see
// bench/copy.ts); LOAD DATA LOCAL INFILE is the default because it is faster (README,
// Performance). Same guarantees: one transaction per batch with its checkpoint, the row count
// checked, any warning fails the batch.
import type { Connection as MysqlPromiseConnection, ResultSetHeader } from 'mysql2/promise';
import { mysqlSession } from '../db/mysql/connection.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { markCheckpoint, type BatchSink, type TargetColumn } from './sinks.ts';

/** Statements stay well under max_allowed_packet (16 MB by default on MariaDB, 64 MB on MySQL 8). */
const MAX_STATEMENT_BYTES = 4 << 20;

const UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', '0': '\0' };

/** One LOAD DATA field (see load-data.ts) as an SQL literal; binary fields are hex. */
function literal(field: string, binary: boolean, column: TargetColumn): string {
  if (field === '\\N') return 'NULL';
  if (binary) return field === '' ? "''" : `X'${field}'`;
  const text = field.includes('\\') ? field.replace(/\\(.)/g, (_, char: string) => UNESCAPES[char] ?? char) : field;
  const quoted = `'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
  return column.loadExpression ? column.loadExpression(quoted) : quoted;
}

export function mysqlInsertSink(connection: MysqlPromiseConnection, table: string, columns: readonly TargetColumn[]): BatchSink {
  const session = mysqlSession(connection);
  const d = session.dialect;
  const head = `INSERT INTO ${d.quoteQualified(table)} (${columns.map((c) => d.quoteIdent(c.name)).join(', ')}) VALUES `;
  let pending = '';
  let tuples: string[] = [];
  let tupleBytes = 0;
  let stored = 0;
  const flush = async (): Promise<void> => {
    if (tuples.length === 0) return;
    const [header] = await connection.query(head + tuples.join(','));
    const result = header as ResultSetHeader;
    if (result.warningStatus > 0) throw new Error(`INSERT stored rows with ${String(result.warningStatus)} warnings`);
    stored += result.affectedRows;
    tuples = [];
    tupleBytes = 0;
  };
  return {
    async begin() {
      await connection.query('START TRANSACTION');
      stored = 0;
    },
    async write(chunk) {
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      let start = 0;
      while (newline >= 0) {
        const fields = pending.slice(start, newline).split('\t');
        const tuple = `(${fields.map((field, i) => literal(field, columns[i]?.binary ?? false, columns[i] ?? { name: '', binary: false })).join(',')})`;
        tuples.push(tuple);
        tupleBytes += tuple.length;
        if (tupleBytes >= MAX_STATEMENT_BYTES) await flush();
        start = newline + 1;
        newline = pending.indexOf('\n', start);
      }
      pending = pending.slice(start);
    },
    async commit(rows, id, checkpoint) {
      await flush();
      if (stored !== rows) throw new Error(`INSERT stored ${String(stored)} rows of a batch of ${String(rows)}`);
      await writeCheckpoint(session, id, checkpoint);
      await connection.query('COMMIT');
    },
    mark: (id, checkpoint) => markCheckpoint(session, id, checkpoint),
    async rollback() {
      pending = '';
      tuples = [];
      await connection.query('ROLLBACK').catch(() => undefined);
    },
  };
}
