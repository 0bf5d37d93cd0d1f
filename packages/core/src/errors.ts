/** Codes carried by {@link SupervisorError}. */
export type SupervisorErrorCode =
  /** `startChild` was given an id whose spec exists but is not running. */
  | 'ALREADY_PRESENT'
  /** `startChild` was given the id of a running child. */
  | 'ALREADY_STARTED'
  /** No child spec has that id. */
  | 'NOT_FOUND'
  /** The operation needs the child stopped, and it is running or starting. */
  | 'RUNNING'
  /** The operation needs the child stopped, and a restart of it is pending. */
  | 'RESTARTING'
  /** `startChild` would exceed the supervisor's `maxChildren`. */
  | 'MAX_CHILDREN'
  /** A child could not be started: its logic threw while being created or started. */
  | 'START_FAILED'
  /** The supervisor is shutting down and takes no new work. */
  | 'SHUTTING_DOWN'
  /** The supervisor actor is not running (never started, stopped, or failed). */
  | 'NOT_RUNNING'
  /** More restarts than `maxRestarts` happened within `withinMs`; the supervisor failed. */
  | 'MAX_RESTART_INTENSITY'
  /** A startup or liveness probe failed `failureThreshold` times in a row. */
  | 'PROBE_FAILED'
  /** A child sent no heartbeat within its interval plus grace period. */
  | 'HEARTBEAT_MISSED'
  /** A defect inside belfry; the supervisor stopped its children and failed instead of throwing. */
  | 'INTERNAL';

/** Codes carried by {@link ConfigError}. */
export type ConfigErrorCode =
  /** An option has a value of the wrong type or out of range. */
  | 'INVALID_OPTION'
  /** An option name is not one belfry knows (often a typo). */
  | 'UNKNOWN_OPTION'
  /** A required option is missing. */
  | 'MISSING_OPTION'
  /** Two child specs share an id. */
  | 'DUPLICATE_ID'
  /** Options that are each valid but not together (for example a permanent significant child). */
  | 'BAD_COMBINATION';

/** Codes carried by {@link StoreError}. */
export type StoreErrorCode =
  /** No record has that id (an unknown rig, bead, gate, …). */
  | 'NOT_FOUND'
  /** A record with that id already exists. */
  | 'DUPLICATE_ID'
  /** The record is not in a state that allows the change (e.g. parking a docked rig). */
  | 'INVALID_TRANSITION'
  /** Someone else got there first: a stale claim token, step or epoch. */
  | 'CONFLICT'
  /** The value cannot be stored: not plain JSON, or an id with characters ids may not have. */
  | 'INVALID_RECORD'
  /** The collection or index is not in the store's schema. */
  | 'UNKNOWN_COLLECTION'
  /** The stored data was written by a newer schema version than this code knows. */
  | 'SCHEMA_TOO_NEW'
  /** The stored data is damaged or is not a belfry store. */
  | 'CORRUPT'
  /** Another process holds the store. */
  | 'LOCKED'
  /** The store's file could not be opened, read or written (missing folder, permissions, disk full). */
  | 'IO'
  /** The store was closed. */
  | 'CLOSED'
  /** The store's file is not there, and it was not to be created (a store that was made once). */
  | 'MISSING'
  /** The store's file was removed or replaced by another while the store had it open. */
  | 'REPLACED';

/** Codes carried by {@link DriverError}. */
export type DriverErrorCode =
  /** A session name with characters a driver does not accept. */
  | 'INVALID_NAME'
  /** A session spec that is malformed (no command, bad env, …). */
  | 'INVALID_SPEC'
  /** A session with that name is running with another epoch; stop it first. */
  | 'EXISTS'
  /** The session is not running (exited or missing). */
  | 'NOT_RUNNING'
  /** The session could not be started, or died while starting. */
  | 'START_FAILED'
  /** A nudge could not be delivered (or its delivery not verified). */
  | 'NUDGE_FAILED'
  /** The operation did not finish in time. */
  | 'TIMEOUT'
  /** The driver's backend is not available (no tmux server, closed driver, …). */
  | 'UNAVAILABLE';

