// `@belfry/core/driver`: what a session driver implements.
export { DriverError, type DriverErrorCode } from '../errors';
export {
  checkSessionName,
  checkSessionSpec,
  processAlive,
  sessionCommandProblem,
  sessionVariableProblem,
} from './checks';
export type {
  SessionDriver,
  SessionSpec,
  SessionState,
  SessionStatus,
  StopOptions,
} from './SessionDriver';
