// A throwaway MariaDB server from the installed Debian binaries: its own data directory,
// a free loopback port, an admin user with a random password; stopped and removed by stop().
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, open, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DatabaseServer } from './postgres-server.ts';
import { freePort, makeRunDir, processAlive, removeDir, run, runChecked, staleRunDirs, systemUserIds, waitFor } from './process.ts';

const MARIADBD = '/usr/sbin/mariadbd';

async function stopByPidFile(pidFile: string): Promise<void> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return;
  process.kill(pid, 'SIGKILL');
  await waitFor('MariaDB to exit', () => Promise.resolve(processAlive(pid) ? undefined : true), 10_000, 50);
}

async function removeStaleServers(): Promise<void> {
  for (const dir of await staleRunDirs('mariadb')) {
    await stopByPidFile(join(dir, 'mariadbd.pid'));
    await removeDir(dir);
  }
}

export async function startMariadb(): Promise<DatabaseServer> {
  if (!existsSync(MARIADBD)) throw new Error(`${MARIADBD} not found: run \`npm run setup\``);
  await removeStaleServers();
  const root = userInfo().uid === 0;
  // mariadbd refuses to run as root; as root it switches to the Debian package's `mysql` user itself.
  const owner = root ? await systemUserIds('mysql') : undefined;
  const runDir = await makeRunDir('mariadb', owner);
  const dataDir = join(runDir, 'data');
  const socket = join(runDir, 'mariadbd.sock');
  const pidFile = join(runDir, 'mariadbd.pid');
  // Its own directory for temporary tables: a server that starts clears the #sql files it finds
  // there, which would pull them from under another server sharing /tmp (a test with a server of its own).
  const tmpDir = join(runDir, 'tmp');
  await mkdir(tmpDir);
  if (owner) await chown(tmpDir, owner.uid, owner.gid);
  const userArgs = root ? ['--user=mysql'] : [];

  await runChecked('mariadb-install-db', [
    '--no-defaults', `--datadir=${dataDir}`, ...userArgs, '--auth-root-authentication-method=socket',
    '--skip-test-db', '--skip-name-resolve',
  ]);

  const port = await freePort();
  const log = await open(join(runDir, 'server.log'), 'a');
  // Durability is irrelevant for a throwaway server; speed and enough connections are not.
  const server = spawn(MARIADBD, [
    '--no-defaults', `--datadir=${dataDir}`, ...userArgs, `--port=${port}`, '--bind-address=127.0.0.1',
    `--socket=${socket}`, `--pid-file=${pidFile}`, `--tmpdir=${tmpDir}`, '--skip-name-resolve',
    // The binary log in row format with whole row images: change capture (binlog CDC) reads it.
    // sync_binlog=0 leaves flushing to the OS, as for InnoDB's log: nothing here must survive a crash.
    // Files of 64 MB, purged at a rotation once 10 minutes old: a long run's bulk copies do not fill
    // the disk, and no test reads the binlog from further back than that.
    `--log-bin=${join(runDir, 'binlog')}`, '--binlog-format=ROW', '--binlog-row-image=FULL', '--server-id=1', '--sync-binlog=0',
    '--max-binlog-size=64M', '--binlog-expire-logs-seconds=600',
    '--innodb-flush-log-at-trx-commit=0', '--innodb-doublewrite=0', '--innodb-buffer-pool-size=512M',
    '--innodb-log-file-size=512M', '--max-connections=400', '--local-infile=1', '--max-allowed-packet=256M',
    '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci', "--default-time-zone=+00:00",
  ], { stdio: ['ignore', log.fd, log.fd], detached: true });
  server.unref();
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
  await log.close();

  const password = randomBytes(12).toString('hex');
  const admin = ['--no-defaults', `--socket=${socket}`, '-uroot'];
  try {
    await waitFor('MariaDB to accept connections', async () => {
      if (server.exitCode !== null) throw new Error(`mariadbd exited with ${server.exitCode}`);
      const ping = await run('mariadb-admin', [...admin, 'ping']);
      return ping.code === 0 ? true : undefined;
    }, 60_000);
    await runChecked('mariadb', [...admin, '-e',
      `CREATE USER 'dmo'@'%' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON *.* TO 'dmo'@'%' WITH GRANT OPTION;`]);
  } catch (error) {
    server.kill('SIGKILL');
    const text = await readFile(join(runDir, 'server.log'), 'utf8').catch(() => '');
    await removeDir(runDir);
    throw new Error(`${(error as Error).message}\n${text.slice(-2000)}`, { cause: error });
  }

  let stopped = false;
  return {
    url: `mysql://dmo:${password}@127.0.0.1:${port}/`,
    port,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      // The data is thrown away, so there is nothing to shut down cleanly.
      if (server.exitCode === null) {
        server.kill('SIGKILL');
        await Promise.race([exited, sleep(10_000)]);
      }
      await removeDir(runDir);
    },
  };
}
