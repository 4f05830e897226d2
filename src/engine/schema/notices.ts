// Grouped plan warnings: what is not carried over exactly is said once per reason, naming every
// object it applies to ("zero dates become NULL: orders.created, orders.shipped, …"), never once
// per column or partition (a schema of 200 date columns gets one line, not 200).

/** One object (`table.column`, `table.index`, …) that one reason applies to. */
export interface Notice {
  reason: string;
  subject: string;
}

/** Most objects one warning names; the rest are counted ("… and 12 more"). */
export const MAX_SUBJECTS = 40;

/** One warning per reason, in the order reasons first appear, each object named once. */
export function groupNotices(notices: readonly Notice[], max = MAX_SUBJECTS): string[] {
  const groups = new Map<string, string[]>();
  for (const { reason, subject } of notices) {
    const subjects = groups.get(reason) ?? [];
    if (!subjects.includes(subject)) subjects.push(subject);
    groups.set(reason, subjects);
  }
  return [...groups].map(([reason, subjects]) => {
    const shown = subjects.slice(0, max).join(', ');
    return `${reason}: ${shown}${subjects.length > max ? ` … and ${String(subjects.length - max)} more` : ''}`;
  });
}
