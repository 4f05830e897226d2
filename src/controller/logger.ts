// Structured logs (winston) for the operator, in the schema the engine's JSON lines share
// (src/api/log-schema.ts: ts, level, msg, context, fields; LOG_FORMAT json or text). Every
// line passes through a scrubber: any registered secret value, and the password of anything
// shaped like a connection URL, becomes "***" before it is written, whatever code produced it.
import winston from 'winston';
import { formatLine, type LogFormat } from '../api/log-schema.ts';

const secrets = new Set<string>();
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)([^\s@/]+)@/gi;

/** Secret values the process has seen (for example Secret data read during preflight). */
export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

export function scrub(text: string): string {
  let result = text.replace(URL_PASSWORD, '$1***@');
  for (const secret of secrets) if (result.includes(secret)) result = result.replaceAll(secret, '***');
  return result;
}

function scrubValue(value: unknown): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(value.message);
  if (Array.isArray(value)) return value.map(scrubValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubValue(v)]));
  }
  return value;
}

const scrubFormat = winston.format((info) => {
  for (const key of Object.keys(info)) info[key] = scrubValue(info[key]);
  return info;
});

export type Logger = winston.Logger;

/** The record a line holds, in the shared schema's order; winston's symbols are left out. */
function record(info: winston.Logform.TransformableInfo): Record<string, unknown> {
  const { level, message, timestamp, ...rest } = info;
  return { ts: timestamp, level, msg: message, ...rest };
}

// winston writes what this symbol holds (triple-beam's MESSAGE).
const MESSAGE = Symbol.for('message');
const lineFormat = (format: LogFormat): winston.Logform.Format => winston.format((info) => {
  (info as Record<symbol, unknown>)[MESSAGE] = formatLine(record(info), format);
  return info;
})();

export function createLogger(level = process.env.LOG_LEVEL ?? 'info', stream?: NodeJS.WritableStream, format: LogFormat = 'json'): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), scrubFormat(), lineFormat(format)),
    defaultMeta: { component: 'datamigration-operator' },
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
