export { type Clock, isClock, realClock } from './Clock';
export type {
  BackoffOptions,
  ChildSpec,
  HeartbeatOptions,
  InputContext,
  ProbeContext,
  ProbeOptions,
  ProbesOptions,
  RestartType,
  ShutdownPolicy,
} from './childSpec';
export { child } from './childSpec';
export {
  type BelfryErrorOptions,
  ConfigError,
  type ConfigErrorCode,
  SupervisorError,
  type SupervisorErrorCode,
} from './errors';
export type {
  ChildBackoffEvent,
  ChildExitedEvent,
  ChildKilledEvent,
  ChildProbeFailedEvent,
  ChildReadyEvent,
  ChildRestartingEvent,
  ChildStartedEvent,
  ChildUnhealthyEvent,
  SupervisorEscalatedEvent,
  SupervisorEvent,
  SupervisorEventBase,
  SupervisorEventBus,
  SupervisorEventMap,
  SupervisorGaveUpEvent,
  SupervisorStartedEvent,
  SupervisorStoppedEvent,
} from './events';
export {
  type ExitReason,
  isShutdownExit,
  SHUTDOWN_EVENT_TYPE,
  type ShutdownExit,
  shutdownExit,
} from './exit';
export { HEARTBEAT_EVENT_TYPE, type HeartbeatEvent, heartbeat, heartbeatEvent } from './heartbeat';
export { type CreateSupervisorOptions, createSupervisor, Supervisor } from './Supervisor';
export {
  countChildren,
  deleteChild,
  restartChild,
  type SupervisorRef,
  shutdownSupervisor,
  startChild,
  supervisorEvents,
  terminateChild,
  whichChildren,
} from './supervisorApi';
export {
  type SupervisorInternals,
  type SupervisorLogic,
  type SupervisorSnapshot,
  supervisor,
} from './supervisorLogic';
export type {
  AutoShutdown,
  ChildCounts,
  ChildExit,
  ChildInfo,
  ChildState,
  Strategy,
  SupervisorExit,
  SupervisorOptions,
  SupervisorOutput,
} from './types';
