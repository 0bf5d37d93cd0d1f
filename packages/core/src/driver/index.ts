// `@belfry/core/driver`: what a session driver implements, and what it uses (a clock, the option
// checks) without loading the town.

export { type Clock, realClock } from '../Clock';
export { check, type NumberRule } from '../check';
export { DriverError, type DriverErrorCode } from '../errors';
export {
  checkFollowOptions,
  checkSessionName,
  checkSessionSpec,
  FOLLOW_LINES,
  MAX_FOLLOW_CURSOR,
  processAlive,
  sessionCommandProblem,
  sessionVariableProblem,
} from './checks';
export type {
  FollowedOutput,
  FollowOptions,
  SessionDriver,
  SessionSpec,
  SessionState,
  SessionStatus,
  StopOptions,
} from './SessionDriver';
