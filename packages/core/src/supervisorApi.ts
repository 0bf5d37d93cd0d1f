import type { ActorRef, AnyActorRef, EventObject } from 'xstate';
import type { ChildSpec } from './childSpec';
import { ConfigError, SupervisorError } from './errors';
import type { SupervisorEventBus } from './events';
import { SHUTDOWN_EVENT_TYPE } from './exit';
import {
  COMMAND,
  type CommandEvent,
  coreOf,
  type Reply,
  type SupervisorCore,
} from './internal/SupervisorCore';
import { describe } from './internal/validate';
import type { SupervisorSnapshot } from './supervisorLogic';
import type { ChildCounts, ChildInfo } from './types';

/** A reference to a running supervisor actor: a root, an invoked one, or a nested child. */
export type SupervisorRef = ActorRef<SupervisorSnapshot, EventObject>;

function requireCore(ref: AnyActorRef, what: string): SupervisorCore {
  const core = coreOf(ref);
  if (!core) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'supervisor',
      message: `${what}: expected a belfry supervisor actor (made from supervisor() or createSupervisor()); got actor ${describe(ref?.id)}`,
    });
  }
  return core;
}

type CommandWithoutReply = CommandEvent extends infer C
  ? C extends unknown
    ? Omit<C, 'reply' | 'type'>
    : never
  : never;

function command<T>(ref: AnyActorRef, body: CommandWithoutReply): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let core: SupervisorCore;
    try {
      core = requireCore(ref, body.op);
    } catch (error) {
      reject(error);
      return;
    }
    const status = ref.getSnapshot()?.status;
    if (status !== 'active' || core.finished) {
      reject(
        new SupervisorError({
          code: 'NOT_RUNNING',
          message: `cannot ${body.op}: supervisor ${core.path} is not running (status ${status})`,
        }),
      );
      return;
    }
    const reply: Reply<unknown> = { resolve: resolve as (value: unknown) => void, reject };
    const event: CommandEvent = { type: COMMAND, ...body, reply } as CommandEvent;
    ref.send(event);
  });
}

/**
 * Adds a child to a running supervisor and starts it (OTP's `start_child`).
 *
 * @param sup - the supervisor actor.
 * @param spec - the new child's spec; its id must be new.
 * @returns the child's info once it is started.
 * Rejects with a `ConfigError` for a bad spec, or a `SupervisorError` coded `ALREADY_STARTED`,
 * `ALREADY_PRESENT`, `MAX_CHILDREN`, `START_FAILED` (the spec is not kept), `SHUTTING_DOWN` or
 * `NOT_RUNNING`.
 * @example
 * ```ts
 * const info = await startChild(supRef, { id: 'polecat-7', logic: polecat, restart: 'transient' });
 * ```
 */
export function startChild(sup: SupervisorRef | AnyActorRef, spec: ChildSpec): Promise<ChildInfo> {
  return command<ChildInfo>(sup, { op: 'startChild', spec });
}

/**
 * Stops a child per its shutdown policy and keeps its spec (OTP's `terminate_child`); a
 * temporary child's spec is removed. A pending restart of the child is cancelled.
 *
 * @param sup - the supervisor actor.
 * @param id - the child's id.
 * @returns resolves once the child has stopped. Rejects with `NOT_FOUND`, `SHUTTING_DOWN` or
 * `NOT_RUNNING`.
 * @example
 * ```ts
 * await terminateChild(supRef, 'polecat-7');
 * ```
 */
export function terminateChild(sup: SupervisorRef | AnyActorRef, id: string): Promise<void> {
  return command<void>(sup, { op: 'terminateChild', id });
}

/**
 * Starts a stopped child again from its spec (OTP's `restart_child`) and resets its backoff.
 *
 * @param sup - the supervisor actor.
 * @param id - the child's id.
 * @returns the child's info once started. Rejects with `NOT_FOUND`, `RUNNING`, `RESTARTING`,
 * `START_FAILED` (the spec is kept, stopped), `SHUTTING_DOWN` or `NOT_RUNNING`.
 * @example
 * ```ts
 * await restartChild(supRef, 'polecat-7');
 * ```
 */
export function restartChild(sup: SupervisorRef | AnyActorRef, id: string): Promise<ChildInfo> {
  return command<ChildInfo>(sup, { op: 'restartChild', id });
}

/**
 * Removes a stopped child's spec (OTP's `delete_child`).
 *
 * @param sup - the supervisor actor.
 * @param id - the child's id.
 * @returns resolves once removed. Rejects with `NOT_FOUND`, `RUNNING`, `RESTARTING`,
 * `SHUTTING_DOWN` or `NOT_RUNNING`.
 * @example
 * ```ts
 * await terminateChild(supRef, 'old');
 * await deleteChild(supRef, 'old');
 * ```
 */
export function deleteChild(sup: SupervisorRef | AnyActorRef, id: string): Promise<void> {
  return command<void>(sup, { op: 'deleteChild', id });
}

/**
 * Lists a supervisor's children in start order, with state, restart count and last exit
 * (OTP's `which_children`). Works on a stopped supervisor too (everything is `stopped`).
 *
 * @param sup - the supervisor actor.
 * @returns one entry per child spec.
 * @throws ConfigError when `sup` is not a belfry supervisor.
 * @example
 * ```ts
 * for (const c of whichChildren(supRef)) console.log(c.id, c.state, c.restarts);
 * ```
 */
export function whichChildren(sup: SupervisorRef | AnyActorRef): ChildInfo[] {
  return requireCore(sup, 'whichChildren').whichChildren();
}

/**
 * Counts a supervisor's children by kind and state (OTP's `count_children`).
 *
 * @param sup - the supervisor actor.
 * @returns the counts.
 * @throws ConfigError when `sup` is not a belfry supervisor.
 * @example
 * ```ts
 * const { active, backoff } = countChildren(supRef);
 * ```
 */
export function countChildren(sup: SupervisorRef | AnyActorRef): ChildCounts {
  return requireCore(sup, 'countChildren').countChildren();
}

/**
 * The event bus a supervisor emits on (shared with its parent supervisor, if any).
 *
 * @param sup - the supervisor actor.
 * @returns the bus.
 * @throws ConfigError when `sup` is not a belfry supervisor.
 * @example
 * ```ts
 * supervisorEvents(supRef).on('child.exited', (e) => console.log(e.childId, e.reason));
 * ```
 */
export function supervisorEvents(sup: SupervisorRef | AnyActorRef): SupervisorEventBus {
  return requireCore(sup, 'supervisorEvents').bus;
}

/**
 * Asks a supervisor to shut down gracefully: its children are stopped in reverse start order,
 * each per its shutdown policy, then the supervisor finishes (`done`). Same as sending it
 * `{ type: 'belfry.shutdown' }`.
 *
 * @param sup - the supervisor actor.
 * @example
 * ```ts
 * shutdownSupervisor(supRef);
 * await waitFor(supRef, (s) => s.status === 'done');
 * ```
 */
export function shutdownSupervisor(sup: SupervisorRef | AnyActorRef): void {
  requireCore(sup, 'shutdownSupervisor');
  sup.send({ type: SHUTDOWN_EVENT_TYPE });
}
