import {
  type ChildSpec,
  ConfigError,
  createSupervisor,
  supervisor,
  whichChildren,
} from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { cb, type Harness, harness, type Log, machine } from './helpers';

type ExitEvent = 'EXIT_NORMAL' | 'EXIT_SHUTDOWN' | 'CRASH';

/** A significant machine child; graceful, so a stop the supervisor asks for ends it at once. */
function significant(id: string, log: Log, restart: 'transient' | 'temporary'): ChildSpec {
  return machine(id, { log, graceful: true }, { restart, significant: true });
}

/** Lets the supervisor react, then checks it has already auto-shut-down (so a bug fails fast). */
async function expectAutoShutdown(h: Harness): Promise<void> {
  await h.clock.advance(0);
  expect(h.sup.actor.getSnapshot().status).toBe('done');
  await expect(h.sup.whenStopped()).resolves.toEqual({ reason: 'auto_shutdown' });
}

describe("autoShutdown: 'any_significant'", () => {
  it.each<[ExitEvent, 'normal' | 'shutdown']>([
    ['EXIT_NORMAL', 'normal'],
    ['EXIT_SHUTDOWN', 'shutdown'],
  ])('shuts down when a significant transient child ends with %s', async (event, reason) => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'any_significant',
      children: [cb('a', log), significant('s', log, 'transient'), cb('b', log), cb('c', log)],
    });
    log.length = 0;
    h.ref('s').send({ type: event });
    await expectAutoShutdown(h);
    // s ended by itself; the others are stopped in reverse start order.
    expect(log).toEqual(['stop:s', 'stop:c', 'stop:b', 'stop:a']);
    expect(h.sup.actor.getSnapshot().status).toBe('done');
    expect(h.rec.ofType('supervisor.stopped').map((e) => e.reason)).toEqual(['auto_shutdown']);
    expect(
      h.rec.ofType('child.exited').map((e) => [e.childId, e.reason, e.initiatedBy, e.willRestart]),
    ).toEqual([
      ['s', reason, 'child', false],
      ['c', 'killed', 'supervisor', false],
      ['b', 'killed', 'supervisor', false],
      ['a', 'killed', 'supervisor', false],
    ]);
    expect(h.sup.whichChildren().map((c) => c.state)).toEqual([
      'stopped',
      'stopped',
      'stopped',
      'stopped',
    ]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('restarts a significant transient child that crashes, and keeps running', async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'any_significant',
      children: [cb('a', log), significant('s', log, 'transient')],
    });
    const before = h.ref('s');
    h.ref('s').send({ type: 'CRASH' });
    await h.clock.advance(1_000);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.rec.ofType('supervisor.stopped')).toHaveLength(0);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.restarts])).toEqual([
      ['a', 'running', 0],
      ['s', 'running', 1],
    ]);
    expect(h.ref('s')).not.toBe(before);

    // The restarted instance still counts: its normal exit shuts the supervisor down.
    h.ref('s').send({ type: 'EXIT_NORMAL' });
    await expectAutoShutdown(h);
  });

  it.each<ExitEvent>(['EXIT_NORMAL', 'EXIT_SHUTDOWN', 'CRASH'])(
    'shuts down when a significant temporary child ends with %s',
    async (event) => {
      const log: Log = [];
      const h = harness({
        log,
        autoShutdown: 'any_significant',
        children: [cb('a', log), significant('s', log, 'temporary')],
      });
      h.ref('s').send({ type: event });
      await expectAutoShutdown(h);
      expect(h.rec.ofType('supervisor.stopped').map((e) => e.reason)).toEqual(['auto_shutdown']);
      expect(h.rec.ofType('child.restarting')).toHaveLength(0);
      expect(log.at(-1)).toBe('stop:a');
    },
  );

  it('ignores the end of a non-significant child', async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'any_significant',
      children: [
        machine('n', { log }, { restart: 'transient' }),
        significant('s', log, 'transient'),
      ],
    });
    h.ref('n').send({ type: 'EXIT_NORMAL' });
    await h.clock.advance(1_000);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([
      ['n', 'stopped'],
      ['s', 'running'],
    ]);
  });
});

