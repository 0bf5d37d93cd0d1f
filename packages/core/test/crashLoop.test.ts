import { describe, expect, it } from 'vitest';
import {
  type CrashLoopState,
  crashLoopStep,
  DEACON_CRASH_LOOP,
  STEADY,
} from '../src/town/crashLoop';

const MIN = 60_000;
const policy = DEACON_CRASH_LOOP;

/** The state after restarts at each of `times` (ms), from steady. */
function restartsAt(times: readonly number[]): CrashLoopState {
  return times.reduce<CrashLoopState>(
    (state, at) => crashLoopStep(policy, state, { type: 'restart', at }),
    STEADY,
  );
}

describe("the Deacon's crash-loop policy (crashLoopStep)", () => {
  it('is Gas Town measured policy: 5 restarts within 15 min, over after 30 min without one', () => {
    expect(policy).toEqual({ restarts: 5, windowMs: 15 * MIN, quietMs: 30 * MIN });
  });

  it('four restarts within the window are no loop; the fifth is', () => {
    const four = restartsAt([0, MIN, 2 * MIN, 3 * MIN]);
    expect(four.kind).toBe('steady');
    const five = crashLoopStep(policy, four, { type: 'restart', at: 4 * MIN });
    expect(five).toEqual({ kind: 'looping', since: 4 * MIN, lastRestart: 4 * MIN });
  });

  it('restarts older than the window do not count', () => {
    // Five restarts, but never five within any 15 minutes.
    const state = restartsAt([0, 5 * MIN, 10 * MIN, 15 * MIN, 20 * MIN]);
    expect(state.kind).toBe('steady');
    expect(state.kind === 'steady' && state.recent).toEqual([10 * MIN, 15 * MIN, 20 * MIN]);
  });

  it('a looping Deacon stays in the loop however far apart the backoff spreads its restarts', () => {
    let state = restartsAt([0, 1, 2, 3, 4]);
    // Backoff at its maximum: a restart every 10 min, each within 30 min of the one before.
    for (let at = 10 * MIN; at <= 120 * MIN; at += 10 * MIN) {
      state = crashLoopStep(policy, state, { type: 'restart', at });
      state = crashLoopStep(policy, state, { type: 'tick', at: at + 9 * MIN });
      expect(state).toEqual({ kind: 'looping', since: 4, lastRestart: at });
    }
  });

  it('the loop is over once the Deacon has gone 30 min without a restart', () => {
    const looping = restartsAt([0, 1, 2, 3, 4]);
    expect(crashLoopStep(policy, looping, { type: 'tick', at: 4 + 30 * MIN - 1 }).kind).toBe(
      'looping',
    );
    const over = crashLoopStep(policy, looping, { type: 'tick', at: 4 + 30 * MIN });
    expect(over).toEqual(STEADY);
    // And it starts counting afresh: one restart after is no loop.
    expect(crashLoopStep(policy, over, { type: 'restart', at: 31 * MIN }).kind).toBe('steady');
  });

  it('a tick never changes a steady Deacon', () => {
    const state = restartsAt([0, MIN]);
    expect(crashLoopStep(policy, state, { type: 'tick', at: 100 * MIN })).toBe(state);
  });
});
