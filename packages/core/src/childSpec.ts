import type { AnyActorLogic, AnyActorRef, EventObject, InputFrom } from 'xstate';

/**
 * When a child that stopped is started again, judged by its exit reason (OTP's rules).
 *
 * - `permanent`: always restarted.
 * - `transient`: restarted only after an abnormal exit (`error`); `normal` and `shutdown`
 *   exits leave it stopped.
 * - `temporary`: never restarted, not even when a sibling's failure takes it down under
 *   `one_for_all` or `rest_for_one`; its spec is removed once it stops.
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/**
 * How a child is stopped by its supervisor.
 *
 * - `'brutal'`: stopped at once (xstate's stop: exit actions, callback cleanups and promise
 *   abort signals run, the machine gets no chance to finish its work).
 * - a number of milliseconds: the child is sent its `shutdownEvent` and given that long to
 *   finish by itself; after that it is stopped at once and a `child.killed` event is emitted.
 * - `'infinity'`: the child is sent its `shutdownEvent` and waited for without limit. Meant for
 *   sub-supervisors, which stop their own children first.
 */
export type ShutdownPolicy = 'brutal' | 'infinity' | number;

/**
 * Exponential backoff between restarts of one child. The delay before restart `n` (counting
 * from 0) is `min(maxMs, minMs * factor^n)`, spread by `jitter`; the count resets once the
 * child has stayed up for `resetAfterMs`. Backoff composes with restart intensity: every restart
 * still counts against `maxRestarts` at the moment it is decided.
 */
export interface BackoffOptions {
  /**
   * The first delay.
   * @defaultValue 100 (ms)
   */
  minMs?: number;
  /**
   * The largest delay.
   * @defaultValue 30_000 (ms)
   */
  maxMs?: number;
  /**
   * The growth per consecutive restart; at least 1.
   * @defaultValue 2
   */
  factor?: number;
  /**
   * Random spread, as a fraction of the delay: a delay `d` becomes a value in
   * `[d * (1 - jitter), d * (1 + jitter)]`, capped at `maxMs`. Between 0 and 1.
   * @defaultValue 0.2
   */
  jitter?: number;
  /**
   * Uptime after which the child counts as stable and its next restart starts again from `minMs`.
   * @defaultValue 60_000 (ms)
   */
  resetAfterMs?: number;
}

/** What a probe's `check` receives. */
export interface ProbeContext {
  /** The child's id. */
  id: string;
  /** The running child actor being checked. */
  ref: AnyActorRef;
  /** Aborted when the check times out or the child stops; pass it to I/O the check does. */
  signal: AbortSignal;
  /** How many times this child has been restarted. */
  restarts: number;
}

/**
 * A health check run on a schedule, shaped after Kubernetes' probes.
 *
 * A check passes when it returns (or resolves to) `true`. Returning `false`, any other value,
 * throwing, rejecting, or not settling within `timeoutMs` are failures. After
 * `failureThreshold` failures in a row the child is declared unhealthy: it is stopped per its
 * `shutdown` policy and handled like a child that failed (reason `error`).
 */
export interface ProbeOptions {
  /** The check. May be synchronous or return a promise. */
  check: (context: ProbeContext) => boolean | PromiseLike<boolean>;
  /**
   * Time from the end of one check (it settled or timed out) to the start of the next, so checks
   * never overlap.
   * @defaultValue 10_000 (ms)
   */
  periodMs?: number;
  /**
   * How long one check may take before it counts as failed (its signal is then aborted).
   * @defaultValue 1_000 (ms)
   */
  timeoutMs?: number;
  /**
   * Consecutive failures that make the child unhealthy; at least 1.
   * @defaultValue 3
   */
  failureThreshold?: number;
  /**
   * Delay before the first check. For a liveness probe the default is one `periodMs` after the
   * child is ready; for a startup probe it is 0 (check as soon as the child starts).
   */
  initialDelayMs?: number;
}