describe("autoShutdown: 'all_significant'", () => {
  it('shuts down only after the last significant child has ended', async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'all_significant',
      children: [
        cb('n', log),
        significant('s1', log, 'transient'),
        machine('t', { log }, { restart: 'transient' }),
        significant('s2', log, 'temporary'),
      ],
    });
    h.ref('s1').send({ type: 'EXIT_NORMAL' });
    await h.clock.advance(100);
    h.ref('t').send({ type: 'EXIT_NORMAL' }); // not significant: does not matter
    await h.clock.advance(100);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.rec.ofType('supervisor.stopped')).toHaveLength(0);
    expect(h.state('n')).toBe('running');

    log.length = 0;
    h.ref('s2').send({ type: 'EXIT_SHUTDOWN' });
    await expectAutoShutdown(h);
    expect(log).toEqual(['stop:s2', 'stop:n']);
    expect(h.rec.ofType('supervisor.stopped').map((e) => [e.reason, e.at])).toEqual([
      ['auto_shutdown', 200],
    ]);
  });

  it('does not count a significant child waiting to be restarted as ended', async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'all_significant',
      children: [
        machine(
          's1',
          { log },
          { restart: 'transient', significant: true, backoff: { minMs: 500, jitter: 0 } },
        ),
        significant('s2', log, 'transient'),
      ],
    });
    h.ref('s1').send({ type: 'CRASH' });
    await h.clock.advance(0);
    expect(h.state('s1')).toBe('backoff');
    h.ref('s2').send({ type: 'EXIT_NORMAL' });
    await h.clock.advance(499);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    await h.clock.advance(1);
    expect(h.state('s1')).toBe('running');
    h.ref('s1').send({ type: 'EXIT_NORMAL' });
    await expectAutoShutdown(h);
  });
});

describe('exits the supervisor caused', () => {
  it.each(['any_significant', 'all_significant'] as const)(
    'do not trigger %s when a significant child is terminated',
    async (autoShutdown) => {
      const log: Log = [];
      const h = harness({
        log,
        autoShutdown,
        children: [cb('a', log), significant('s', log, 'transient')],
      });
      const terminated = h.sup.terminateChild('s');
      await h.clock.advance(0); // s drains (drainMs 0) on the simulated clock
      await terminated;
      await h.clock.advance(1_000);
      expect(h.sup.actor.getSnapshot().status).toBe('active');
      expect(h.rec.ofType('supervisor.stopped')).toHaveLength(0);
      expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([
        ['a', 'running'],
        ['s', 'stopped'],
      ]);
      expect(h.sup.whichChildren()[1]?.lastExit?.reason).toBe('shutdown');
    },
  );

  it('do not trigger it when a significant transient child is a bystander of a one_for_all restart', async () => {
    const log: Log = [];
    const h = harness({
      log,
      strategy: 'one_for_all',
      autoShutdown: 'any_significant',
      children: [cb('a', log), significant('s', log, 'transient')],
    });
    log.length = 0;
    h.ref('a').send({ type: 'CRASH' });
    await h.clock.advance(1_000);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.rec.ofType('supervisor.stopped')).toHaveLength(0);
    expect(log).toEqual(['stop:s', 'start:a', 'start:s']);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.restarts])).toEqual([
      ['a', 'running', 1],
      ['s', 'running', 1],
    ]);
  });

  it('do not trigger it when a significant temporary bystander of a one_for_all restart is dropped', async () => {
    const log: Log = [];
    const h = harness({
      log,
      strategy: 'one_for_all',
      autoShutdown: 'any_significant',
      children: [cb('a', log), significant('s', log, 'temporary')],
    });
    h.ref('a').send({ type: 'CRASH' });
    await h.clock.advance(1_000);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.rec.ofType('supervisor.stopped')).toHaveLength(0);
    expect(h.sup.whichChildren().map((c) => [c.id, c.state])).toEqual([['a', 'running']]);
  });
});

