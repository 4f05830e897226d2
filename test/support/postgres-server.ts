// A throwaway PostgreSQL server from the installed Debian binaries: its own data directory,
// a free loopback port, a random superuser password, logical decoding on; stopped and removed by stop().
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, makeRunDir, removeDir, run, runChecked, staleRunDirs, systemUserIds, waitFor } from './process.ts';

export interface DatabaseServer {
  /** Admin connection URL (superuser), for creating per-test databases. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/** The newest PostgreSQL server installed under /usr/lib/postgresql/<major>/bin. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root).filter((name) => existsSync(join(root, name, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = majors[0];
  if (newest === undefined) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql: run `npm run setup`');
  return join(root, newest, 'bin');
}

/** PostgreSQL refuses to run as root; as root, the server runs as the Debian package's `postgres` user. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

async function pgCtl(binDir: string, args: string[]): Promise<void> {
  const [command, argv] = asServerUser(join(binDir, 'pg_ctl'), args);
  await runChecked(command, argv);
}

/** Stops servers left behind by earlier runs that were killed before they could clean up. */
async function removeStaleServers(binDir: string): Promise<void> {
  for (const dir of await staleRunDirs('postgres')) {
    if (existsSync(join(dir, 'data', 'postmaster.pid'))) {
      await pgCtl(binDir, ['stop', '-D', join(dir, 'data'), '-m', 'immediate', '-w']).catch(() => undefined);
    }
    await removeDir(dir);
  }
}

export async function startPostgres(): Promise<DatabaseServer> {
  const binDir = postgresBinDir();
  await removeStaleServers(binDir);
  const owner = userInfo().uid === 0 ? await systemUserIds('postgres') : undefined;
  const runDir = await makeRunDir('postgres', owner);
  const dataDir = join(runDir, 'data');
  const password = randomBytes(12).toString('hex');
  const passwordFile = join(runDir, 'pwfile');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (owner) await runChecked('chown', [`${owner.uid}:${owner.gid}`, passwordFile]);

  const [initdb, initdbArgs] = asServerUser(join(binDir, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', `--pwfile=${passwordFile}`,
    '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync',
  ]);
  await runChecked(initdb, initdbArgs);

  const port = await freePort();
  // Durability is irrelevant for a throwaway server; speed and enough connections are not.
  const serverOptions = [
    `-p ${port}`, `-k ${runDir}`, "-c listen_addresses='127.0.0.1'", '-c fsync=off', '-c synchronous_commit=off',
    '-c full_page_writes=off', '-c max_connections=300', '-c shared_buffers=256MB', '-c max_wal_size=4GB',
    "-c timezone='UTC'",
    // Logical decoding for change capture (issue 16): every test file may hold a slot and stream it
    // at once. Costs nothing at start; the WAL grows slightly by the extra row identity it records.
    '-c wal_level=logical', '-c max_replication_slots=100', '-c max_wal_senders=100',
  ].join(' ');
  try {
    await pgCtl(binDir, ['start', '-D', dataDir, '-w', '-t', '60', '-l', join(runDir, 'server.log'), '-o', serverOptions]);
  } catch (error) {
    const log = await readFile(join(runDir, 'server.log'), 'utf8').catch(() => '');
    throw new Error(`${(error as Error).message}\n${log.slice(-2000)}`, { cause: error });
  }
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  await waitFor('PostgreSQL to accept connections', async () => {
    const ready = await run(join(binDir, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]);
    return ready.code === 0 ? true : undefined;
  });

  let stopped = false;
  return {
    url,
    port,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pgCtl(binDir, ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => undefined);
      await removeDir(runDir);
    },
  };
}
