// A refusal: the engine found a reason it must not act (the plan, or a rollback that is not this
// migration's to do); nothing was written. The CLI exits 3 for it (src/cli/main.ts).

/** The plan (or a rollback's check) found reasons not to go on; nothing was written. */
export class PlanRefusedError extends Error {
  readonly reasons: string[];
  constructor(reasons: string[], what = 'the plan was refused') {
    super(`${what}:\n  ${reasons.join('\n  ')}`);
    this.reasons = reasons;
  }
}
