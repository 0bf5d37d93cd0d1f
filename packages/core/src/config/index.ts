// `@belfry/core/config`: what a program needs to check a town's configuration without loading
// the town itself (its supervisor, its actors): the error classes, the timing defaults and their
// rule, and the rule for rig names. The `belfry` command reads its config with these alone, so a
// quick command never loads the tree.
export { BelfryError, type BelfryErrorOptions, ConfigError } from '../errors';
export { checkRigName } from '../town/names';
export { DEFAULT_TIMINGS, timingProblem } from '../town/townOptions';
export type { TownTimings } from '../town/types';
