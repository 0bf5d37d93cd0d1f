import { isClock, realClock } from '@belfry/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// realClock is the adapter to Node's global timers, so its tests fake those globals.
describe('realClock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads Date.now() and uses the global timers, looked up at call time', () => {
    expect(realClock.now()).toBe(1_000_000);
    const fired: number[] = [];
    realClock.setTimeout(() => fired.push(realClock.now()), 250);
    vi.advanceTimersByTime(249);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([1_000_250]);
  });

  it('cancels a timer, and ignores handles it does not know', () => {
    const fired: string[] = [];
    const h = realClock.setTimeout(() => fired.push('x'), 10);
    realClock.clearTimeout(h);
    realClock.clearTimeout(undefined);
    realClock.clearTimeout({});
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([]);
  });

  it("waits longer than Node's 24.8-day timer limit instead of firing at once", () => {
    const day = 86_400_000;
    const fired: number[] = [];
    const h = realClock.setTimeout(() => fired.push(realClock.now()), 30 * day);
    vi.advanceTimersByTime(25 * day);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(5 * day);
    expect(fired).toEqual([1_000_000 + 30 * day]);
    // a chained timer can still be cancelled midway
    const fired2: string[] = [];
    const h2 = realClock.setTimeout(() => fired2.push('late'), 30 * day);
    vi.advanceTimersByTime(26 * day);
    realClock.clearTimeout(h2);
    vi.advanceTimersByTime(10 * day);
    expect(fired2).toEqual([]);
    realClock.clearTimeout(h);
  });
});

describe('isClock', () => {
  it('recognises the clock shape', () => {
    expect(isClock(realClock)).toBe(true);
    expect(isClock({ now: () => 0, setTimeout: () => 1 })).toBe(false);
    expect(isClock(null)).toBe(false);
  });
});
