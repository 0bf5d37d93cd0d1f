/**
 * The source of time for everything belfry schedules: restarts, backoff, shutdown budgets,
 * probes and heartbeats.
 *
 * A `Clock` is also a valid xstate clock (`createActor(logic, { clock })`), so one object can
 * drive both belfry's timers and the `after` delays of the machines it supervises. Times are
 * absolute milliseconds, so a deadline stored as `clock.now() + ms` keeps its meaning across a
 * process restart.
 *
 * @example
 * ```ts
 * import { realClock } from '@belfry/core';
 * const handle = realClock.setTimeout(() => console.log('tick'), 1_000);
 * realClock.clearTimeout(handle);
 * ```
 */
export interface Clock {
  /** The current time in milliseconds since the Unix epoch (or the simulation's origin). */
  now(): number;
  /**
   * Calls `callback` once, `ms` milliseconds from now.
   *
   * @returns A handle to pass to {@link Clock.clearTimeout}.
   */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a callback scheduled with {@link Clock.setTimeout}; unknown handles are ignored. */
  clearTimeout(handle: unknown): void;
}

/** Node's timers cannot wait longer than this (2^31 - 1 ms); longer waits are chained. */
const MAX_TIMER_MS = 2_147_483_647;

interface LongTimer {
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The wall clock: `Date.now()` and the global timers.
 *
 * The global `setTimeout` is looked up at call time, not captured at import, so test fakes such
 * as `vi.useFakeTimers()` keep working. Delays longer than Node's limit (about 24.8 days) are
 * chained instead of firing at once, which is what Node would otherwise do.
 *
 * @example
 * ```ts
 * import { createSupervisor, realClock } from '@belfry/core';
 * const sup = createSupervisor({ clock: realClock, children: [] });
 * ```
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(callback, ms) {
    const handle: LongTimer = { timer: undefined };
    const arm = (remaining: number) => {
      const step = Math.min(Math.max(0, remaining), MAX_TIMER_MS);
      handle.timer = globalThis.setTimeout(() => {
        if (remaining > MAX_TIMER_MS) arm(remaining - MAX_TIMER_MS);
        else callback();
      }, step);
    };
    arm(ms);
    return handle;
  },
  clearTimeout(handle) {
    const timer = (handle as LongTimer | undefined)?.timer;
    if (timer !== undefined) globalThis.clearTimeout(timer);
  },
};

/**
 * Tells whether a value has the shape of a {@link Clock} (`now`, `setTimeout`, `clearTimeout`).
 *
 * @param value - anything.
 * @returns true for a clock.
 * @example
 * ```ts
 * isClock(realClock); // true
 * isClock({ setTimeout, clearTimeout }); // false: a plain xstate clock has no now()
 * ```
 */
export function isClock(value: unknown): value is Clock {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c.now === 'function' &&
    typeof c.setTimeout === 'function' &&
    typeof c.clearTimeout === 'function'
  );
}
