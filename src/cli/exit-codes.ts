// Exit codes of the CLI, documented in the README; the operator reads them from Job pods.
import { REASONS, type Reason } from '../api/constants.ts';
export const EXIT = {
  ok: 0,
  /** A step failed while running (database error, lost connection, data rejected by the target). */
  failed: 1,
  /** Bad command line or manifest: nothing was done. */
  usage: 2,
  /** The plan found a reason the migration cannot be correct (unmappable type, missing key): nothing was written. */
  planRefused: 3,
  /** Validation ran and found differences between source and target. */
  validationFailed: 4,
  /** Stopped by SIGINT/SIGTERM between batches; a rerun resumes. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that carries its exit code and a message safe to show (no secrets). */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  /** A step's result to leave as the termination message instead of the error's text (a verdict the operator reads). */
  readonly termination: string | undefined;
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions & { termination?: string }) {
    super(message, options);
    this.exitCode = exitCode;
    this.termination = options?.termination;
  }
}

/**
 * The one table from an engine's exit code to the reason the operator records for a step Job that
 * failed with it (status.steps[].reason, the step's condition, Ready). A code not listed (a crash,
 * an OOM kill): JobFailed.
 */
export const EXIT_REASONS: Readonly<Record<Exclude<ExitCode, 0>, Reason>> = {
  [EXIT.failed]: REASONS.JobFailed,
  [EXIT.usage]: REASONS.InvalidSpec,
  [EXIT.planRefused]: REASONS.PlanRefused,
  [EXIT.validationFailed]: REASONS.ValidationFailed,
  [EXIT.interrupted]: REASONS.JobFailed,
};

/** The reason for a step Job that failed with this exit code (undefined: not known). */
export function exitReason(exitCode: number | undefined): Reason {
  const known = Object.entries(EXIT_REASONS).find(([code]) => Number(code) === exitCode);
  return known?.[1] ?? REASONS.JobFailed;
}
