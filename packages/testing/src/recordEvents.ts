import type { SupervisorEvent, SupervisorEventBus } from '@belfry/core';

/** What {@link recordEvents} returns. */
export interface EventRecorder {
  /** Every event seen so far, in order. */
  readonly events: SupervisorEvent[];
  /** The events of one type. */
  ofType<T extends SupervisorEvent['type']>(type: T): Array<Extract<SupervisorEvent, { type: T }>>;
  /** Compact one-line descriptions (`type supervisor/child reason`), handy in assertions. */
  lines(): string[];
  /** Forgets what was recorded. */
  clear(): void;
  /** Stops recording. */
  stop(): void;
}

/**
 * Records every event on a supervisor bus, for assertions in tests.
 *
 * @param bus - the bus (`sup.events`).
 * @returns the recorder.
 * @example
 * ```ts
 * const rec = recordEvents(sup.events);
 * // ... crash a child ...
 * expect(rec.ofType('child.restarting').map((e) => e.childId)).toEqual(['a']);
 * ```
 */
export function recordEvents(bus: SupervisorEventBus): EventRecorder {
  const events: SupervisorEvent[] = [];
  const listener = (event: SupervisorEvent) => {
    events.push(event);
  };
  bus.on('*', listener);
  return {
    events,
    ofType: (type) => events.filter((e) => e.type === type) as never,
    lines: () => events.map(describeEvent),
    clear: () => {
      events.length = 0;
    },
    stop: () => {
      bus.off('*', listener);
    },
  };
}

function describeEvent(e: SupervisorEvent): string {
  switch (e.type) {
    case 'child.exited':
      return `${e.type} ${e.supervisor}/${e.childId} ${e.reason}${e.willRestart ? ' restart' : ''}`;
    case 'child.started':
    case 'child.ready':
    case 'child.restarting':
    case 'child.backoff':
    case 'child.probeFailed':
    case 'child.unhealthy':
    case 'child.killed':
      return `${e.type} ${e.supervisor}/${e.childId}`;
    case 'supervisor.stopped':
      return `${e.type} ${e.supervisor} ${e.reason}`;
    default:
      return `${e.type} ${e.supervisor}`;
  }
}
