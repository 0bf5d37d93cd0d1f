import {
  type ChildInfo,
  ConfigError,
  countChildren,
  createSupervisor,
  deleteChild,
  isShutdownExit,
  restartChild,
  SHUTDOWN_EVENT_TYPE,
  SupervisorError,
  type SupervisorEvent,
  type SupervisorEventBus,
  type SupervisorOutput,
  shutdownSupervisor,
  startChild,
  supervisor,
  supervisorEvents,
  terminateChild,
  whichChildren,
} from '@belfry/core';
import { recordEvents, SimulatedClock, settle } from '@belfry/testing';
import EventEmitter from 'eventemitter3';
import { describe, expect, it } from 'vitest';
import {
  type AnyActorLogic,
  type AnyActorRef,
  assign,
  createActor,
  createMachine,
  fromObservable,
  fromPromise,
  fromTransition,
  type InspectionEvent,
  type Observer,
  type Subscribable,
  sendTo,
  setup,
} from 'xstate';
import { cb, harness, type Log, machine } from './helpers';

// ---------------------------------------------------------------------------------------------
// Local helpers
// ---------------------------------------------------------------------------------------------

/** The child `id` of a supervisor ref (throws if it is not listed). */
function childOf(sup: AnyActorRef, id: string): ChildInfo {
  const info = whichChildren(sup).find((c) => c.id === id);
  if (!info) throw new Error(`no child ${id}`);
  return info;
}

function refOf(sup: AnyActorRef, id: string): AnyActorRef {
  const ref = childOf(sup, id).ref;
  if (!ref) throw new Error(`child ${id} has no running actor`);
  return ref;
}

/**
 * Watches the process for uncaught exceptions and unhandled rejections while `body` runs, and
 * for a few event-loop turns after it (xstate rethrows unhandled actor errors in a timer).
 */
