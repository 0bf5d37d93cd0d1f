import { type BackoffOptions, type ChildBackoffEvent, SupervisorError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { cb, type Harness, harness, type Log } from './helpers';

const BACKOFF: BackoffOptions = { minMs: 100, maxMs: 1_000, factor: 2, jitter: 0 };
/** Limits loose enough that restart intensity never interferes. */
const LOOSE = { maxRestarts: 1_000, withinMs: 10_000_000 };

/** Crashes the running instance of `id` and lets the supervisor react. */
async function crash(h: Harness, id: string): Promise<void> {
  h.ref(id).send({ type: 'CRASH' });
  await h.clock.advance(0);
}

function info(h: Harness, id: string) {
  const found = h.sup.whichChildren().find((c) => c.id === id);
  if (!found) throw new Error(`no child ${id}`);
  return found;
}

function lastBackoff(h: Harness): ChildBackoffEvent | undefined {
  return h.rec.ofType('child.backoff').at(-1);
}

/**
 * Crashes `id`, checks it waits in `backoff` until exactly the announced time and then runs.
 * @returns the delay it waited.
 */
async function crashAndWait(h: Harness, id: string): Promise<number> {
  const at = h.clock.now();
  const before = h.rec.ofType('child.backoff').length;
  await crash(h, id);
  expect(h.rec.ofType('child.backoff')).toHaveLength(before + 1);
  const event = lastBackoff(h) as ChildBackoffEvent;
  const delay = event.delayMs;
  expect(event).toMatchObject({ childId: id, until: at + delay, at });
  expect(info(h, id)).toMatchObject({ state: 'backoff', backoffUntil: at + delay, ref: undefined });
  await h.clock.advance(delay - 1);
  expect(info(h, id)).toMatchObject({ state: 'backoff', ref: undefined });
  await h.clock.advance(1);
  expect(info(h, id)).toMatchObject({ state: 'running', backoffUntil: undefined });
  expect(info(h, id).ref).toBeDefined();
  return delay;
}

/** A small seeded generator (mulberry32), so the jitter test is repeatable. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('exponential backoff', () => {
  it('waits minMs * factor^n between consecutive restarts, capped at maxMs', async () => {
    const log: Log = [];
    const h = harness({ ...LOOSE, log, children: [cb('a', log, { backoff: BACKOFF })] });
    const expected = [100, 200, 400, 800, 1_000, 1_000];
    for (const [attempt, delay] of expected.entries()) {
      const at = h.clock.now();
      await crash(h, 'a');
      expect(lastBackoff(h)).toEqual({
        type: 'child.backoff',
        supervisor: 'supervisor',
        childId: 'a',
        delayMs: delay,
        attempt,
        until: at + delay,
        at,
      });
      expect(info(h, 'a')).toMatchObject({
        state: 'backoff',
        backoffUntil: at + delay,
        ref: undefined,
        restarts: attempt + 1,
      });
      expect(h.sup.countChildren()).toMatchObject({ backoff: 1, active: 0, running: 0 });

      await h.clock.advance(delay - 1);
      expect(info(h, 'a').state).toBe('backoff');
      expect(h.rec.ofType('child.started')).toHaveLength(attempt + 1);

      await h.clock.advance(1);
      expect(info(h, 'a')).toMatchObject({ state: 'running', backoffUntil: undefined });
      const started = h.rec.ofType('child.started');
      expect(started).toHaveLength(attempt + 2);
      expect(started.at(-1)).toMatchObject({ childId: 'a', restarts: attempt + 1, at: at + delay });
    }
    expect(h.rec.ofType('child.backoff').map((e) => e.delayMs)).toEqual(expected);
  });

  it('restarts at once without a backoff option', async () => {
    const h = harness({ ...LOOSE, children: [cb('a', [])] });
    await crash(h, 'a');
    expect(info(h, 'a')).toMatchObject({ state: 'running', restarts: 1, backoffUntil: undefined });
    expect(h.rec.ofType('child.backoff')).toHaveLength(0);
  });

  it.each([
    // uptime before the crash, expected delay, expected attempt
    [499, 400, 2],
    [500, 100, 0],
  ])(
    'after %i ms of uptime (resetAfterMs 500) the next crash waits %i ms',
    async (uptime, delay, attempt) => {
      const h = harness({
        ...LOOSE,
        children: [cb('a', [], { backoff: { ...BACKOFF, resetAfterMs: 500 } })],
      });
      expect(await crashAndWait(h, 'a')).toBe(100);
      expect(await crashAndWait(h, 'a')).toBe(200);
      await h.clock.advance(uptime);
      expect(await crashAndWait(h, 'a')).toBe(delay);
      expect(lastBackoff(h)?.attempt).toBe(attempt);
    },
  );

  it('grows again from minMs after a reset', async () => {
    const h = harness({
      ...LOOSE,
      children: [cb('a', [], { backoff: { ...BACKOFF, resetAfterMs: 500 } })],
    });
    const delays = [await crashAndWait(h, 'a'), await crashAndWait(h, 'a')];
    await h.clock.advance(500);
    delays.push(await crashAndWait(h, 'a'), await crashAndWait(h, 'a'));
    expect(delays).toEqual([100, 200, 100, 200]);
  });
});

describe('jitter', () => {
  const JITTERY: BackoffOptions = { minMs: 100, maxMs: 1_000, factor: 2, jitter: 0.5 };
  const BASES = [100, 200, 400, 800, 1_000, 1_000];

  it('gives base * (1 - jitter) when random returns 0', async () => {
    const h = harness({ ...LOOSE, random: () => 0, children: [cb('a', [], { backoff: JITTERY })] });
    const delays: number[] = [];
    for (let i = 0; i < BASES.length; i++) delays.push(await crashAndWait(h, 'a'));
    expect(delays).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('gives about base * (1 + jitter), capped at maxMs, when random returns nearly 1', async () => {
    const h = harness({
      ...LOOSE,
      random: () => 0.999,
      children: [cb('a', [], { backoff: JITTERY })],
    });
    const delays: number[] = [];
    for (let i = 0; i < BASES.length; i++) delays.push(await crashAndWait(h, 'a'));
    delays.forEach((delay, i) => {
      const top = Math.min(1_000, (BASES[i] as number) * 1.5);
      expect(delay).toBeLessThanOrEqual(top);
      expect(delay).toBeGreaterThanOrEqual(top - 1);
    });
    expect(delays.slice(3)).toEqual([1_000, 1_000, 1_000]);
  });

  it('keeps every delay within [base * (1 - jitter), min(maxMs, base * (1 + jitter))]', async () => {
    const source = seeded(42);
    let calls = 0;
    const random = () => {
      calls++;
      return source();
    };
    const h = harness({ ...LOOSE, random, children: [cb('a', [], { backoff: JITTERY })] });
    const bases = [...BASES, 1_000, 1_000, 1_000, 1_000];
    const delays: number[] = [];
    for (let i = 0; i < bases.length; i++) delays.push(await crashAndWait(h, 'a'));
    delays.forEach((delay, i) => {
      const base = bases[i] as number;
      expect(delay).toBeGreaterThanOrEqual(base * 0.5);
      expect(delay).toBeLessThanOrEqual(Math.min(1_000, base * 1.5));
    });
    expect(calls).toBeGreaterThanOrEqual(bases.length);
    // The jitter is really applied: not every delay is the plain base.
    expect(delays.some((d, i) => d !== bases[i])).toBe(true);
  });
});

describe('backoff and restart intensity', () => {
  const FLAT: BackoffOptions = { minMs: 100, maxMs: 100, jitter: 0 };

  it('fails the supervisor at the third crash within the window, without waiting for the backoff', async () => {
    const log: Log = [];
    const h = harness({
      log,
      maxRestarts: 2,
      withinMs: 10_000,
      children: [cb('other', log), cb('a', log, { backoff: FLAT })],
    });
    await crashAndWait(h, 'a'); // crash at 0, restart 1
    await crashAndWait(h, 'a'); // crash at 100, restart 2
    await crash(h, 'a'); // crash at 200: a third restart within 10 s is too many
    expect(h.rec.ofType('child.backoff')).toHaveLength(2);
    expect(h.rec.ofType('supervisor.gaveUp').map((e) => [e.childId, e.at])).toEqual([['a', 200]]);
    expect(h.sup.actor.getSnapshot().status).toBe('error');
    const err = await h.sup.whenStopped().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect((err as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
    expect(log.at(-1)).toBe('stop:other');
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('counts a restart when it is decided, not when the delayed start happens', async () => {
    // Decided at 0 and 100 (inside 150 ms); the starts would be at 100 and 300 (not inside).
    const h = harness({
      maxRestarts: 1,
      withinMs: 150,
      children: [cb('a', [], { backoff: BACKOFF })],
    });
    expect(await crashAndWait(h, 'a')).toBe(100);
    await crash(h, 'a');
    expect(h.rec.ofType('supervisor.gaveUp').map((e) => e.at)).toEqual([100]);
    await expect(h.sup.whenStopped()).rejects.toMatchObject({ code: 'MAX_RESTART_INTENSITY' });
  });

  it('stays up when crashes are spaced beyond the window', async () => {
    const h = harness({
      maxRestarts: 2,
      withinMs: 10_000,
      children: [cb('a', [], { backoff: FLAT })],
    });
    // Crashes at 0, 5_000, 10_001, 15_001, 20_002: never more than two within 10 s.
    for (const at of [0, 5_000, 10_001, 15_001, 20_002]) {
      await h.clock.advance(at - h.clock.now());
      expect(await crashAndWait(h, 'a')).toBe(100);
    }
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(info(h, 'a')).toMatchObject({ state: 'running', restarts: 5 });
    expect(h.rec.ofType('supervisor.gaveUp')).toHaveLength(0);
  });
});

describe('admin calls during backoff', () => {
  it('terminateChild cancels the pending restart; restartChild then starts it', async () => {
    const log: Log = [];
    const h = harness({ ...LOOSE, log, children: [cb('a', log, { backoff: BACKOFF })] });
    expect(await crashAndWait(h, 'a')).toBe(100);
    await crash(h, 'a'); // waiting 200 ms
    expect(info(h, 'a').state).toBe('backoff');

    await h.sup.terminateChild('a');
    expect(info(h, 'a')).toMatchObject({
      state: 'stopped',
      backoffUntil: undefined,
      ref: undefined,
    });
    expect(h.clock.pendingTimers()).toBe(0);
    const startedBefore = h.rec.ofType('child.started').length;
    await h.clock.advance(5_000);
    expect(info(h, 'a').state).toBe('stopped');
    expect(h.rec.ofType('child.started')).toHaveLength(startedBefore);

    const restarted = await h.sup.restartChild('a');
    expect(restarted).toMatchObject({ id: 'a', state: 'running' });
    expect(restarted.ref).toBeDefined();
    expect(info(h, 'a').state).toBe('running');
    expect(log.at(-1)).toBe('start:a');
    // restartChild resets the backoff: the next crash waits minMs again.
    expect(await crashAndWait(h, 'a')).toBe(100);
  });

  it('rejects restartChild and deleteChild with RESTARTING while the child waits in backoff', async () => {
    const h = harness({ ...LOOSE, children: [cb('a', [], { backoff: BACKOFF })] });
    await crash(h, 'a');
    await expect(h.sup.restartChild('a')).rejects.toMatchObject({ code: 'RESTARTING' });
    await expect(h.sup.deleteChild('a')).rejects.toMatchObject({ code: 'RESTARTING' });
    expect(info(h, 'a').state).toBe('backoff');
    // The pending restart is untouched.
    await h.clock.advance(100);
    expect(info(h, 'a').state).toBe('running');
    expect(h.rec.ofType('child.started')).toHaveLength(2);
  });

  it('shuts down while a child waits in backoff, leaving no timers', async () => {
    const log: Log = [];
    const h = harness({
      ...LOOSE,
      log,
      children: [cb('a', log), cb('b', log, { backoff: BACKOFF })],
    });
    await crash(h, 'b');
    expect(info(h, 'b').state).toBe('backoff');
    await expect(h.sup.stop()).resolves.toEqual({ reason: 'shutdown' });
    expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([
      ['a', 'stopped'],
      ['b', 'stopped'],
    ]);
    expect(h.clock.pendingTimers()).toBe(0);
    const started = h.rec.ofType('child.started').length;
    await h.clock.advance(1_000);
    expect(h.rec.ofType('child.started')).toHaveLength(started);
    expect(log.at(-1)).toBe('stop:a');
  });
});

describe('group restarts', () => {
  it('makes the whole one_for_all group wait for the failed child backoff, then starts it in order', async () => {
    const log: Log = [];
    const h = harness({
      ...LOOSE,
      log,
      strategy: 'one_for_all',
      children: [cb('a', log), cb('b', log, { backoff: { minMs: 300, jitter: 0 } }), cb('c', log)],
    });
    log.length = 0;
    await crash(h, 'b');
    expect(log).toEqual(['stop:c', 'stop:a']);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.backoffUntil, c.ref])).toEqual([
      ['a', 'backoff', 300, undefined],
      ['b', 'backoff', 300, undefined],
      ['c', 'backoff', 300, undefined],
    ]);
    expect(h.rec.ofType('child.backoff').map((e) => [e.childId, e.delayMs])).toEqual([['b', 300]]);

    await h.clock.advance(299);
    expect(log).toEqual(['stop:c', 'stop:a']);
    expect(h.sup.countChildren()).toMatchObject({ backoff: 3, active: 0 });

    await h.clock.advance(1);
    expect(log).toEqual(['stop:c', 'stop:a', 'start:a', 'start:b', 'start:c']);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.restarts])).toEqual([
      ['a', 'running', 1],
      ['b', 'running', 1],
      ['c', 'running', 1],
    ]);
  });

  it('terminating one member of a group waiting in backoff cancels only that member', async () => {
    const log: Log = [];
    const h = harness({
      ...LOOSE,
      log,
      strategy: 'one_for_all',
      children: [cb('a', log), cb('b', log, { backoff: { minMs: 300, jitter: 0 } }), cb('c', log)],
    });
    await crash(h, 'b');
    await h.sup.terminateChild('c');
    expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([
      ['a', 'backoff'],
      ['b', 'backoff'],
      ['c', 'stopped'],
    ]);
    log.length = 0;
    await h.clock.advance(300);
    expect(log).toEqual(['start:a', 'start:b']);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
      ['c', 'stopped'],
    ]);
  });
});
