// Exit codes of the CLI, documented in the README; the operator reads them from Job pods.
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
  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
