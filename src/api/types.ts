// The API's types for the rest of the code: the generated interfaces, plus compile-time proof that
// the closed sets in constants.ts are exactly the enums the schema (and so the CRD) carries.
import type { CONDITION_TYPES, ENGINES, PHASES, STEPS, STRATEGY_TYPES, TRANSFORMS } from './constants.ts';
import type { Condition, DataMigrationStatus, DatabaseEndpoint, StepJob, StrategySpec, ColumnMapping } from './types.generated.ts';

export type * from './types.generated.ts';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

export type ApiTypesAgree = [
  Assert<Same<NonNullable<DataMigrationStatus['phase']>, (typeof PHASES)[number]>>,
  Assert<Same<Condition['type'], (typeof CONDITION_TYPES)[number]>>,
  Assert<Same<DatabaseEndpoint['engine'], (typeof ENGINES)[number]>>,
  Assert<Same<StepJob['step'], (typeof STEPS)[number]>>,
  Assert<Same<NonNullable<StrategySpec['type']>, (typeof STRATEGY_TYPES)[number]>>,
  Assert<Same<NonNullable<ColumnMapping['transforms']>[number], (typeof TRANSFORMS)[number]>>,
];
