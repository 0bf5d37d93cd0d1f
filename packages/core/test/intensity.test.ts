import { SupervisorError, supervisor, whichChildren } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { cb, harness } from './helpers';

describe('restart intensity', () => {
  it('fails after more than maxRestarts within withinMs, stopping children in reverse order', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      maxRestarts: 3,
      withinMs: 5_000,
      children: [cb('a', log), cb('b', log), cb('c', log)],
    });
    for (let i = 0; i < 3; i++) {
      h.ref('b').send({ type: 'CRASH' });
      await h.clock.advance(1_000);
    }
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    log.length = 0;
    h.ref('b').send({ type: 'CRASH' }); // the 4th restart within 5 s
    const err = await h.sup.whenStopped().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err).toMatchObject({ code: 'MAX_RESTART_INTENSITY' });
    expect((err as Error).message).toContain('more than 3 restart(s) within 5000 ms');
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(log).toEqual(['stop:c', 'stop:a']);
    expect(h.sup.actor.getSnapshot().status).toBe('error');
    expect(h.rec.ofType('supervisor.gaveUp')).toMatchObject([
      { childId: 'b', maxRestarts: 3, withinMs: 5_000 },
    ]);
    expect(h.rec.ofType('supervisor.escalated')).toHaveLength(1);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('stays alive when restarts are spaced beyond the window', async () => {
    const log: string[] = [];
    const h = harness({ log, maxRestarts: 1, withinMs: 2_000, children: [cb('a', log)] });
    for (let i = 0; i < 10; i++) {
      h.ref('a').send({ type: 'CRASH' });
      await h.clock.advance(2_001);
    }
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.sup.whichChildren()[0]?.restarts).toBe(10);
  });

  it('counts the window as [now - withinMs, now], as OTP: a restart exactly withinMs later still counts the earlier one; 1 ms more and it has left', async () => {
    const log: string[] = [];
    const h = harness({ log, maxRestarts: 1, withinMs: 1_000, children: [cb('a', log)] });
    h.ref('a').send({ type: 'CRASH' });
    await h.clock.advance(1_000);
    h.ref('a').send({ type: 'CRASH' });
    await expect(h.sup.whenStopped()).rejects.toMatchObject({ code: 'MAX_RESTART_INTENSITY' });

    const h2 = harness({ log, maxRestarts: 1, withinMs: 1_000, children: [cb('a', log)] });
    h2.ref('a').send({ type: 'CRASH' });
    await h2.clock.advance(1_001);
    h2.ref('a').send({ type: 'CRASH' });
    expect(h2.sup.actor.getSnapshot().status).toBe('active');
  });

  it('fails on the first restart with maxRestarts 0', async () => {
    const log: string[] = [];
    const h = harness({ log, maxRestarts: 0, children: [cb('a', log)] });
    h.ref('a').send({ type: 'CRASH' });
    await expect(h.sup.whenStopped()).rejects.toMatchObject({ code: 'MAX_RESTART_INTENSITY' });
    expect(h.rec.ofType('child.restarting')).toHaveLength(0);
  });

  it('counts one restart per failure under one_for_all, not one per restarted child', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      strategy: 'one_for_all',
      maxRestarts: 2,
      children: [cb('a', log), cb('b', log), cb('c', log)],
    });
    h.ref('a').send({ type: 'CRASH' });
    h.ref('b').send({ type: 'CRASH' });
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    h.ref('c').send({ type: 'CRASH' });
    await expect(h.sup.whenStopped()).rejects.toMatchObject({ code: 'MAX_RESTART_INTENSITY' });
  });

  it('escalates through two levels: the parent sees a failed child, then fails itself', async () => {
    const log: string[] = [];
    const failures: unknown[] = [];
    const onUncaught = (e: unknown) => failures.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      const mid = supervisor({ maxRestarts: 1, withinMs: 10_000, children: [cb('leaf', log)] });
      const h = harness({
        log,
        maxRestarts: 1,
        withinMs: 10_000,
        children: [{ id: 'mid', logic: mid }, cb('sibling', log)],
      });
      const crashLeaf = () =>
        whichChildren(h.ref('mid'))
          .find((c) => c.id === 'leaf')
          ?.ref?.send({ type: 'CRASH' });
      const firstMid = h.ref('mid');
      crashLeaf();
      crashLeaf();
      await h.clock.advance(0);
      expect(h.ref('mid')).not.toBe(firstMid); // root restarted mid after it failed
      const midExit = h.rec.ofType('child.exited').find((e) => e.childId === 'mid');
      expect(midExit).toMatchObject({
        supervisor: 'supervisor',
        reason: 'error',
        initiatedBy: 'child',
        willRestart: true,
      });
      expect(midExit?.error).toMatchObject({ code: 'MAX_RESTART_INTENSITY' });
      expect(h.rec.ofType('supervisor.gaveUp').map((e) => e.supervisor)).toEqual([
        'supervisor/mid',
      ]);

      // The new mid fails the same way: the root has now exceeded its own limit.
      crashLeaf();
      crashLeaf();
      const err = (await h.sup.whenStopped().catch((e: unknown) => e)) as SupervisorError;
      expect(err).toBeInstanceOf(SupervisorError);
      expect(err.code).toBe('MAX_RESTART_INTENSITY');
      const cause = err.cause as SupervisorError;
      expect(cause).toBeInstanceOf(SupervisorError);
      expect(cause.message).toContain('supervisor supervisor/mid gave up');
      expect(h.rec.ofType('supervisor.escalated').map((e) => e.supervisor)).toEqual([
        'supervisor/mid',
        'supervisor/mid',
        'supervisor',
      ]);
      // leaf restarted once by mid, mid restarted once by root (with a new leaf), leaf restarted
      // once by the new mid, then the root gives up and stops what is left: the sibling.
      expect(log).toEqual([
        'start:leaf',
        'start:sibling',
        'start:leaf',
        'start:leaf',
        'start:leaf',
        'stop:sibling',
      ]);
      expect(h.sup.whichChildren().every((c) => c.state === 'stopped')).toBe(true);
      await h.clock.advance(0);
      expect(failures).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
  });
});
