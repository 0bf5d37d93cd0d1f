import {
  type ActionFunction,
  type EventObject,
  type MachineContext,
  type ParameterizedObject,
  sendParent,
} from 'xstate';

/** The event type a child sends its supervisor to prove it is working. */
export const HEARTBEAT_EVENT_TYPE = 'belfry.heartbeat';

/** The heartbeat event; `childId` is the child's id in its supervisor (its xstate `id`). */
export interface HeartbeatEvent {
  type: typeof HEARTBEAT_EVENT_TYPE;
  childId: string;
}

/**
 * Builds a heartbeat event, for children that are not machines.
 *
 * @param childId - the sending child's id (`self.id` inside the child).
 * @returns the event to send to the supervisor.
 * @example
 * ```ts
 * const pinger = fromCallback(({ sendBack, self }) => {
 *   const timer = setInterval(() => sendBack(heartbeatEvent(self.id)), 1_000);
 *   return () => clearInterval(timer);
 * });
 * ```
 */
export function heartbeatEvent(childId: string): HeartbeatEvent {
  return { type: HEARTBEAT_EVENT_TYPE, childId };
}

/**
 * An xstate action that sends a heartbeat to the child's supervisor. Use it in a machine whose
 * child spec has `probes.heartbeat`.
 *
 * @returns a `sendParent` action.
 * @example
 * ```ts
 * createMachine({
 *   initial: 'working',
 *   states: { working: { on: { PROGRESS: { actions: heartbeat() } } } },
 * });
 * ```
 */
export function heartbeat<
  TContext extends MachineContext,
  TExpressionEvent extends EventObject,
  TParams extends ParameterizedObject['params'] | undefined,
  TEvent extends EventObject,
  TDelay extends string = never,
>(): ActionFunction<
  TContext,
  TExpressionEvent,
  TEvent,
  TParams,
  never,
  never,
  never,
  TDelay,
  never
> {
  return sendParent<TContext, TExpressionEvent, TParams, HeartbeatEvent, TEvent, TDelay>(
    ({ self }) => heartbeatEvent(self.id),
  );
}