/** Codes carried by {@link GateError}. */
export type GateErrorCode =
  /** The evaluator did not answer within the Deacon's time limit. */
  | 'TIMEOUT'
  /** The evaluator threw, rejected, or answered something that is not a decision. */
  | 'EVALUATOR_FAILED'
  /** No evaluator is registered for the gate's type. */
  | 'NO_EVALUATOR'
  /** The evaluator is not attached to a started town, so it cannot act on gates yet. */
  | 'NOT_ATTACHED'
  /** No attached town has a gate with that id. */
  | 'NOT_FOUND'
  /** The gate is of another type than the evaluator asked to act on it. */
  | 'WRONG_TYPE'
  /** The gate is closed already; it closes once. */
  | 'CLOSED'
  /** Whoever asked is not allowed to (not among the gate's approvers). */
  | 'NOT_ALLOWED'
  /** The evaluator's credentials were refused by the service it asks (a bad or expired token). */
  | 'UNAUTHORIZED'
  /** The service the evaluator asks has been failing (network errors, 5xx) for a while. */
  | 'UNAVAILABLE';

/** The options every belfry error takes. */
export interface BelfryErrorOptions<TCode extends string> {
  code: TCode;
  message: string;
  cause?: unknown;
}

/**
 * What every belfry error is: an Error with a stable `code` to branch on, a message that says what
 * happened (and what is allowed), and the underlying cause. Catch it to handle any of them.
 *
 * @example
 * ```ts
 * try {
 *   await town.sling(beadId, 'api');
 * } catch (err) {
 *   if (err instanceof BelfryError) console.error(`${err.name} ${err.code}: ${err.message}`);
 * }
 * ```
 */
export class BelfryError<TCode extends string = string> extends Error {
  /** What went wrong, as a stable string to branch on. */
  readonly code: TCode;

  /** @param options - the code, a message that says what happened, and the underlying cause. */
  constructor(options: BelfryErrorOptions<TCode>) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
  }
}

/**
 * Raised by a supervisor: a rejected admin call (`startChild`, `terminateChild`, …), a child
 * found unhealthy, or the supervisor itself failing after too many restarts.
 *
 * @example
 * ```ts
 * try {
 *   await sup.deleteChild('worker');
 * } catch (err) {
 *   if (err instanceof SupervisorError && err.code === 'RUNNING') {
 *     await sup.terminateChild('worker');
 *   }
 * }
 * ```
 */
export class SupervisorError extends BelfryError<SupervisorErrorCode> {
  override readonly name = 'SupervisorError';
}

/**
 * Raised for bad options: the message names the option (as a path such as
 * `children[2].restart`), what was given, and what is allowed.
 *
 * @example
 * ```ts
 * try {
 *   supervisor({ strategy: 'one_for_none' as never });
 * } catch (err) {
 *   if (err instanceof ConfigError) console.error(err.path, err.message);
 * }
 * ```
 */
export class ConfigError extends BelfryError<ConfigErrorCode> {
  override readonly name = 'ConfigError';
  /** Where the bad value sits in the options, for example `children[1].backoff.factor`. */
  readonly path: string;

  /** @param options - the code, the option path, a message, and an optional cause. */
  constructor(options: BelfryErrorOptions<ConfigErrorCode> & { path: string }) {
    super(options);
    this.path = options.path;
  }
}

/**
 * Raised by a store or the town model: a missing record, a duplicate id, a change its current
 * state does not allow, a lost claim race. The message names the record and says what is
 * allowed. The transaction it happened in is rolled back, so nothing is half-written.
 *
 * @example
 * ```ts
 * try {
 *   await model.rigs.park('api');
 * } catch (err) {
 *   if (err instanceof StoreError && err.code === 'INVALID_TRANSITION') console.error(err.message);
 * }
 * ```
 */
export class StoreError extends BelfryError<StoreErrorCode> {
  override readonly name = 'StoreError';
}

/**
 * Raised by a session driver: a bad name, a start that failed, a nudge that did not arrive, a
 * backend that is not there. The message says which session and what is allowed.
 *
 * @example
 * ```ts
 * try {
 *   await driver.nudge('api-toast', 'check your hook');
 * } catch (err) {
 *   if (err instanceof DriverError && err.code === 'NOT_RUNNING') await restart();
 * }
 * ```
 */
export class DriverError extends BelfryError<DriverErrorCode> {
  override readonly name = 'DriverError';
}

/**
 * Raised about gate evaluation: an evaluator that timed out, failed, or answered nonsense, or a
 * gate whose type has no evaluator. The Deacon turns these into one escalation per incident;
 * the gates concerned stay open.
 *
 * @example
 * ```ts
 * town.events.on('gate.evaluatorFailed', (e) => {
 *   if (e.error instanceof GateError && e.error.code === 'TIMEOUT') console.warn(e.type, 'is slow');
 * });
 * ```
 */
export class GateError extends BelfryError<GateErrorCode> {
  override readonly name = 'GateError';
}
