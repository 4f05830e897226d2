// The text MySQL's LOAD DATA reads with FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES
// TERMINATED BY '\n': \N for NULL; backslash, tab, newline, carriage return and NUL escaped.
// Binary values travel as hex (the statement wraps them in UNHEX), so the file is valid UTF-8.

const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' };

export const LOAD_DATA_NULL = '\\N';

export function escapeLoadData(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\t\n\r\0]/g, (char) => ESCAPES[char] ?? char) : value;
}

/** One LOAD DATA line, newline included; Buffers are written as hex for an UNHEX(@var) column. */
export function formatLoadDataLine(values: readonly (string | Buffer | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) line += '\t';
    if (value === null || value === undefined) line += LOAD_DATA_NULL;
    else if (typeof value === 'string') line += escapeLoadData(value);
    else line += value.toString('hex');
  }
  return line + '\n';
}

/** The statement that loads a stream into `table` (already quoted), columns in file order. */
export function loadDataStatement(table: string, columns: readonly { quoted: string; binary: boolean; expression?: (variable: string) => string }[]): string {
  const targets: string[] = [];
  const sets: string[] = [];
  columns.forEach((column, index) => {
    if (!column.binary && !column.expression) {
      targets.push(column.quoted);
      return;
    }
    const variable = `@v${index}`;
    targets.push(variable);
    const raw = column.binary ? `UNHEX(${variable})` : variable;
    sets.push(`${column.quoted} = ${column.expression ? column.expression(raw) : raw}`);
  });
  const set = sets.length > 0 ? ` SET ${sets.join(', ')}` : '';
  return `LOAD DATA LOCAL INFILE 'dataops-batch' INTO TABLE ${table} CHARACTER SET utf8mb4 `
    + `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${targets.join(', ')})${set}`;
}
