/**
 * The Daemon's crash-loop policy for the Deacon, as a small state machine: `steady` until the
 * `restarts`-th restart within `windowMs`, then `looping` until the Deacon has gone `quietMs`
 * without a restart. However far apart the backoff spreads the restarts, a Deacon that keeps
 * failing stays in the loop.
 */
export interface CrashLoopPolicy {
  /** Restarts within `windowMs` that make a crash loop. */
  restarts: number;
  /** The window the restarts are counted in (ms). */
  windowMs: number;
  /** How long the Deacon must go without a restart for the loop to be over (ms). */
  quietMs: number;
}

/** Gas Town's measured policy: 5 restarts within 15 min; over after 30 min without one. */
export const DEACON_CRASH_LOOP: Readonly<CrashLoopPolicy> = Object.freeze({
  restarts: 5,
  windowMs: 900_000,
  quietMs: 1_800_000,
});

/** Where the Deacon is. */
export type CrashLoopState =
  | { kind: 'steady'; recent: readonly number[] }
  | { kind: 'looping'; since: number; lastRestart: number };

/** What happened: a restart at `at`, or a look at the time `at`. */
export type CrashLoopEvent = { type: 'restart'; at: number } | { type: 'tick'; at: number };

/** The machine's start. */
export const STEADY: CrashLoopState = { kind: 'steady', recent: [] };

/**
 * The machine's one transition function: the next state after `event`. Pure: the caller keeps
 * the state (the Town facade, fed by the supervision tree's `child.restarting` events and by
 * its own looks at the time).
 *
 * @example
 * ```ts
 * let state = STEADY;
 * state = crashLoopStep(DEACON_CRASH_LOOP, state, { type: 'restart', at: clock.now() });
 * const looping = state.kind === 'looping';
 * ```
 */
export function crashLoopStep(
  policy: CrashLoopPolicy,
  state: CrashLoopState,
  event: CrashLoopEvent,
): CrashLoopState {
  if (state.kind === 'looping') {
    if (event.type === 'restart') return { ...state, lastRestart: event.at };
    return event.at - state.lastRestart >= policy.quietMs ? STEADY : state;
  }
  if (event.type === 'tick') return state;
  const recent = [...state.recent.filter((t) => t > event.at - policy.windowMs), event.at];
  return recent.length >= policy.restarts
    ? { kind: 'looping', since: event.at, lastRestart: event.at }
    : { kind: 'steady', recent };
}
