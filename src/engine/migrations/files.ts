// Versioned schema migrations (Flyway-like): V<version>__<description>.sql applies a version,
// U<version>__<description>.sql undoes it. Versions compare numerically part by part, and each
// up script carries a checksum so an edit after it was applied is caught before anything runs.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Migration {
  /** Normalised version: digit groups separated by dots ("1", "1.2", "2024.01.15"). */
  version: string;
  description: string;
  /** The script that applies this version. */
  up: string;
  /** The script that undoes it, when there is one. */
  down?: string;
  /** sha256 (hex) of the up script, line endings and trailing whitespace normalised (see migrationChecksum). */
  checksum: string;
}

export interface InlineMigration {
  version: string;
  description?: string;
  up: string;
  down?: string;
}

const VERSION = /^\d+(?:[._]\d+)*$/;
const FILE_NAME = /^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$/i;

/** Normalises a version: `_` separators become dots ("1_2" → "1.2"); throws on anything else than digit groups. */
export function normalizeVersion(version: string): string {
  const trimmed = version.trim();
  if (!VERSION.test(trimmed)) {
    throw new Error(`invalid migration version "${version}": expected digit groups separated by "." or "_", such as 1, 1.2 or 2024_01_15`);
  }
  return trimmed.replaceAll('_', '.');
}

function comparePart(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Orders two versions numerically part by part: 1.9 < 1.10 < 2; missing parts count as zero,
 * so 1 and 1.0 are the same version. Negative, zero or positive like a sort comparator.
 */
export function compareVersions(a: string, b: string): number {
  const left = normalizeVersion(a).split('.');
  const right = normalizeVersion(b).split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const order = comparePart(left[i] ?? '0', right[i] ?? '0');
    if (order !== 0) return order < 0 ? -1 : 1;
  }
  return 0;
}

/** sha256 (hex) of a script with CRLF line endings turned into LF and trailing whitespace removed. */
export function migrationChecksum(script: string): string {
  return createHash('sha256').update(script.replaceAll('\r\n', '\n').trimEnd(), 'utf8').digest('hex');
}

/** Sorts by version; throws when two migrations have the same version (1 and 1.0 are the same). */
export function sortMigrations(migrations: readonly Migration[]): Migration[] {
  const sorted = [...migrations].sort((a, b) => compareVersions(a.version, b.version));
  const problems: string[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1];
    const current = sorted[i];
    if (previous && current && compareVersions(previous.version, current.version) === 0) {
      problems.push(`two migrations have the same version: ${previous.version} (${previous.description}) and ${current.version} (${current.description})`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return sorted;
}

/** Migrations given inline (e.g. in a manifest), validated and sorted by version. */
export function migrationsFromInline(list: readonly InlineMigration[]): Migration[] {
  const problems: string[] = [];
  const migrations: Migration[] = [];
  list.forEach((item, index) => {
    let version: string;
    try {
      version = normalizeVersion(item.version);
    } catch (error) {
      problems.push(`migration #${index + 1}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (item.up.trim() === '') problems.push(`migration ${version} has an empty up script`);
    const migration: Migration = { version, description: item.description ?? '', up: item.up, checksum: migrationChecksum(item.up) };
    if (item.down !== undefined) migration.down = item.down;
    migrations.push(migration);
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return sortMigrations(migrations);
}

interface ParsedName {
  kind: 'V' | 'U';
  version: string;
  description: string;
}

/**
 * Parses a migration file name. Undefined for files that are not migrations (anything not
 * starting with V or U or not ending in .sql); throws for names that look like one but do not
 * match V<version>__<description>.sql.
 */
export function parseMigrationFileName(name: string): ParsedName | undefined {
  if (!/^[VU]/.test(name) || !/\.sql$/i.test(name)) return undefined;
  const match = FILE_NAME.exec(name);
  const kind = match?.[1];
  const version = match?.[2];
  const description = match?.[3];
  if ((kind !== 'V' && kind !== 'U') || version === undefined || description === undefined || description.trim() === '') {
    throw new Error(`bad migration file name "${name}": expected V<version>__<description>.sql or U<version>__<description>.sql, such as V1.2__add_orders.sql`);
  }
  return { kind, version: normalizeVersion(version), description: description.replaceAll('_', ' ').trim() };
}

/** Removes a UTF-8 byte order mark some editors write. */
function withoutBom(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

/**
 * Reads the migrations of a directory (not its subdirectories): V<version>__<description>.sql
 * applies a version, U<version>__<description>.sql undoes it; other files are ignored. Every
 * problem (bad names, two files for one version, an undo without its migration) is reported in
 * one error. Sorted by version.
 */
export async function readMigrationDirectory(dir: string): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const problems: string[] = [];
  const ups = new Map<string, { file: string; parsed: ParsedName }>();
  const downs = new Map<string, { file: string; parsed: ParsedName }>();
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!entry.isFile()) continue;
    let parsed: ParsedName | undefined;
    try {
      parsed = parseMigrationFileName(entry.name);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      continue;
    }
    if (!parsed) continue;
    const byVersion = parsed.kind === 'V' ? ups : downs;
    const same = [...byVersion.entries()].find(([version]) => compareVersions(version, parsed.version) === 0);
    if (same) {
      problems.push(`two ${parsed.kind === 'V' ? 'migration' : 'undo'} files have the same version ${parsed.version}: ${same[1].file} and ${entry.name}`);
      continue;
    }
    byVersion.set(parsed.version, { file: entry.name, parsed });
  }
  for (const [version, down] of downs) {
    if (![...ups.keys()].some((up) => compareVersions(up, version) === 0)) {
      problems.push(`undo file ${down.file} has no migration V${version}__<description>.sql for its version`);
    }
  }
  if (problems.length > 0) throw new Error(`migration directory ${dir}: ${problems.join('; ')}`);

  const migrations: Migration[] = [];
  for (const [version, up] of ups) {
    const script = withoutBom(await readFile(join(dir, up.file), 'utf8'));
    const migration: Migration = { version, description: up.parsed.description, up: script, checksum: migrationChecksum(script) };
    const down = [...downs.entries()].find(([downVersion]) => compareVersions(downVersion, version) === 0)?.[1];
    if (down) migration.down = withoutBom(await readFile(join(dir, down.file), 'utf8'));
    migrations.push(migration);
  }
  return sortMigrations(migrations);
}