/**
 * A heartbeat the child must send (see `heartbeat()`), so that a child that is alive but stuck
 * is found. Monitoring starts when the child is ready; a child is unhealthy when no beat arrives
 * within `intervalMs + graceMs` of the previous one (or of becoming ready).
 */
export interface HeartbeatOptions {
  /** How often the child promises to beat, in ms. */
  intervalMs: number;
  /**
   * Extra slack on top of `intervalMs` before the child is declared unhealthy.
   * @defaultValue the value of `intervalMs`
   */
  graceMs?: number;
}

/** Health checks for one child. */
export interface ProbesOptions {
  /**
   * Gates readiness: the child is `starting` until this passes, and liveness and heartbeat
   * monitoring begin only then. Failing it `failureThreshold` times is a failed start.
   */
  startup?: ProbeOptions;
  /** Runs every `periodMs` while the child is running; finds a child that is alive but hung. */
  liveness?: ProbeOptions;
  /** Requires the child to send heartbeats. */
  heartbeat?: HeartbeatOptions;
}

/** What `getInput` receives each time a child is (re)started. */
export interface InputContext {
  /** The child's id. */
  id: string;
  /** How many times the child has been restarted before this start. */
  restarts: number;
}

/**
 * One child of a supervisor: which actor logic to run and how to treat it when it stops.
 *
 * @typeParam TLogic - the child's xstate actor logic (machine, `fromPromise`, `fromCallback`,
 *   another supervisor, …).
 * @example
 * ```ts
 * const spec: ChildSpec = {
 *   id: 'fetcher',
 *   logic: fetcherMachine,
 *   restart: 'transient',
 *   shutdown: 2_000,
 *   backoff: { minMs: 200, maxMs: 10_000 },
 * };
 * ```
 */
export interface ChildSpec<TLogic extends AnyActorLogic = AnyActorLogic> {
  /** Unique among the supervisor's children; also the child actor's xstate `id`. */
  id: string;
  /** The actor logic to run. */
  logic: TLogic;
  /** Input passed on every start. Give either `input` or `getInput`, not both. */
  input?: InputFrom<TLogic>;
  /** Computes the input for each start; useful to pass the restart count or fresh state. */
  getInput?: (context: InputContext) => InputFrom<TLogic>;
  /** Registers the child in the xstate system under this id (`system.get(systemId)`). */
  systemId?: string;
  /**
   * When to restart the child.
   * @defaultValue 'permanent'
   */
  restart?: RestartType;
  /**
   * How to stop the child.
   * @defaultValue `'infinity'` for a belfry supervisor, `5_000` (ms) for an xstate machine, and
   * `'brutal'` for other logic (promise, callback, observable actors cannot finish on request;
   * xstate's stop already runs their cleanup).
   */
  shutdown?: ShutdownPolicy;
  /**
   * The event sent to ask the child to stop (for numeric and `'infinity'` shutdown).
   * @defaultValue `{ type: 'belfry.shutdown' }`
   */
  shutdownEvent?: EventObject;
  /**
   * Whether the child's own exit can shut the supervisor down (see the supervisor's
   * `autoShutdown`). Only `transient` and `temporary` children may be significant.
   * @defaultValue false
   */
  significant?: boolean;
  /**
   * Delay restarts of this child with exponential backoff. Without it, restarts are immediate
   * (OTP's behaviour).
   * @defaultValue undefined (no backoff)
   */
  backoff?: BackoffOptions;
  /** Health checks that find a child that is alive but not working. */
  probes?: ProbesOptions;
}

/**
 * Declares a child spec with its input typed from its logic.
 *
 * @param spec - the child spec.
 * @returns the same spec, typed for a supervisor's `children`.
 * @example
 * ```ts
 * const worker = child({ id: 'w1', logic: workerMachine, input: { queue: 'jobs' } });
 * ```
 */
export function child<TLogic extends AnyActorLogic>(spec: ChildSpec<TLogic>): ChildSpec {
  return spec as ChildSpec;
}
