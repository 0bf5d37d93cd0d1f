export { type Clock, isClock, realClock } from './Clock';
export { check, type NumberRule } from './check';
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
  BelfryError,
  type BelfryErrorOptions,
  ConfigError,
  type ConfigErrorCode,
  DriverError,
  type DriverErrorCode,
  GateError,
  type GateErrorCode,
  StoreError,
  type StoreErrorCode,
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
export type { Beads, CreateBeadInput } from './model/Beads';
export type { Convoys } from './model/Convoys';
export type { CreateGateInput, Gates } from './model/Gates';
export {
  builtinGateTypes,
  type GateType,
  githubRunGateType,
  humanGateType,
  timerGateType,
} from './model/gateTypes';
export type { Hooks } from './model/Hooks';
export { LIFECYCLE_ACTIONS, type Lifecycle } from './model/Lifecycle';
export type { CreateMoleculeInput, Molecules } from './model/Molecules';
export { DEFAULT_POLECAT_NAMES, type Polecats } from './model/Polecats';
export type { FileReportInput, Reports } from './model/Reports';
export type { Respawns } from './model/Respawns';
export type { Rigs } from './model/Rigs';
export { townSchema } from './model/schema';
export {
  createTownModel,
  DEFAULT_STATUSES,
  DEFAULT_TERMINAL_STATUSES,
  TownModel,
  type TownModelOptions,
} from './model/TownModel';
export type {
  Bead,
  CompletedStep,
  Convoy,
  Gate,
  GateEscalation,
  Hook,
  LifecycleAction,
  LifecycleClaim,
  LifecycleRequest,
  Molecule,
  MoleculeStatus,
  MoleculeStep,
  Polecat,
  PolecatExit,
  Report,
  RespawnCount,
  Rig,
  RigState,
  Severity,
  Warrant,
  WarrantOutcome,
  WarrantRelease,
} from './model/types';
export type { FileWarrantInput, Warrants } from './model/Warrants';
export { type CreateSupervisorOptions, createSupervisor, Supervisor } from './Supervisor';
export { MemoryStore, type MemoryStoreOptions } from './store/MemoryStore';
export type {
  IndexKey,
  IndexQuery,
  JsonObject,
  JsonValue,
  Store,
  StoredRecord,
  StoreSchema,
  StoreTx,
} from './store/Store';
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
export { mechanicalTriage } from './town/boot';
export { createTown, Town } from './town/createTown';
export { agentId, agentSession, checkRigName, checkTownId, TOWN_LABEL } from './town/names';
export { PATROL, PATROL_STEPS } from './town/patrol';
export { DEFAULT_TIMINGS, timingProblem } from './town/townOptions';
export type {
  AgentContext,
  AgentHook,
  AgentLaunch,
  Assessment,
  MayorMessage,
  PatrolSummary,
  PolecatStatus,
  Poller,
  RigStatus,
  Situation,
  TownEvent,
  TownEventBus,
  TownEventMap,
  TownHealth,
  TownOptions,
  TownStatus,
  TownTimings,
  UnknownSession,
} from './town/types';
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
