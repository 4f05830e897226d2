// The one log schema of the operator (src/controller/logger.ts) and the engine's JSON lines
// (src/cli/reporter.ts): `ts`, `level`, `msg` first, then the context (`component`, `namespace`,
// `name`, and `reconcileID` inside a reconcile) and the line's own fields. LOG_FORMAT chooses
// `json` (one object per line, the default: for log pipelines) or `text` (`ts LEVEL msg key=value`).

export type LogFormat = 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

/** LOG_FORMAT's value, or undefined when it names no format (the default is json). */
export function logFormatOf(value: string | undefined): LogFormat | undefined {
  if (value === undefined || value === '') return 'json';
  return LOG_FORMATS.find((format) => format === value);
}

/** `key=value`; a value with spaces, quotes or `=` is written as a JSON string. */
function textField(key: string, value: unknown): string {
  const shown = typeof value === 'string' ? value : JSON.stringify(value);
  return `${key}=${/^[^\s"=]*$/.test(shown) ? shown : JSON.stringify(shown)}`;
}

/** One line (without its newline) of a record whose first fields are ts, level and msg. */
export function formatLine(fields: Record<string, unknown>, format: LogFormat): string {
  if (format === 'json') return JSON.stringify(fields);
  const { ts, level, msg, ...rest } = fields;
  const head = `${String(ts)} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}`;
  const tail = Object.entries(rest).filter(([, value]) => value !== undefined).map(([key, value]) => textField(key, value));
  return [head, ...tail].join(' ');
}