async function withoutUncaught(body: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const onError = (error: unknown) => {
    seen.push(error);
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  try {
    await body();
    for (let i = 0; i < 5; i++) await settle();
    expect(seen).toEqual([]);
  } finally {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  }
}

/** A subscribable driven by a clock: after `afterMs` it errors or completes. */
interface StreamInput {
  clock: SimulatedClock;
  afterMs: number;
  end: 'error' | 'complete';
  log: Log;
  id: string;
}

function clockStream(input: StreamInput): Subscribable<number> {
  return {
    subscribe(
      observerOrNext: Observer<number> | ((value: number) => void),
      error?: (error: unknown) => void,
      complete?: () => void,
    ) {
      const observer: Partial<Observer<number>> =
        typeof observerOrNext === 'function' ? { next: observerOrNext } : observerOrNext;
      if (typeof observerOrNext === 'function') {
        if (error) observer.error = error;
        if (complete) observer.complete = complete;
      }
      input.log.push(`subscribe:${input.id}`);
      observer.next?.(1);
      const handle = input.clock.setTimeout(() => {
        if (input.end === 'error') observer.error?.(new Error(`${input.id} stream broke`));
        else observer.complete?.();
      }, input.afterMs);
      return {
        unsubscribe() {
          input.log.push(`unsubscribe:${input.id}`);
          input.clock.clearTimeout(handle);
        },
      };
    },
  };
}

const streamChild = fromObservable<number, StreamInput>(({ input }) => clockStream(input));

/** A counter that throws on CRASH; its state starts again from 0 on every start. */
const counterChild = fromTransition(
  (count: number, event: { type: string }) => {
    if (event.type === 'CRASH') throw new Error('counter crashed');
    return event.type === 'INC' ? count + 1 : count;
  },
  () => 0,
);

/**
 * A user machine that invokes `sup` and records how the supervisor ended. It waits in `idle` for
 * START unless `fromStart`, in which case it invokes the supervisor from its initial state.
 */
function appMachine(sup: AnyActorLogic, fromStart = false) {
  return setup({
    types: {
      context: {} as { error: unknown; output: unknown },
      events: {} as { type: 'START' } | { type: 'LEAVE' } | { type: 'SHUTDOWN_SUP' },
    },
    actors: { sup },
  }).createMachine({
    context: { error: undefined, output: undefined },
    initial: fromStart ? 'supervising' : 'idle',
    states: {
      idle: { on: { START: 'supervising' } },
      supervising: {
        invoke: {
          src: 'sup',
          id: 'sup',
          onDone: { target: 'finished', actions: assign({ output: ({ event }) => event.output }) },
          onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
        },
        on: {
          LEAVE: 'elsewhere',
          SHUTDOWN_SUP: { actions: sendTo('sup', { type: SHUTDOWN_EVENT_TYPE }) },
        },
      },
      elsewhere: {},
      finished: {},
      failed: {},
    },
  });
}

/** Starts `appMachine(sup)` on a simulated clock with an error observer, and invokes `sup`. */
function startApp(sup: AnyActorLogic, fromStart = false) {
  const clock = new SimulatedClock();
  const actor = createActor(appMachine(sup, fromStart), { clock });
  const errors: unknown[] = [];
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  if (!fromStart) actor.send({ type: 'START' });
  const supRef = actor.getSnapshot().children.sup as AnyActorRef;
  return { clock, actor, errors, supRef };
}

// ---------------------------------------------------------------------------------------------

describe('children of every logic kind', () => {
  it('restarts a machine child that throws, and tells normal from shutdown exits', () => {
    const h = harness({
      maxRestarts: 10,
      children: [
        machine('perm'),
        machine('trans', {}, { restart: 'transient' }),
        machine('quit', {}, { restart: 'transient' }),
      ],
    });
    const first = h.ref('perm');
    first.send({ type: 'CRASH' });
    const perm = childOf(h.sup.actor, 'perm');
    expect(perm).toMatchObject({ state: 'running', restarts: 1, lastExit: { reason: 'error' } });
    expect(perm.lastExit?.error).toMatchObject({ message: 'worker crashed' });
    expect(perm.ref).not.toBe(first);

    // A permanent child is restarted even after a normal exit.
    h.ref('perm').send({ type: 'EXIT_NORMAL' });
    expect(childOf(h.sup.actor, 'perm')).toMatchObject({
      state: 'running',
      restarts: 2,
      lastExit: { reason: 'normal' },
    });

    // A transient one is not, after `normal` or `shutdown`.
    h.ref('trans').send({ type: 'EXIT_NORMAL' });
    h.ref('quit').send({ type: 'EXIT_SHUTDOWN' });
    expect(childOf(h.sup.actor, 'trans')).toMatchObject({
      state: 'stopped',
      restarts: 0,
      ref: undefined,
      lastExit: { reason: 'normal' },
    });
    expect(childOf(h.sup.actor, 'quit')).toMatchObject({
      state: 'stopped',
      lastExit: { reason: 'shutdown' },
    });
    expect(
      h.rec.ofType('child.exited').map((e) => [e.childId, e.reason, e.initiatedBy, e.willRestart]),
    ).toEqual([
      ['perm', 'error', 'child', true],
      ['perm', 'normal', 'child', true],
      ['trans', 'normal', 'child', false],
      ['quit', 'shutdown', 'child', false],
    ]);
  });

  it('records a resolving fromPromise child as a normal exit', async () => {
    const calls: number[] = [];
    const once = fromPromise<string, { restarts: number }>(({ input }) => {
      calls.push(input.restarts);
      // Resolves on its first run only; later runs stay pending.
      return input.restarts === 0 ? Promise.resolve('ok') : new Promise<string>(() => {});
    });
    const h = harness({
      children: [
        { id: 'perm', logic: once, getInput: ({ restarts }) => ({ restarts }) },
        {
          id: 'trans',
          logic: once,
          getInput: ({ restarts }) => ({ restarts }),
          restart: 'transient',
        },
      ],
    });
    await h.clock.advance(0);
    expect(childOf(h.sup.actor, 'perm')).toMatchObject({
      state: 'running',
      restarts: 1,
      lastExit: { reason: 'normal', at: 0 },
    });
    expect(childOf(h.sup.actor, 'trans')).toMatchObject({
      state: 'stopped',
      restarts: 0,
      lastExit: { reason: 'normal' },
    });
    expect(calls).toEqual([0, 0, 1]);
  });

  it('restarts a rejecting fromPromise child with reason error, unless it is temporary', async () => {
    const boom = new Error('fetch failed');
    const flaky = fromPromise<string, { restarts: number }>(({ input }) =>
      input.restarts === 0 ? Promise.reject(boom) : new Promise<string>(() => {}),
    );
    const spec = (id: string, restart: 'permanent' | 'transient' | 'temporary') => ({
      id,
      logic: flaky,
      restart,
      getInput: ({ restarts }: { restarts: number }) => ({ restarts }),
    });
    const h = harness({
      maxRestarts: 5,
      children: [spec('perm', 'permanent'), spec('trans', 'transient'), spec('temp', 'temporary')],
    });
    await h.clock.advance(0);
    for (const id of ['perm', 'trans']) {
      const info = childOf(h.sup.actor, id);
      expect(info).toMatchObject({ state: 'running', restarts: 1, lastExit: { reason: 'error' } });
      expect(info.lastExit?.error).toBe(boom);
    }
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['perm', 'trans']);
    expect(
      h.rec.ofType('child.exited').map((e) => [e.childId, e.reason, e.willRestart, e.error]),
    ).toEqual([
      ['perm', 'error', true, boom],
      ['trans', 'error', true, boom],
      ['temp', 'error', false, boom],
    ]);
  });

  it("aborts a fromPromise child's signal when the supervisor stops it", async () => {
    const signals: AbortSignal[] = [];
    const pending = fromPromise<void>(
      ({ signal }) =>
        new Promise<void>(() => {
          signals.push(signal);
        }),
    );
    const log: Log = [];
    const h = harness({
      strategy: 'one_for_all',
      children: [{ id: 'p', logic: pending }, cb('a', log)],
    });
    await h.clock.advance(0);
    expect(signals.map((s) => s.aborted)).toEqual([false]);

    // A sibling's crash takes the promise down under one_for_all: its signal is aborted and the
    // new instance gets a fresh one.
    h.ref('a').send({ type: 'CRASH' });
    await h.clock.advance(0);
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);

    await h.sup.terminateChild('p');
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
    expect(childOf(h.sup.actor, 'p')).toMatchObject({
      state: 'stopped',
      lastExit: { reason: 'killed' },
    });

    await h.sup.restartChild('p');
    await h.clock.advance(0);
    await h.sup.stop();
    expect(signals.map((s) => s.aborted)).toEqual([true, true, true]);
  });

  it('runs fromCallback children: delivers events, restarts them when they throw, cleans up on stop', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [cb('a', log), cb('b', log, { restart: 'transient' })],
    });
    const a = h.ref('a');
    a.send({ type: 'CRASH' });
    expect(log).toEqual(['start:a', 'start:b', 'start:a']);
    expect(childOf(h.sup.actor, 'a')).toMatchObject({ restarts: 1, lastExit: { reason: 'error' } });
    expect(childOf(h.sup.actor, 'a').lastExit?.error).toMatchObject({ message: 'a crashed' });
    expect(a.getSnapshot().status).toBe('error');

    await h.sup.terminateChild('b');
    expect(log.at(-1)).toBe('stop:b');
    expect(childOf(h.sup.actor, 'b')).toMatchObject({ state: 'stopped', restarts: 0 });
  });

  it('restarts a fromObservable child whose stream errors, and unsubscribes when it is stopped', async () => {
    const log: Log = [];
    const clock = new SimulatedClock();
    const h = harness({
      clock,
      log,
      maxRestarts: 10,
      withinMs: 100_000,
      children: [
        {
          id: 'breaks',
          logic: streamChild,
          input: { clock, afterMs: 1_000, end: 'error', log, id: 'breaks' },
        },
        {
          id: 'ends',
          logic: streamChild,
          input: { clock, afterMs: 500, end: 'complete', log, id: 'ends' },
          restart: 'transient',
        },
      ],
    });
    expect(h.ref('breaks').getSnapshot().context).toBe(1);

    await clock.advance(500);
    expect(childOf(h.sup.actor, 'ends')).toMatchObject({
      state: 'stopped',
      lastExit: { reason: 'normal', at: 500 },
    });

    await clock.advance(499);
    expect(childOf(h.sup.actor, 'breaks').restarts).toBe(0);
    await clock.advance(1);
    const breaks = childOf(h.sup.actor, 'breaks');
    expect(breaks).toMatchObject({ state: 'running', restarts: 1, lastExit: { reason: 'error' } });
    expect(breaks.lastExit?.error).toMatchObject({ message: 'breaks stream broke' });
    expect(log.filter((e) => e === 'subscribe:breaks')).toHaveLength(2);

    await h.sup.terminateChild('breaks');
    expect(log.at(-1)).toBe('unsubscribe:breaks');
    // Its stream's timer went with it.
    await clock.advance(5_000);
    expect(childOf(h.sup.actor, 'breaks')).toMatchObject({
      state: 'stopped',
      restarts: 1,
      lastExit: { reason: 'killed' },
    });
  });

  it('restarts a fromTransition child whose reducer throws, from its initial state', () => {
    const h = harness({ children: [{ id: 'count', logic: counterChild }] });
    const first = h.ref('count');
    first.send({ type: 'INC' });
    first.send({ type: 'INC' });
    expect(first.getSnapshot().context).toBe(2);
    first.send({ type: 'CRASH' });
    const info = childOf(h.sup.actor, 'count');
    expect(info).toMatchObject({ state: 'running', restarts: 1, lastExit: { reason: 'error' } });
    expect(info.ref).not.toBe(first);
    expect(info.ref?.getSnapshot().context).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a supervisor invoked from a machine', () => {
  it("can be invoked from the machine's initial state", async () => {
    await withoutUncaught(async () => {
      const log: Log = [];
      const { actor, errors, supRef } = startApp(
        supervisor({ children: [cb('a', log), cb('b', log)] }),
        true,
      );
      expect(errors).toEqual([]);
      // The supervisor must come up: no error reaches the machine's onError.
      expect(actor.getSnapshot().context.error).toBeUndefined();
      expect(actor.getSnapshot().status).toBe('active');
      expect(actor.getSnapshot().value).toBe('supervising');
      expect(log).toEqual(['start:a', 'start:b']);
      expect(whichChildren(supRef).map((c) => c.state)).toEqual(['running', 'running']);
    });
  });

  it('runs and restarts its children on the invoking actor system clock', async () => {
    const log: Log = [];
    const { clock, actor, errors, supRef } = startApp(
      supervisor({
        children: [cb('a', log, { backoff: { minMs: 200, jitter: 0 } }), cb('b', log)],
      }),
    );
    expect(log).toEqual(['start:a', 'start:b']);
    expect(whichChildren(supRef).map((c) => [c.id, c.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ]);

    refOf(supRef, 'a').send({ type: 'CRASH' });
    // The backoff is timed by the system's SimulatedClock, not by real time.
    expect(childOf(supRef, 'a')).toMatchObject({ state: 'backoff', backoffUntil: 200 });
    await clock.advance(199);
    expect(childOf(supRef, 'a').state).toBe('backoff');
    await clock.advance(1);
    expect(childOf(supRef, 'a')).toMatchObject({ state: 'running', restarts: 1, startedAt: 200 });
    expect(actor.getSnapshot().value).toBe('supervising');
    expect(errors).toEqual([]);
  });

  it("fails into the machine's onError with a MAX_RESTART_INTENSITY SupervisorError", async () => {
    await withoutUncaught(async () => {
      const log: Log = [];
      const { actor, errors, supRef } = startApp(
        supervisor({ maxRestarts: 0, children: [cb('a', log), cb('b', log)] }),
      );
      refOf(supRef, 'a').send({ type: 'CRASH' });
      const snap = actor.getSnapshot();
      expect(snap.value).toBe('failed');
      expect(snap.context.error).toBeInstanceOf(SupervisorError);
      expect((snap.context.error as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
      expect(((snap.context.error as SupervisorError).cause as Error).message).toBe('a crashed');
      expect(supRef.getSnapshot().status).toBe('error');
      expect(log).toEqual(['start:a', 'start:b', 'stop:b']);
      // The machine handled it: it is still running and its observer saw no error.
      expect(snap.status).toBe('active');
      expect(errors).toEqual([]);
    });
  });

  it("finishes into the machine's onDone when sent belfry.shutdown", () => {
    const log: Log = [];
    const { actor, supRef } = startApp(supervisor({ children: [cb('a', log), cb('b', log)] }));
    const rec = recordEvents(supervisorEvents(supRef));
    actor.send({ type: 'SHUTDOWN_SUP' });
    const snap = actor.getSnapshot();
    expect(snap.value).toBe('finished');
    expect(log).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
    expect(isShutdownExit(snap.context.output)).toBe(true);
    expect((snap.context.output as SupervisorOutput).detail).toEqual({ reason: 'shutdown' });
    expect(rec.ofType('supervisor.stopped').map((e) => e.reason)).toEqual(['shutdown']);
  });

  it('stops the supervisor and its children when the machine leaves the invoking state', () => {
    const log: Log = [];
    const { actor, supRef, errors } = startApp(
      supervisor({ children: [cb('a', log), cb('b', log)] }),
    );
    const rec = recordEvents(supervisorEvents(supRef));
    const children = whichChildren(supRef).map((c) => c.ref as AnyActorRef);
    actor.send({ type: 'LEAVE' });
    expect(actor.getSnapshot().value).toBe('elsewhere');
    expect(log).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
    expect(supRef.getSnapshot().status).toBe('stopped');
    expect(children.map((c) => c.getSnapshot().status)).toEqual(['stopped', 'stopped']);
    expect(rec.ofType('supervisor.stopped').map((e) => e.reason)).toEqual(['killed']);
    expect(errors).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('nested supervisors', () => {
  const tree = (log: Log, options: { rootMaxRestarts?: number } = {}) => {
    const mid = supervisor({
      maxRestarts: 1,
      withinMs: 1_000,
      children: [cb('a', log), cb('b', log)],
    });
    return harness({
      log,
      ...(options.rootMaxRestarts === undefined ? {} : { maxRestarts: options.rootMaxRestarts }),
      children: [cb('r', log), { id: 'mid', logic: mid }],
    });
  };

  it('reports events of every level on the root bus, with nested paths', () => {
    const log: Log = [];
    const h = tree(log);
    const midRef = h.ref('mid');
    expect(log).toEqual(['start:r', 'start:a', 'start:b']);
    expect(h.rec.ofType('child.started').map((e) => `${e.supervisor} ${e.childId}`)).toEqual([
      'supervisor r',
      'supervisor/mid a',
      'supervisor/mid b',
      'supervisor mid',
    ]);
    expect(
      h.rec
        .ofType('supervisor.started')
        .map((e) => [e.supervisor, e.children])
        .sort(),
    ).toEqual([
      ['supervisor', 2],
      ['supervisor/mid', 2],
    ]);
    expect(whichChildren(midRef).map((c) => [c.id, c.state, c.type])).toEqual([
      ['a', 'running', 'worker'],
      ['b', 'running', 'worker'],
    ]);
    expect(childOf(h.sup.actor, 'mid')).toMatchObject({ type: 'supervisor', shutdown: 'infinity' });
    expect(h.sup.countChildren()).toMatchObject({ specs: 2, supervisors: 1, workers: 1 });

    refOf(midRef, 'a').send({ type: 'CRASH' });
    expect(h.rec.ofType('child.restarting').map((e) => `${e.supervisor} ${e.childId}`)).toEqual([
      'supervisor/mid a',
    ]);
  });

  it('restarts a mid supervisor that gave up, which starts its leaves again', async () => {
    await withoutUncaught(async () => {
      const log: Log = [];
      const h = tree(log);
      const oldMid = h.ref('mid');
      refOf(oldMid, 'a').send({ type: 'CRASH' });
      refOf(oldMid, 'a').send({ type: 'CRASH' });

      const gaveUp = h.rec.ofType('supervisor.gaveUp');
      expect(gaveUp.map((e) => [e.supervisor, e.childId, e.maxRestarts, e.withinMs])).toEqual([
        ['supervisor/mid', 'a', 1, 1_000],
      ]);
      const escalated = h.rec.ofType('supervisor.escalated');
      expect(escalated.map((e) => [e.supervisor, e.error.code])).toEqual([
        ['supervisor/mid', 'MAX_RESTART_INTENSITY'],
      ]);
      const midExit = h.rec.ofType('child.exited').filter((e) => e.childId === 'mid');
      expect(midExit.map((e) => [e.supervisor, e.reason, e.initiatedBy, e.willRestart])).toEqual([
        ['supervisor', 'error', 'child', true],
      ]);
      expect(midExit[0]?.error).toBe(escalated[0]?.error);

      const mid = childOf(h.sup.actor, 'mid');
      expect(mid).toMatchObject({ state: 'running', restarts: 1, lastExit: { reason: 'error' } });
      expect(mid.ref).not.toBe(oldMid);
      expect(oldMid.getSnapshot().status).toBe('error');
      // a crashed (no cleanup), a restarted, crashed again; mid stopped b and gave up; the new
      // mid started both leaves afresh. The root's other child was never touched.
      expect(log).toEqual([
        'start:r',
        'start:a',
        'start:b',
        'start:a',
        'stop:b',
        'start:a',
        'start:b',
      ]);
      expect(whichChildren(mid.ref as AnyActorRef).map((c) => [c.id, c.state, c.restarts])).toEqual(
        [
          ['a', 'running', 0],
          ['b', 'running', 0],
        ],
      );
      expect(h.sup.actor.getSnapshot().status).toBe('active');
    });
  });

  it('escalates through two levels when the root may not restart the mid supervisor', async () => {
    await withoutUncaught(async () => {
      const log: Log = [];
      const h = tree(log, { rootMaxRestarts: 0 });
      const midRef = h.ref('mid');
      refOf(midRef, 'a').send({ type: 'CRASH' });
      refOf(midRef, 'a').send({ type: 'CRASH' });

      const err = await h.sup.whenStopped().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SupervisorError);
      expect((err as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
      const midErr = (err as SupervisorError).cause;
      expect(midErr).toBeInstanceOf(SupervisorError);
      expect((midErr as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
      expect((midErr as SupervisorError).message).toContain('supervisor/mid');
      expect(((midErr as SupervisorError).cause as Error).message).toBe('a crashed');

      expect(h.rec.ofType('supervisor.escalated').map((e) => [e.supervisor, e.error])).toEqual([
        ['supervisor/mid', midErr],
        ['supervisor', err],
      ]);
      expect(h.sup.actor.getSnapshot().status).toBe('error');
      // mid stopped b when it gave up, then the root stopped r when it gave up in turn; nothing
      // was started again.
      expect(log).toEqual(['start:r', 'start:a', 'start:b', 'start:a', 'stop:b', 'stop:r']);
      expect(h.sup.whichChildren().map((c) => [c.id, c.state, c.ref])).toEqual([
        ['r', 'stopped', undefined],
        ['mid', 'stopped', undefined],
      ]);
      expect(midRef.getSnapshot().status).toBe('error');
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('inspection and the actor system', () => {
  it('lets inspect see the child actors and the events delivered to the supervisor', () => {
    const log: Log = [];
    const seen: InspectionEvent[] = [];
    const sup = createSupervisor({
      clock: new SimulatedClock(),
      inspect: (e) => {
        seen.push(e);
      },
      children: [cb('a', log), cb('b', log)],
    }).start();
    const created = () =>
      seen.filter((e) => e.type === '@xstate.actor' && e.actorRef !== sup.actor);
    expect(created().map((e) => (e.actorRef as AnyActorRef).id)).toEqual(['a', 'b']);
    expect(created().map((e) => e.actorRef)).toEqual(sup.whichChildren().map((c) => c.ref));

    const oldA = sup.whichChildren()[0]?.ref as AnyActorRef;
    seen.length = 0;
    oldA.send({ type: 'CRASH' });
    const toSup = seen.filter((e) => e.type === '@xstate.event' && e.actorRef === sup.actor);
    expect(toSup.map((e) => (e.type === '@xstate.event' ? e.event.type : ''))).toContain(
      'xstate.error.actor.a',
    );
    const relay = toSup.find(
      (e) => e.type === '@xstate.event' && e.event.type === 'xstate.error.actor.a',
    );
    expect(relay?.type === '@xstate.event' && relay.sourceRef).toBe(oldA);
    // The restarted instance is a new actor that inspect sees being created.
    expect(created().map((e) => e.actorRef)).toEqual([sup.whichChildren()[0]?.ref]);
    expect(created()[0]?.actorRef).not.toBe(oldA);
  });

  it('registers a child under its systemId, and the restarted instance replaces it', async () => {
    const log: Log = [];
    const h = harness({
      log,
      strategy: 'one_for_all',
      children: [cb('db', log, { systemId: 'db' }), cb('api', log)],
    });
    const system = h.sup.actor.system;
    const first = h.ref('db');
    expect(system.get('db')).toBe(first);

    first.send({ type: 'CRASH' });
    const second = h.ref('db');
    expect(second).not.toBe(first);
    expect(system.get('db')).toBe(second);

    // A sibling's crash restarts db too under one_for_all; the registry follows.
    h.ref('api').send({ type: 'CRASH' });
    const third = h.ref('db');
    expect(third).not.toBe(second);
    expect(system.get('db')).toBe(third);

    await h.sup.terminateChild('db');
    expect(system.get('db')).toBeUndefined();
    await h.sup.restartChild('db');
    expect(system.get('db')).toBe(h.ref('db'));
  });
});

// ---------------------------------------------------------------------------------------------

/** A machine that throws in an action 1 s after it starts. */
const selfDestruct = createMachine({
  initial: 'ticking',
  states: {
    ticking: {
      after: {
        1000: {
          actions: () => {
            throw new Error('timer fired');
          },
        },
      },
    },
  },
});

describe('clocks', () => {
  it("fires child machines' after delays on the supervisor's clock", async () => {
    const h = harness({ children: [{ id: 'bomb', logic: selfDestruct }] });
    const first = h.ref('bomb');
    await h.clock.advance(999);
    expect(childOf(h.sup.actor, 'bomb')).toMatchObject({ restarts: 0, ref: first });
    await h.clock.advance(1);
    expect(childOf(h.sup.actor, 'bomb')).toMatchObject({
      state: 'running',
      restarts: 1,
      startedAt: 1_000,
      lastExit: { reason: 'error', at: 1_000 },
    });
    expect(childOf(h.sup.actor, 'bomb').lastExit?.error).toMatchObject({ message: 'timer fired' });
    // The new instance's own delay runs from its start.
    await h.clock.advance(999);
    expect(childOf(h.sup.actor, 'bomb').restarts).toBe(1);
    await h.clock.advance(1);
    expect(childOf(h.sup.actor, 'bomb').restarts).toBe(2);
  });

  it('uses the clock of createActor for backoff when the supervisor has no clock option', async () => {
    const clock = new SimulatedClock(50_000);
    const log: Log = [];
    const actor = createActor(
      supervisor({ children: [cb('a', log, { backoff: { minMs: 500, jitter: 0 } })] }),
      { clock },
    );
    const rec = recordEvents(supervisorEvents(actor));
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();

    refOf(actor, 'a').send({ type: 'CRASH' });
    expect(rec.ofType('child.backoff').map((e) => [e.delayMs, e.until, e.at])).toEqual([
      [500, 50_500, 50_000],
    ]);
    expect(childOf(actor, 'a')).toMatchObject({ state: 'backoff', backoffUntil: 50_500 });
    await clock.advance(499);
    expect(childOf(actor, 'a').state).toBe('backoff');
    await clock.advance(1);
    expect(childOf(actor, 'a')).toMatchObject({ state: 'running', startedAt: 50_500 });
    expect(log).toEqual(['start:a', 'start:a']);
    shutdownSupervisor(actor);
    expect(actor.getSnapshot().status).toBe('done');
    expect(errors).toEqual([]);
  });

  it("lets nested supervisors inherit the parent's clock and bus", async () => {
    const clock = new SimulatedClock(10_000);
    const bus: SupervisorEventBus = new EventEmitter();
    const log: Log = [];
    const leaf = supervisor({
      children: [cb('w', log, { backoff: { minMs: 300, jitter: 0 } })],
    });
    const mid = supervisor({ children: [{ id: 'leaf', logic: leaf }] });
    // The clock is given to the root supervisor only, not to xstate (whose system clock stays the
    // real one), so the nested supervisors can get it only from their parent.
    const root = createActor(
      supervisor({ clock, events: bus, children: [{ id: 'mid', logic: mid }] }),
      { id: 'supervisor' },
    );
    const errors: unknown[] = [];
    root.subscribe({ error: (e) => errors.push(e) });
    const rec = recordEvents(bus);
    root.start();
    const midRef = refOf(root, 'mid');
    const leafRef = refOf(midRef, 'leaf');
    expect(supervisorEvents(midRef)).toBe(bus);
    expect(supervisorEvents(leafRef)).toBe(bus);

    refOf(leafRef, 'w').send({ type: 'CRASH' });
    expect(
      rec.ofType('child.backoff').map((e) => [e.supervisor, e.childId, e.at, e.until]),
    ).toEqual([['supervisor/mid/leaf', 'w', 10_000, 10_300]]);
    await clock.advance(299);
    expect(childOf(leafRef, 'w').state).toBe('backoff');
    await clock.advance(1);
    expect(childOf(leafRef, 'w')).toMatchObject({ state: 'running', startedAt: 10_300 });
    expect(rec.events.every((e: SupervisorEvent) => e.at >= 10_000 && e.at <= 10_300)).toBe(true);
    shutdownSupervisor(root);
    expect(root.getSnapshot().status).toBe('done');
    expect(errors).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('admin functions on any supervisor ref', () => {
  it('work on an invoked supervisor', async () => {
    const log: Log = [];
    const { actor, supRef } = startApp(supervisor({ children: [cb('a', log)] }));
    const rec = recordEvents(supervisorEvents(supRef));

    const info = await startChild(supRef, cb('x', log));
    expect(info).toMatchObject({ id: 'x', state: 'running', restarts: 0 });
    expect(whichChildren(supRef).map((c) => c.id)).toEqual(['a', 'x']);
    expect(countChildren(supRef)).toMatchObject({ specs: 2, active: 2, running: 2 });

    await terminateChild(supRef, 'x');
    expect(childOf(supRef, 'x').state).toBe('stopped');
    expect(countChildren(supRef)).toMatchObject({ specs: 2, active: 1, stopped: 1 });
    await expect(restartChild(supRef, 'x')).resolves.toMatchObject({ state: 'running' });
    await terminateChild(supRef, 'x');
    await deleteChild(supRef, 'x');
    expect(whichChildren(supRef).map((c) => c.id)).toEqual(['a']);
    await expect(deleteChild(supRef, 'a')).rejects.toMatchObject({ code: 'RUNNING' });
    expect(log).toEqual(['start:a', 'start:x', 'stop:x', 'start:x', 'stop:x']);
    expect(rec.ofType('child.started').map((e) => e.childId)).toEqual(['x', 'x']);

    shutdownSupervisor(supRef);
    expect(actor.getSnapshot().value).toBe('finished');
    await expect(startChild(supRef, cb('y', log))).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });

  it('work on a nested supervisor', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [
        {
          id: 'mid',
          logic: supervisor({ children: [cb('a', log)] }),
          restart: 'transient',
        },
      ],
    });
    const midRef = h.ref('mid');
    const events: string[] = [];
    supervisorEvents(midRef).on('child.started', (e) =>
      events.push(`${e.supervisor} ${e.childId}`),
    );

    await expect(startChild(midRef, cb('x', log))).resolves.toMatchObject({ state: 'running' });
    expect(events).toEqual(['supervisor/mid x']);
    await terminateChild(midRef, 'x');
    await restartChild(midRef, 'x');
    await terminateChild(midRef, 'x');
    await deleteChild(midRef, 'x');
    expect(whichChildren(midRef).map((c) => c.id)).toEqual(['a']);
    expect(countChildren(midRef)).toMatchObject({ specs: 1, running: 1 });
    // The root's own children are unaffected by admin calls on mid.
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['mid']);

    // A transient sub-supervisor asked to shut down is recorded as a `shutdown` exit and left
    // stopped by its parent.
    shutdownSupervisor(midRef);
    expect(midRef.getSnapshot().status).toBe('done');
    expect(childOf(h.sup.actor, 'mid')).toMatchObject({
      state: 'stopped',
      restarts: 0,
      lastExit: { reason: 'shutdown' },
    });
    expect(log).toEqual(['start:a', 'start:x', 'stop:x', 'start:x', 'stop:x', 'stop:a']);
  });

  it('refuse an actor that is not a belfry supervisor with a ConfigError', async () => {
    const plain = createActor(createMachine({})).start();
    const h = harness({ children: [machine('w')] });
    for (const ref of [plain, h.ref('w')]) {
      expect(() => whichChildren(ref)).toThrow(ConfigError);
      expect(() => countChildren(ref)).toThrow(ConfigError);
      expect(() => supervisorEvents(ref)).toThrow(ConfigError);
      expect(() => shutdownSupervisor(ref)).toThrow(ConfigError);
      await expect(terminateChild(ref, 'x')).rejects.toBeInstanceOf(ConfigError);
    }
    try {
      whichChildren(plain);
    } catch (error) {
      expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'supervisor' });
    }
  });
});
