// A refusal: the engine found a reason it must not act (the plan, or a rollback that is not this
// migration's to do); nothing was written. The CLI exits 3 for it (src/cli/main.ts).
import type { ValidationReport } from '../validate/report.ts';

/** The plan (or a rollback's check) found reasons not to go on; nothing was written. */
export class PlanRefusedError extends Error {
  readonly reasons: string[];
  constructor(reasons: string[], what = 'the plan was refused') {
    super(`${what}:\n  ${reasons.join('\n  ')}`);
    this.reasons = reasons;
  }
}

/** The target differs from the source: the report says where. The CLI exits 4 for it. */
export class ValidationFailedError extends Error {
  readonly report: ValidationReport;
  constructor(what: string, report: ValidationReport) {
    super(`${what}: ${report.summary}`);
    this.report = report;
  }
}
