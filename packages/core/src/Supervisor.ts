import EventEmitter from 'eventemitter3';
import { type Actor, type ActorOptions, createActor } from 'xstate';
import { type Clock, realClock } from './Clock';
import type { ChildSpec } from './childSpec';
import type { SupervisorEventBus } from './events';
import { heartbeatEvent } from './heartbeat';
import { requireObject } from './internal/validate';
import {
  countChildren,
  deleteChild,
  restartChild,
  shutdownSupervisor,
  startChild,
  terminateChild,
  whichChildren,
} from './supervisorApi';
import { type SupervisorLogic, supervisor } from './supervisorLogic';
import type { ChildCounts, ChildInfo, SupervisorExit, SupervisorOptions } from './types';

/** Options of {@link createSupervisor}: the supervisor's own, plus how to run its root actor. */
export interface CreateSupervisorOptions<TInput = unknown> extends SupervisorOptions<TInput> {
  /** Input for the supervisor actor (passed to `children` when it is a function). */
  input?: TInput;
  /** xstate's inspection observer for the whole tree (every child actor's events and snapshots). */
  inspect?: ActorOptions<SupervisorLogic<TInput>>['inspect'];
  /** xstate's logger, used by `log()` actions in the tree. */
  logger?: (...args: unknown[]) => void;
}

/**
 * A root supervisor: the xstate actor plus what a program needs around it. Failures at the root
 * arrive as a rejected {@link Supervisor.whenStopped} promise and a `supervisor.escalated`
 * event, never as an uncaught exception.
 *
 * @example
 * ```ts
 * const sup = createSupervisor({ children: [{ id: 'worker', logic: workerMachine }] }).start();
 * sup.events.on('child.exited', (e) => console.log(e.childId, e.reason));
 * await sup.stop();
 * ```
 */
export class Supervisor<TInput = unknown> {
  /** The supervisor's actor logic. */
  readonly logic: SupervisorLogic<TInput>;
  /** The root xstate actor (for `inspect`, `system.get`, `getSnapshot`). */
  readonly actor: Actor<SupervisorLogic<TInput>>;
  /** The event bus of the whole tree. */
  readonly events: SupervisorEventBus;
  /** The clock of the whole tree (also the xstate system's clock). */
  readonly clock: Clock;
  private readonly stopped: Promise<SupervisorExit>;

  /** @param options - see {@link CreateSupervisorOptions}. @throws ConfigError for bad options. */
  constructor(options: CreateSupervisorOptions<TInput> = {}) {
    // A null or a number would be destructured into nothing (or throw a TypeError): refuse it.
    const { input, inspect, logger, ...rest } = requireObject(
      options,
      'options',
    ) as CreateSupervisorOptions<TInput>;
    this.clock = rest.clock ?? realClock;
    this.events = rest.events ?? new EventEmitter();
    const id = rest.id ?? 'supervisor';
    this.logic = supervisor<TInput>({ ...rest, id, clock: this.clock, events: this.events });
    this.actor = createActor(this.logic, {
      id,
      clock: this.clock,
      ...(input === undefined ? {} : { input }),
      ...(inspect === undefined ? {} : { inspect }),
      ...(logger === undefined ? {} : { logger }),
    });
    this.stopped = new Promise<SupervisorExit>((resolve, reject) => {
      this.actor.subscribe({
        error: reject,
        complete: () => {
          const snapshot = this.actor.getSnapshot();
          resolve(
            snapshot.status === 'done'
              ? { reason: snapshot.output.detail.reason }
              : { reason: 'killed' },
          );
        },
      });
    });
    // The rejection is delivered to whoever awaits whenStopped(); it is never "unhandled".
    this.stopped.catch(() => {});
  }

  /** Starts the supervisor and its children. @returns this, for chaining. */
  start(): this {
    this.actor.start();
    return this;
  }

  /**
   * Shuts down gracefully: children stop in reverse start order, each per its shutdown policy.
   *
   * @returns the same promise as {@link Supervisor.whenStopped}.
   */
  stop(): Promise<SupervisorExit> {
    if (this.actor.getSnapshot().status === 'active') shutdownSupervisor(this.actor);
    return this.stopped;
  }

  /** Stops the supervisor and every child at once, without shutdown budgets. */
  kill(): void {
    this.actor.stop();
  }

  /**
   * Settles when the supervisor stops: resolves with the reason after a shutdown, an
   * auto-shutdown or {@link Supervisor.kill}; rejects with the error it failed with, a
   * `SupervisorError` (for example `MAX_RESTART_INTENSITY`) or, when `children(input)` returned
   * bad specs, the `ConfigError`.
   *
   * @example
   * ```ts
   * sup.whenStopped().then(
   *   ({ reason }) => console.log('stopped:', reason),
   *   (err) => console.error('the tree failed:', err),
   * );
   * ```
   */
  whenStopped(): Promise<SupervisorExit> {
    return this.stopped;
  }

  /** See {@link whichChildren}. */
  whichChildren(): ChildInfo[] {
    return whichChildren(this.actor);
  }

  /** See {@link countChildren}. */
  countChildren(): ChildCounts {
    return countChildren(this.actor);
  }

  /** See {@link startChild}. */
  startChild(spec: ChildSpec): Promise<ChildInfo> {
    return startChild(this.actor, spec);
  }

  /** See {@link terminateChild}. */
  terminateChild(id: string): Promise<void> {
    return terminateChild(this.actor, id);
  }

  /** See {@link restartChild}. */
  restartChild(id: string): Promise<ChildInfo> {
    return restartChild(this.actor, id);
  }

  /** See {@link deleteChild}. */
  deleteChild(id: string): Promise<void> {
    return deleteChild(this.actor, id);
  }

  /**
   * Records a heartbeat for a direct child, for code outside the child that knows it is alive
   * (for example a session driver's activity callback).
   *
   * @param childId - the child's id.
   */
  heartbeat(childId: string): void {
    this.actor.send(heartbeatEvent(childId));
  }
}

/**
 * Creates a root supervisor (not yet started; call `.start()`).
 *
 * @param options - the supervisor's options plus `input`, `inspect` and `logger` for its actor.
 * @returns the {@link Supervisor} handle.
 * @throws ConfigError for bad options, naming the option and what is allowed.
 * @example
 * ```ts
 * const sup = createSupervisor({
 *   strategy: 'one_for_all',
 *   children: [
 *     { id: 'db', logic: dbMachine },
 *     { id: 'api', logic: apiMachine, backoff: { minMs: 500 } },
 *   ],
 * }).start();
 * sup.whenStopped().catch((err) => console.error('supervision tree failed', err));
 * ```
 */
export function createSupervisor<TInput = unknown>(
  options: CreateSupervisorOptions<TInput> = {},
): Supervisor<TInput> {
  return new Supervisor(options);
}
