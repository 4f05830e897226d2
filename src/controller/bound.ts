// Text cut to a status field's maxLength (the CRD's bounds: STATUS_LIMITS), marked with an ellipsis.
export const bound = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
