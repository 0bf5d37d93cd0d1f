import { ConfigError, createSupervisor, SupervisorError, supervisor } from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { cb, flaky, harness, machine } from './helpers';

describe('starting', () => {
  it('starts children in spec order and reports them running', () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('a', log), cb('b', log), cb('c', log)] });
    expect(log).toEqual(['start:a', 'start:b', 'start:c']);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.restarts])).toEqual([
      ['a', 'running', 0],
      ['b', 'running', 0],
      ['c', 'running', 0],
    ]);
    expect(h.sup.countChildren()).toMatchObject({
      specs: 3,
      active: 3,
      workers: 3,
      supervisors: 0,
      running: 3,
    });
    expect(h.rec.ofType('child.started').map((e) => e.childId)).toEqual(['a', 'b', 'c']);
    expect(h.rec.ofType('supervisor.started')).toHaveLength(1);
  });

  it('takes its children from its input when children is a function', () => {
    const log: string[] = [];
    const sup = createSupervisor<{ names: string[] }>({
      input: { names: ['x', 'y'] },
      clock: new SimulatedClock(),
      children: ({ names }) => names.map((n) => cb(n, log)),
    }).start();
    expect(sup.whichChildren().map((c) => c.id)).toEqual(['x', 'y']);
    expect(log).toEqual(['start:x', 'start:y']);
  });

  it('fails with the ConfigError when children(input) returns bad specs, starting nothing', async () => {
    const sup = createSupervisor({
      clock: new SimulatedClock(),
      children: () => [
        { id: 'dup', logic: supervisor() },
        { id: 'dup', logic: supervisor() },
      ],
    }).start();
    const err = await sup.whenStopped().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('DUPLICATE_ID');
    expect(sup.actor.getSnapshot().status).toBe('error');
  });

  it('counts a child that fails while starting as a restart attempt', async () => {
    const log: string[] = [];
    const b = flaky('b', log);
    b.failStarts(2);
    const h = harness({ log, maxRestarts: 5, children: [cb('a', log), b.spec] });
    await h.clock.advance(0);
    expect(h.state('b')).toBe('running');
    expect(h.sup.whichChildren()[1]?.restarts).toBe(2);
    expect(h.rec.ofType('child.exited').map((e) => [e.childId, e.reason])).toEqual([
      ['b', 'error'],
      ['b', 'error'],
    ]);
  });

  it('fails the supervisor when a child can never start', async () => {
    const log: string[] = [];
    const b = flaky('b', log);
    b.failStarts(Number.POSITIVE_INFINITY);
    const h = harness({ log, maxRestarts: 2, children: [cb('a', log), b.spec] });
    const err = await h.sup.whenStopped().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect((err as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
    expect(log).toEqual(['start:a', 'stop:a']);
  });
});

describe('stopping', () => {
  it('stops children in reverse order on a graceful stop and resolves whenStopped', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('a', log), cb('b', log), cb('c', log)] });
    log.length = 0;
    await expect(h.sup.stop()).resolves.toEqual({ reason: 'shutdown' });
    expect(log).toEqual(['stop:c', 'stop:b', 'stop:a']);
    expect(h.sup.actor.getSnapshot().status).toBe('done');
    expect(h.sup.whichChildren().map((c) => c.state)).toEqual(['stopped', 'stopped', 'stopped']);
    expect(h.rec.ofType('supervisor.stopped').map((e) => e.reason)).toEqual(['shutdown']);
    expect(h.rec.ofType('child.exited').every((e) => e.initiatedBy === 'supervisor')).toBe(true);
  });

  it('kills every child at once, in reverse order, when xstate stops the supervisor', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [cb('a', log), machine('b', { log, graceful: true, drainMs: 1_000 }), cb('c', log)],
    });
    log.length = 0;
    h.sup.kill();
    await expect(h.sup.whenStopped()).resolves.toEqual({ reason: 'killed' });
    expect(log).toEqual(['stop:c', 'stop:a']); // b was stopped, not finished: no final state
    expect(h.sup.whichChildren().map((c) => c.lastExit?.reason)).toEqual([
      'killed',
      'killed',
      'killed',
    ]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('leaves no timers behind after a graceful stop', async () => {
    const h = harness({
      children: [machine('a', { graceful: true, drainMs: 10 }), machine('b', {}, { backoff: {} })],
    });
    const stopped = h.sup.stop();
    await h.clock.advance(5_010);
    await stopped;
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('answers admin calls after it stopped with NOT_RUNNING', async () => {
    const h = harness({ children: [] });
    await h.sup.stop();
    await expect(h.sup.startChild(machine('x'))).rejects.toMatchObject({ code: 'NOT_RUNNING' });
    expect(h.sup.whichChildren()).toEqual([]);
  });
});
