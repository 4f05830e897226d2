// The command line of kubectl-dm, parsed into what to do. Pure: no I/O.
import { parseArgs } from 'node:util';
import { STEPS, type Step } from '../api/constants.ts';

export const USAGE = `usage: kubectl dm <command> NAME [options]
  status NAME [-w]          phase, steps and their Jobs, progress, validation, active selector, latest Events
  approve NAME              approve the Manual cutover of the current generation
  abort NAME                stop a running migration (phase Failed, reason Aborted)
  retry NAME [--token T]    run the failed (or aborted) step again, under a new retry token
  suspend NAME              set spec.suspend: no new step starts (a running step finishes)
  resume NAME               clear spec.suspend: continue where the run stopped
  logs NAME [--step S]      the log of a step's pod (default: the latest step); S is one of ${STEPS.join(', ')}
options:
  -n, --namespace <ns>      the DataMigration's namespace (default: the kubeconfig context's)
      --kubeconfig <path>   kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
      --context <name>      kubeconfig context (default: the current one)
  -w, --watch               status: redraw on every change until the migration ends (Ctrl-C stops)
      --tail <n>            logs: only the last n lines
  -h, --help                this help`;

export const COMMANDS = ['status', 'approve', 'abort', 'retry', 'suspend', 'resume', 'logs'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface Target {
  name: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
}

export type Command =
  | { kind: 'help' }
  | ({ kind: 'status'; watch: boolean } & Target)
  | ({ kind: 'approve' | 'abort' | 'suspend' | 'resume' } & Target)
  | ({ kind: 'retry'; token?: string } & Target)
  | ({ kind: 'logs'; step?: Step; tail?: number } & Target);

/** Bad input on the command line; the message says what and shows the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  watch: { type: 'boolean', short: 'w', default: false },
  token: { type: 'string' },
  step: { type: 'string' },
  tail: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const isCommand = (value: string): value is CommandName => (COMMANDS as readonly string[]).includes(value);
const isStep = (value: string): value is Step => (STEPS as readonly string[]).includes(value);

/** Which options each command takes, besides the target's. */
const OWN_OPTIONS: Record<CommandName, readonly string[]> = {
  status: ['watch'], approve: [], abort: [], retry: ['token'], suspend: [], resume: [], logs: ['step', 'tail'],
};

export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) return { kind: 'help' };
  const [command, name, ...extra] = positionals;
  if (command === undefined || !isCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}: expected one of ${COMMANDS.join(', ')}`);
  if (name === undefined || name === '') throw new UsageError(`${command} needs the DataMigration's NAME`);
  if (extra.length > 0) throw new UsageError(`${command} takes one NAME, got also: ${extra.join(' ')}`);
  for (const option of ['watch', 'token', 'step', 'tail'] as const) {
    const given = option === 'watch' ? values.watch : values[option] !== undefined;
    if (given && !OWN_OPTIONS[command].includes(option)) throw new UsageError(`--${option} is not an option of ${command}`);
  }
  const target: Target = {
    name,
    ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
    ...(values.kubeconfig !== undefined ? { kubeconfig: values.kubeconfig } : {}),
    ...(values.context !== undefined ? { context: values.context } : {}),
  };
  switch (command) {
    case 'status':
      return { kind: 'status', watch: values.watch, ...target };
    case 'retry':
      if (values.token !== undefined && !/[a-z0-9]/i.test(values.token)) throw new UsageError(`--token ${JSON.stringify(values.token)} needs at least one letter or digit`);
      return { kind: 'retry', ...target, ...(values.token !== undefined ? { token: values.token } : {}) };
    case 'logs': {
      if (values.step !== undefined && !isStep(values.step)) throw new UsageError(`--step ${values.step}: expected one of ${STEPS.join(', ')}`);
      let tail: number | undefined;
      if (values.tail !== undefined) {
        tail = Number(values.tail);
        if (!Number.isInteger(tail) || tail < 0) throw new UsageError(`--tail ${values.tail}: expected a whole number of lines`);
      }
      return { kind: 'logs', ...target, ...(values.step !== undefined ? { step: values.step } : {}), ...(tail !== undefined ? { tail } : {}) };
    }
    default:
      return { kind: command, ...target };
  }
}