describe('nested supervisors', () => {
  function inner(log: Log) {
    return supervisor({
      autoShutdown: 'any_significant',
      children: [cb('x', log), significant('w', log, 'transient')],
    });
  }

  function innerChild(h: Harness, id: string) {
    const ref = whichChildren(h.ref('inner')).find((c) => c.id === id)?.ref;
    if (!ref) throw new Error(`inner child ${id} is not running`);
    return ref;
  }

  it('records an auto-shut-down sub-supervisor as a shutdown exit and does not restart it', async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'all_significant',
      children: [
        { id: 'inner', logic: inner(log), restart: 'transient', significant: true },
        significant('other', log, 'transient'),
      ],
    });
    const innerRef = h.ref('inner');
    innerChild(h, 'w').send({ type: 'EXIT_NORMAL' });
    await h.clock.advance(1_000);

    expect(innerRef.getSnapshot().status).toBe('done');
    expect(h.rec.ofType('supervisor.stopped').map((e) => [e.supervisor, e.reason])).toEqual([
      ['supervisor/inner', 'auto_shutdown'],
    ]);
    const exited = h.rec
      .ofType('child.exited')
      .filter((e) => e.supervisor === 'supervisor' && e.childId === 'inner');
    expect(exited.map((e) => [e.reason, e.initiatedBy, e.willRestart])).toEqual([
      ['shutdown', 'child', false],
    ]);
    expect(h.sup.whichChildren()[0]).toMatchObject({
      id: 'inner',
      type: 'supervisor',
      state: 'stopped',
      restarts: 0,
      ref: undefined,
    });
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('shutdown');
    expect(h.rec.ofType('child.restarting')).toHaveLength(0);
    // The parent goes on: its other significant child is still running.
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.state('other')).toBe('running');
  });

  it("cascades into its parent's any_significant auto-shutdown", async () => {
    const log: Log = [];
    const h = harness({
      log,
      autoShutdown: 'any_significant',
      children: [
        cb('a', log),
        { id: 'inner', logic: inner(log), restart: 'transient', significant: true },
        cb('b', log),
      ],
    });
    log.length = 0;
    innerChild(h, 'w').send({ type: 'EXIT_NORMAL' });
    await expectAutoShutdown(h);
    expect(log).toEqual(['stop:w', 'stop:x', 'stop:b', 'stop:a']);
    expect(h.rec.ofType('supervisor.stopped').map((e) => [e.supervisor, e.reason])).toEqual([
      ['supervisor/inner', 'auto_shutdown'],
      ['supervisor', 'auto_shutdown'],
    ]);
    expect(h.sup.whichChildren().find((c) => c.id === 'inner')?.lastExit?.reason).toBe('shutdown');
  });
});

describe('configuration', () => {
  const logic = cb('s', []).logic;

  it('rejects a permanent significant child', () => {
    const attempt = () =>
      supervisor({
        autoShutdown: 'any_significant',
        children: [{ id: 's', logic, significant: true }],
      });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      expect.objectContaining({ code: 'BAD_COMBINATION', path: 'options.children[0].significant' }),
    );
  });

  it('rejects an explicitly permanent significant child at its index', () => {
    const attempt = () =>
      createSupervisor({
        clock: new SimulatedClock(),
        autoShutdown: 'all_significant',
        children: [
          { id: 'ok', logic, restart: 'transient', significant: true },
          { id: 'bad', logic, restart: 'permanent', significant: true },
        ],
      });
    expect(attempt).toThrow(
      expect.objectContaining({ code: 'BAD_COMBINATION', path: 'options.children[1].significant' }),
    );
  });

  it.each([undefined, 'never'] as const)(
    'rejects a significant child when autoShutdown is %s',
    (autoShutdown) => {
      const attempt = () =>
        supervisor({
          ...(autoShutdown === undefined ? {} : { autoShutdown }),
          children: [{ id: 's', logic, restart: 'transient', significant: true }],
        });
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(
        expect.objectContaining({
          code: 'BAD_COMBINATION',
          path: 'options.children[0].significant',
        }),
      );
    },
  );

  it('rejects a significant child added with startChild under autoShutdown never', async () => {
    const h = harness({ children: [] });
    const err = await h.sup
      .startChild({ id: 's', logic, restart: 'transient', significant: true })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'BAD_COMBINATION', path: 'spec.significant' });
    expect(h.sup.whichChildren()).toEqual([]);
  });

  it('accepts transient and temporary significant children under autoShutdown', () => {
    expect(() =>
      supervisor({
        autoShutdown: 'any_significant',
        children: [
          { id: 'a', logic, restart: 'transient', significant: true },
          { id: 'b', logic, restart: 'temporary', significant: true },
        ],
      }),
    ).not.toThrow();
  });
});
