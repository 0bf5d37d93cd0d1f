import { createSupervisor } from '@belfry/core';
import { recordEvents, SimulatedClock, settle } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine, fromCallback } from 'xstate';

describe('SimulatedClock', () => {
  it('fires timers in deadline order, ties in the order they were set, at their own time', async () => {
    const clock = new SimulatedClock(100);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 20);
    expect(clock.nextTimerAt()).toBe(110);
    await clock.advance(15);
    expect(fired).toEqual(['a@110']);
    expect(clock.now()).toBe(115);
    await clock.advance(5);
    expect(fired).toEqual(['a@110', 'b@120', 'c@120']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('runs timers scheduled by other timers within the same advance', async () => {
    const clock = new SimulatedClock();
    const fired: number[] = [];
    clock.setTimeout(() => {
      fired.push(clock.now());
      clock.setTimeout(() => fired.push(clock.now()), 5);
    }, 5);
    await clock.advance(10);
    expect(fired).toEqual([5, 10]);
  });

  it('cancels timers', async () => {
    const clock = new SimulatedClock();
    const fired: string[] = [];
    const id = clock.setTimeout(() => fired.push('x'), 5);
    clock.clearTimeout(id);
    clock.clearTimeout('nonsense');
    expect(clock.pendingTimers()).toBe(0);
    await clock.advance(10);
    expect(fired).toEqual([]);
  });

  it('lets promise chains settle between timers', async () => {
    const clock = new SimulatedClock();
    const seen: string[] = [];
    clock.setTimeout(() => {
      void Promise.resolve()
        .then(() => Promise.resolve())
        .then(() => seen.push(`settled@${clock.now()}`));
    }, 10);
    clock.setTimeout(() => seen.push(`next@${clock.now()}`), 10);
    await clock.advance(10);
    // Each timer's promise work settles before the next timer fires, even at the same instant.
    expect(seen).toEqual(['settled@10', 'next@10']);
    const seen2: string[] = [];
    clock.setTimeout(() => {
      void Promise.resolve().then(() => seen2.push('settled'));
    }, 1);
    clock.setTimeout(() => seen2.push('later'), 2);
    await clock.advance(2);
    expect(seen2).toEqual(['settled', 'later']);
  });

  it('advanceSync fires without waiting for promises; runAll runs to quiescence', async () => {
    const clock = new SimulatedClock();
    const fired: number[] = [];
    for (const ms of [30, 10, 20]) clock.setTimeout(() => fired.push(clock.now()), ms);
    clock.advanceSync(15);
    expect(fired).toEqual([10]);
    expect(await clock.runAll()).toBe(2);
    expect(fired).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(30);
  });

  it('refuses to move backwards or by a non-number, and stops a runaway runAll', async () => {
    const clock = new SimulatedClock();
    await expect(clock.advance(-1)).rejects.toThrow(RangeError);
    expect(() => clock.advanceSync(Number.NaN)).toThrow(RangeError);
    const again = () => clock.setTimeout(again, 1);
    again();
    await expect(clock.runAll(50)).rejects.toThrow('still busy after 50 callbacks');
  });

  it('drives xstate delays when given to createActor', async () => {
    const clock = new SimulatedClock();
    const actor = createActor(
      createMachine({ initial: 'a', states: { a: { after: { 1000: 'b' } }, b: {} } }),
      {
        clock,
      },
    ).start();
    await clock.advance(999);
    expect(actor.getSnapshot().value).toBe('a');
    await clock.advance(1);
    expect(actor.getSnapshot().value).toBe('b');
  });
});

describe('SimulatedClock: cancelled timers', () => {
  it('lets go of cancelled far-future timers: the queue stays as large as what is scheduled', async () => {
    const clock = new SimulatedClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('a'), 5_000);
    clock.setTimeout(() => fired.push('b'), 5_000);
    for (let i = 0; i < 10_000; i++) {
      // A patrol's interval timer: set far ahead, cancelled when the patrol comes early.
      const id = clock.setTimeout(() => fired.push('never'), 1e12);
      clock.clearTimeout(id);
      await clock.advance(0);
    }
    clock.setTimeout(() => fired.push('c'), 5_000);
    expect(clock.pendingTimers()).toBe(3);
    // Internal, on purpose: the point is the queue's size, not only what fires.
    expect((clock as unknown as { heap: unknown[] }).heap.length).toBeLessThan(100);
    await clock.advance(5_000);
    expect(fired).toEqual(['a', 'b', 'c']);
    await clock.advance(1e12);
    expect(fired).toEqual(['a', 'b', 'c']);
  });
});

describe('recordEvents', () => {
  it('records a supervisor bus in order, by type, as lines, until stopped', async () => {
    const clock = new SimulatedClock();
    const idle = fromCallback(() => () => {});
    const sup = createSupervisor({ clock, children: [{ id: 'a', logic: idle }] });
    const rec = recordEvents(sup.events);
    sup.start();
    expect(rec.ofType('child.started').map((e) => e.childId)).toEqual(['a']);
    await sup.terminateChild('a');
    expect(rec.lines()).toEqual([
      'child.started supervisor/a',
      'supervisor.started supervisor',
      'child.exited supervisor/a killed',
    ]);
    rec.clear();
    rec.stop();
    await sup.stop();
    await settle();
    expect(rec.events).toEqual([]);
  });
});
