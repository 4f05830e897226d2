#!/usr/bin/env node
// kubectl-dm: the kubectl plugin for DataMigrations (`kubectl dm status orders -w`). kubectl finds
// it on PATH by its name; it talks to the cluster through the user's kubeconfig.
// Exit codes: 0 done; 1 the request was refused or failed (a watched migration that Failed or
// RolledBack too); 2 bad usage.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCommand, USAGE, UsageError, type Command } from './args.ts';
import { connect, describeApiError } from './cluster.ts';
import { abort, approve, logs, RefusedError, retry, setSuspend, status, watchDone } from './commands.ts';

const WATCH_INTERVAL_MS = 2000;

async function watchStatus(command: Extract<Command, { kind: 'status' }>, signal: AbortSignal): Promise<number> {
  const cluster = connect(command);
  const clear = process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
  for (;;) {
    const { text, migration } = await status(cluster, command.name);
    process.stdout.write(clear === '' ? `${text}\n` : `${clear}${text}`);
    if (watchDone(migration)) return migration.status?.phase === 'Succeeded' ? 0 : 1;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WATCH_INTERVAL_MS);
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    if (signal.aborted) return 0;
  }
}

export async function main(argv: readonly string[], signal: AbortSignal): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`kubectl dm: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const cluster = connect(command);
    let output: string;
    switch (command.kind) {
      case 'status':
        if (command.watch) return await watchStatus(command, signal);
        output = (await status(cluster, command.name)).text;
        break;
      case 'approve': output = `${await approve(cluster, command.name)}\n`; break;
      case 'abort': output = `${await abort(cluster, command.name)}\n`; break;
      case 'retry': output = `${await retry(cluster, command.name, command.token)}\n`; break;
      case 'suspend': output = `${await setSuspend(cluster, command.name, true)}\n`; break;
      case 'resume': output = `${await setSuspend(cluster, command.name, false)}\n`; break;
      case 'logs': output = await logs(cluster, command.name, command.step, command.tail); break;
    }
    process.stdout.write(output);
    return 0;
  } catch (error) {
    const message = error instanceof RefusedError ? error.message : describeApiError(error);
    process.stderr.write(`kubectl dm ${command.kind} ${command.name}: ${message}\n`);
    return 1;
  }
}

// Run when executed (also through the npm bin symlink), not when imported by a test.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const controller = new AbortController();
  process.once('SIGINT', () => { controller.abort(); });
  process.exitCode = await main(process.argv.slice(2), controller.signal);
}
