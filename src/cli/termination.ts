// A step's result for the operator: the container's termination message (the kubelet keeps at most
// 4096 bytes), compact JSON of the step-result contract (src/api/step-result.ts), which the operator
// reads back (src/controller/step-results.ts). When the full result does not fit, list items are
// dropped from the end, warnings first, then checks and tables (with truncated: true); the
// catch-up step's validation report is shortened the same way inside it.
import { writeFileSync } from 'node:fs';
import type { Step } from '../api/constants.ts';
import type { StepResults } from '../api/step-result.ts';

export const TERMINATION_MESSAGE_LIMIT = 4096;

/** The JSON text of `result`, shortened to fit the limit. */
export function boundedResult(contractResult: StepResults[Step], limit = TERMINATION_MESSAGE_LIMIT): string {
  const result = contractResult as Record<string, unknown>;
  let text = JSON.stringify(result);
  if (Buffer.byteLength(text) <= limit) return text;
  // The catch-up step: its validation report is what is large; it is shortened to what the rest leaves.
  const nested = result.validation;
  if (typeof nested === 'object' && nested !== null && !Array.isArray(nested)) {
    const rest = Buffer.byteLength(JSON.stringify({ ...result, truncated: true, validation: {} }));
    const validation: unknown = JSON.parse(boundedResult(nested, limit - rest + 2));
    return JSON.stringify({ ...result, truncated: true, validation });
  }
  const shrunk: Record<string, unknown> = { ...result, truncated: true };
  // Warnings go first: the tables and checks are what the operator's status is made of.
  for (const key of ['warnings', 'checks', 'tables', 'applied', 'createdTables']) {
    const list = shrunk[key];
    if (!Array.isArray(list)) continue;
    const items: unknown[] = (list as unknown[]).slice();
    while (items.length > 0 && Buffer.byteLength(JSON.stringify({ ...shrunk, [key]: items })) > limit) items.pop();
    shrunk[key] = items;
    text = JSON.stringify(shrunk);
    if (Buffer.byteLength(text) <= limit) return text;
  }
  return JSON.stringify({ truncated: true, ...('passed' in result ? { passed: result.passed } : {}) });
}

/** Writes the termination message when running as a Job step (DMO_TERMINATION_LOG is set). */
export function writeTermination(text: string): void {
  const path = process.env.DMO_TERMINATION_LOG;
  if (!path) return;
  try {
    writeFileSync(path, Buffer.from(text).subarray(0, TERMINATION_MESSAGE_LIMIT));
  } catch {
    // Not in a pod (or not writable): the result is in the JSON output anyway.
  }
}
