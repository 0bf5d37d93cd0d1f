import type { Strategy } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { cb, flaky, type Harness, harness, machine } from './helpers';

function refs(h: Harness) {
  return Object.fromEntries(h.sup.whichChildren().map((c) => [c.id, c.ref]));
}

function threeChildren(strategy: Strategy) {
  const log: string[] = [];
  const h = harness({ log, strategy, children: [cb('a', log), cb('b', log), cb('c', log)] });
  log.length = 0;
  return h;
}

describe('one_for_one', () => {
  it('restarts only the child that failed', () => {
    const h = threeChildren('one_for_one');
    const before = refs(h);
    h.ref('b').send({ type: 'CRASH' });
    const after = refs(h);
    expect(after.a).toBe(before.a);
    expect(after.b).not.toBe(before.b);
    expect(after.c).toBe(before.c);
    expect(h.log).toEqual(['start:b']);
    expect(h.sup.whichChildren().map((c) => c.restarts)).toEqual([0, 1, 0]);
  });
});

describe('one_for_all', () => {
  it('stops the others in reverse order, then starts all in order', () => {
    const h = threeChildren('one_for_all');
    const before = refs(h);
    h.ref('b').send({ type: 'CRASH' });
    const after = refs(h);
    for (const id of ['a', 'b', 'c']) expect(after[id]).not.toBe(before[id]);
    expect(h.log).toEqual(['stop:c', 'stop:a', 'start:a', 'start:b', 'start:c']);
    expect(h.sup.whichChildren().map((c) => [c.state, c.restarts])).toEqual([
      ['running', 1],
      ['running', 1],
      ['running', 1],
    ]);
    expect(h.rec.ofType('child.restarting').map((e) => [e.childId, e.cause])).toEqual([
      ['a', 'b'],
      ['b', 'b'],
      ['c', 'b'],
    ]);
  });

  it('leaves children that were stopped on purpose stopped', async () => {
    const h = threeChildren('one_for_all');
    await h.sup.terminateChild('c');
    h.log.length = 0;
    h.ref('a').send({ type: 'CRASH' });
    expect(h.log).toEqual(['stop:b', 'start:a', 'start:b']);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'stopped' });
  });

  it('does not restart temporary siblings it takes down, and drops their specs', () => {
    const log: string[] = [];
    const h = harness({
      log,
      strategy: 'one_for_all',
      children: [cb('a', log), cb('t', log, { restart: 'temporary' }), cb('b', log)],
    });
    log.length = 0;
    h.ref('a').send({ type: 'CRASH' });
    expect(log).toEqual(['stop:b', 'stop:t', 'start:a', 'start:b']);
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['a', 'b']);
  });

  it('restarts the group again when a sibling fails while being restarted', async () => {
    const log: string[] = [];
    const b = flaky('b', log);
    const h = harness({
      log,
      strategy: 'one_for_all',
      maxRestarts: 5,
      children: [cb('a', log), b.spec, cb('c', log)],
    });
    log.length = 0;
    b.failStarts(1);
    h.ref('a').send({ type: 'CRASH' });
    await h.clock.advance(0);
    // First round: b fails to start; c still starts; then b's failure restarts everyone again.
    expect(log).toEqual([
      'stop:c',
      'stop:b',
      'start:a',
      'start:c',
      'stop:c',
      'stop:a',
      'start:a',
      'start:b',
      'start:c',
    ]);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'running' });
    expect(
      h.rec
        .ofType('child.restarting')
        .filter((e) => e.childId === e.cause)
        .map((e) => e.cause),
    ).toEqual(['a', 'b']);
  });

  it("absorbs a sibling's crash that happens while a group restart is under way", async () => {
    const h = threeChildren('one_for_all');
    const a = h.ref('a');
    const c = h.ref('c');
    // c crashes while the supervisor is busy restarting for a: both failures are queued.
    h.sup.events.once('child.exited', () => c.send({ type: 'CRASH' }));
    a.send({ type: 'CRASH' });
    await h.clock.advance(0);
    // a and c crashed on their own (no cleanup), b was stopped; all three started once more.
    expect(h.log).toEqual(['stop:b', 'start:a', 'start:b', 'start:c']);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'running' });
    expect(h.sup.whichChildren().map((x) => x.lastExit?.reason)).toEqual([
      'error',
      'killed',
      'error',
    ]);
    // c's crash was absorbed by the group restart already under way: one decision, not two.
    expect(h.rec.ofType('child.restarting').filter((e) => e.childId === e.cause)).toHaveLength(1);
    expect(new Set(h.sup.whichChildren().map((x) => x.ref)).size).toBe(3);
  });
});

describe('rest_for_one', () => {
  it('restarts the failed child and those after it, not those before', () => {
    const log: string[] = [];
    const h = harness({
      log,
      strategy: 'rest_for_one',
      children: [cb('a', log), cb('b', log), cb('c', log), cb('d', log)],
    });
    log.length = 0;
    const before = refs(h);
    h.ref('b').send({ type: 'CRASH' });
    const after = refs(h);
    expect(after.a).toBe(before.a);
    for (const id of ['b', 'c', 'd']) expect(after[id]).not.toBe(before[id]);
    expect(log).toEqual(['stop:d', 'stop:c', 'start:b', 'start:c', 'start:d']);
  });

  it('restarts only the last child when the last one fails', () => {
    const h = threeChildren('rest_for_one');
    h.ref('c').send({ type: 'CRASH' });
    expect(h.log).toEqual(['start:c']);
  });

  it('restarts again when a later child fails while being restarted', async () => {
    const log: string[] = [];
    const c = flaky('c', log);
    const h = harness({
      log,
      strategy: 'rest_for_one',
      maxRestarts: 5,
      children: [cb('a', log), cb('b', log), c.spec],
    });
    log.length = 0;
    c.failStarts(1);
    h.ref('b').send({ type: 'CRASH' });
    await h.clock.advance(0);
    expect(log).toEqual(['stop:c', 'start:b', 'start:c']);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'running' });
    expect(h.sup.whichChildren().map((c) => c.restarts)).toEqual([0, 1, 2]);
  });

  it('waits for graceful siblings to stop before restarting, in reverse order', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      strategy: 'rest_for_one',
      children: [
        machine('a', { log }),
        machine('b', { log, graceful: true, drainMs: 300 }, { shutdown: 1_000 }),
        machine('c', { log, graceful: true, drainMs: 200 }, { shutdown: 1_000 }),
      ],
    });
    log.length = 0;
    h.ref('a').send({ type: 'CRASH' });
    expect(h.states()).toEqual({ a: 'restarting', b: 'running', c: 'running' });
    await h.clock.advance(199);
    expect(log).toEqual([]);
    await h.clock.advance(1);
    expect(log).toEqual(['stop:c']);
    expect(h.states()).toEqual({ a: 'restarting', b: 'running', c: 'restarting' });
    await h.clock.advance(300);
    expect(log).toEqual(['stop:c', 'stop:b', 'start:a', 'start:b', 'start:c']);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'running' });
    expect(h.sup.whichChildren().map((c) => c.lastExit?.reason)).toEqual([
      'error',
      'shutdown',
      'shutdown',
    ]);
  });
});
