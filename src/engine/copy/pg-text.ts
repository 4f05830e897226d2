// PostgreSQL's COPY text format: tab-separated fields, \N for NULL, backslash escapes, one row
// per line. Every 0x0A byte in a COPY stream ends a row (newlines inside values are escaped),
// which is what lets the copy cut a byte stream into batches without parsing it.

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value as COPY FROM (text) reads it. */
export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\t\n\r]/g, (char) => ESCAPES[char] ?? char) : value;
}

export const COPY_NULL = '\\N';

const UNESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One field as COPY TO (text) wrote it, back to its value. */
export function unescapeCopyText(field: string): string {
  if (!field.includes('\\')) return field;
  let out = '';
  for (let i = 0; i < field.length; i++) {
    const char = field[i] ?? '';
    if (char !== '\\' || i + 1 >= field.length) {
      out += char;
      continue;
    }
    const next = field[++i] ?? '';
    const simple = UNESCAPES[next];
    if (simple !== undefined) {
      out += simple;
    } else if (next >= '0' && next <= '7') {
      let digits = next;
      while (digits.length < 3 && /[0-7]/.test(field[i + 1] ?? '')) digits += field[++i] ?? '';
      out += String.fromCharCode(parseInt(digits, 8));
    } else if (next === 'x' && /[0-9a-fA-F]/.test(field[i + 1] ?? '')) {
      let digits = field[++i] ?? '';
      if (/[0-9a-fA-F]/.test(field[i + 1] ?? '')) digits += field[++i] ?? '';
      out += String.fromCharCode(parseInt(digits, 16));
    } else {
      out += next; // \\ and any other escaped character stand for themselves
    }
  }
  return out;
}

/** Splits one line (without its newline) into values; \N is NULL. */
export function parseCopyTextLine(line: string): (string | null)[] {
  return line.split('\t').map((field) => (field === COPY_NULL ? null : unescapeCopyText(field)));
}

/** Formats values as one COPY text line, newline included. */
export function formatCopyTextLine(values: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) line += '\t';
    line += value === null || value === undefined ? COPY_NULL : escapeCopyText(value);
  }
  return line + '\n';
}
