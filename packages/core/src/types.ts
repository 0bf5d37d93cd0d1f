import type { AnyActorRef } from 'xstate';
import type { Clock } from './Clock';
import type { ChildSpec, RestartType, ShutdownPolicy } from './childSpec';
import type { SupervisorEventBus } from './events';
import type { ExitReason, ShutdownExit } from './exit';

/**
 * Which children are restarted when one fails.
 *
 * - `one_for_one`: only the failed child.
 * - `one_for_all`: every running child is stopped (in reverse start order) and all are started
 *   again (in start order).
 * - `rest_for_one`: the children started after the failed one are stopped (in reverse order),
 *   then the failed child and those after it are started again (in order).
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/**
 * Whether the exit of significant children stops the supervisor (OTP's `auto_shutdown`).
 *
 * - `never`: it does not (and no child may be significant).
 * - `any_significant`: the supervisor shuts down when any significant child exits by itself
 *   and is not restarted.
 * - `all_significant`: it shuts down once no significant child is left running.
 */
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant';

/**
 * Options of a supervisor.
 *
 * @example
 * ```ts
 * const logic = supervisor({
 *   id: 'workers',
 *   strategy: 'rest_for_one',
 *   maxRestarts: 5,
 *   withinMs: 30_000,
 *   children: [
 *     { id: 'db', logic: dbMachine },
 *     { id: 'api', logic: apiMachine },
 *   ],
 * });
 * ```
 */
export interface SupervisorOptions<TInput = unknown> {
  /**
   * The supervisor's name in events (`supervisor` field) and, for a root created with
   * `createSupervisor`, its xstate actor id.
   * @defaultValue the actor's xstate id (`'supervisor'` for `createSupervisor`)
   */
  id?: string;
  /**
   * @defaultValue 'one_for_one'
   */
  strategy?: Strategy;
  /**
   * More than this many restarts within `withinMs` makes the supervisor stop every child and
   * fail with `MAX_RESTART_INTENSITY`. 0 means any restart fails it.
   * @defaultValue 3
   */
  maxRestarts?: number;
  /**
   * The sliding window for `maxRestarts`.
   * @defaultValue 5_000 (ms)
   */
  withinMs?: number;
  /**
   * @defaultValue 'never'
   */
  autoShutdown?: AutoShutdown;
  /**
   * The most child specs the supervisor holds; `startChild` beyond it is rejected with
   * `MAX_CHILDREN`.
   * @defaultValue Infinity
   */
  maxChildren?: number;
  /**
   * The children started, in order, when the supervisor starts. A function receives the
   * supervisor actor's input, so an invoking machine can choose the children.
   * @defaultValue []
   */
  children?: ReadonlyArray<ChildSpec> | ((input: TInput) => ReadonlyArray<ChildSpec>);
  /**
   * The clock for restarts, backoff, budgets and probes.
   * @defaultValue the parent supervisor's clock; else the xstate system's clock if it has
   * `now()` (for example xstate's `SimulatedClock`); else `realClock`
   */
  clock?: Clock;
  /**
   * Where lifecycle events go.
   * @defaultValue the parent supervisor's bus; else a new bus
   */
  events?: SupervisorEventBus;
  /**
   * The random source for backoff jitter, returning numbers in [0, 1).
   * @defaultValue the parent supervisor's source; else `Math.random`
   */
  random?: () => number;
}

/** The state of a child as `whichChildren()` reports it. */
export type ChildState =
  /** Running, and its startup probe has not passed yet. */
  | 'starting'
  /** Running. */
  | 'running'
  /** Stopped, with a restart decided and about to happen (or siblings being stopped first). */
  | 'restarting'
  /** Stopped, waiting out a backoff delay before its restart. */
  | 'backoff'
  /** Stopped and not going to be restarted (until `restartChild` or a group restart). */
  | 'stopped';

/** The last exit of a child. */
export interface ChildExit {
  reason: ExitReason;
  /** When it exited (clock ms). */
  at: number;
  /** The error, for reason `error`. */
  error?: unknown;
}

/** One child, as `whichChildren()` reports it. */
export interface ChildInfo {
  id: string;
  state: ChildState;
  /** `supervisor` for a belfry supervisor child, otherwise `worker`. */
  type: 'worker' | 'supervisor';
  restart: RestartType;
  shutdown: ShutdownPolicy;
  significant: boolean;
  /** Times the supervisor has restarted this child. */
  restarts: number;
  /** The running actor, when there is one. */
  ref: AnyActorRef | undefined;
  /** When the current (or last) instance started. */
  startedAt: number | undefined;
  /** When a pending backoff restart is due (state `backoff`). */
  backoffUntil: number | undefined;
  lastExit: ChildExit | undefined;
}

/** Counts of a supervisor's children (OTP's `count_children`, with belfry's states). */
export interface ChildCounts {
  /** All child specs. */
  specs: number;
  /** Children with a running actor (`starting` or `running`). */
  active: number;
  /** Specs whose logic is a belfry supervisor. */
  supervisors: number;
  /** Specs of other logic. */
  workers: number;
  starting: number;
  running: number;
  restarting: number;
  backoff: number;
  stopped: number;
}

/**
 * Why a supervisor finished without failing: it was asked to (`shutdown`), its significant
 * children ended (`auto_shutdown`), or xstate stopped it at once (`killed`).
 */
export interface SupervisorExit {
  reason: 'shutdown' | 'auto_shutdown' | 'killed';
}

/**
 * A supervisor's output when it finishes normally. It is a {@link ShutdownExit}, so a parent
 * supervisor records the exit with reason `shutdown`.
 */
export type SupervisorOutput = ShutdownExit<{ reason: 'shutdown' | 'auto_shutdown' }>;
