// A phase handler either settles this decision (stop) or has moved the phase on (continue).
import type { Context } from '../context.ts';

export type Next = 'continue' | 'stop';
export type PhaseHandler = (ctx: Context) => Next;
