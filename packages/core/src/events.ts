import type EventEmitter from 'eventemitter3';
import type { AnyActorRef } from 'xstate';
import type { SupervisorError } from './errors';
import type { ExitReason } from './exit';

/** Fields on every supervisor event. */
export interface SupervisorEventBase {
  /** The path of the supervisor that emitted the event, e.g. `root/workers`. */
  supervisor: string;
  /** When it happened, from the supervisor's clock (ms). */
  at: number;
}

/** A child instance was started and is running (or starting, if it has a startup probe). */
export interface ChildStartedEvent extends SupervisorEventBase {
  type: 'child.started';
  childId: string;
  /** Restarts of this child before this start (0 for the first start). */
  restarts: number;
  ref: AnyActorRef;
}

/** A child's startup probe passed. */
export interface ChildReadyEvent extends SupervisorEventBase {
  type: 'child.ready';
  childId: string;
}

/** A child instance stopped, with the reason. */
export interface ChildExitedEvent extends SupervisorEventBase {
  type: 'child.exited';
  childId: string;
  reason: ExitReason;
  /** The error for reason `error`. */
  error?: unknown;
  /** `child`: it ended by itself (or failed); `supervisor`: the supervisor stopped it. */
  initiatedBy: 'child' | 'supervisor';
  /** Whether the supervisor will restart it because of this exit. */
  willRestart: boolean;
  /** The child failed while being started. */
  startFailed: boolean;
}

/** A restart was decided for this child (the failed child, or a sibling under a group strategy). */
export interface ChildRestartingEvent extends SupervisorEventBase {
  type: 'child.restarting';
  childId: string;
  /** The id of the child whose failure caused the restart. */
  cause: string;
  /** Restarts of this child including this one. */
  restarts: number;
}

/** A restart is being delayed by backoff. */
export interface ChildBackoffEvent extends SupervisorEventBase {
  type: 'child.backoff';
  childId: string;
  delayMs: number;
  /** The backoff step, from 0. */
  attempt: number;
  /** When the restart is due. */
  until: number;
}

/** One probe check failed (the child is not yet unhealthy unless the threshold is reached). */
export interface ChildProbeFailedEvent extends SupervisorEventBase {
  type: 'child.probeFailed';
  childId: string;
  probe: 'startup' | 'liveness';
  failures: number;
  threshold: number;
  error: unknown;
}

/** A child was declared unhealthy and will be stopped and handled as failed. */
export interface ChildUnhealthyEvent extends SupervisorEventBase {
  type: 'child.unhealthy';
  childId: string;
  probe: 'startup' | 'liveness' | 'heartbeat';
  error: SupervisorError;
}

/** A child did not stop within its shutdown budget and was stopped forcibly. */
export interface ChildKilledEvent extends SupervisorEventBase {
  type: 'child.killed';
  childId: string;
  /** The budget that ran out. */
  afterMs: number;
}

/** The supervisor started its initial children. */
export interface SupervisorStartedEvent extends SupervisorEventBase {
  type: 'supervisor.started';
  children: number;
}

/** Restart intensity was exceeded; the supervisor stops its children and fails. */
export interface SupervisorGaveUpEvent extends SupervisorEventBase {
  type: 'supervisor.gaveUp';
  /** The child whose failure went over the limit. */
  childId: string;
  maxRestarts: number;
  withinMs: number;
  /** That child's error. */
  error: unknown;
}

/** The supervisor failed; its parent (or `whenStopped()` at the root) receives the error. */
export interface SupervisorEscalatedEvent extends SupervisorEventBase {
  type: 'supervisor.escalated';
  error: SupervisorError;
}

/** The supervisor stopped without failing. */
export interface SupervisorStoppedEvent extends SupervisorEventBase {
  type: 'supervisor.stopped';
  /**
   * `shutdown`: asked to stop; `auto_shutdown`: significant children ended;
   * `killed`: stopped by xstate at once (its parent stopped it, or `actor.stop()`).
   */
  reason: 'shutdown' | 'auto_shutdown' | 'killed';
}

/** Every event a supervisor emits, discriminated by `type`. */
export type SupervisorEvent =
  | ChildStartedEvent
  | ChildReadyEvent
  | ChildExitedEvent
  | ChildRestartingEvent
  | ChildBackoffEvent
  | ChildProbeFailedEvent
  | ChildUnhealthyEvent
  | ChildKilledEvent
  | SupervisorStartedEvent
  | SupervisorGaveUpEvent
  | SupervisorEscalatedEvent
  | SupervisorStoppedEvent;

/** The event names a supervisor bus carries: each event `type`, plus `'*'` for all of them. */
export type SupervisorEventMap = {
  [K in SupervisorEvent['type']]: (event: Extract<SupervisorEvent, { type: K }>) => void;
} & {
  '*': (event: SupervisorEvent) => void;
};

/**
 * The typed event bus a supervisor emits on (an eventemitter3 emitter). Nested supervisors share
 * their parent's bus unless given their own, so one bus sees a whole tree.
 *
 * @example
 * ```ts
 * sup.events.on('child.exited', (e) => console.log(e.supervisor, e.childId, e.reason));
 * sup.events.on('*', (e) => log(e));
 * ```
 */
export type SupervisorEventBus = EventEmitter<SupervisorEventMap>;
