import { supervisor } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { cb, harness, machine } from './helpers';

describe('shutdown policies', () => {
  it('gives a graceful child its budget and records a shutdown exit, without a kill', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [machine('a', { log, graceful: true, drainMs: 400 }, { shutdown: 1_000 })],
    });
    const done = h.sup.terminateChild('a');
    await h.clock.advance(399);
    expect(h.state('a')).toBe('running');
    await h.clock.advance(1);
    await done;
    expect(h.sup.whichChildren()[0]).toMatchObject({
      state: 'stopped',
      lastExit: { reason: 'shutdown', at: 400 },
    });
    expect(h.rec.ofType('child.killed')).toEqual([]);
    expect(log).toEqual(['start:a', 'stop:a']);
  });

  it('kills a child that ignores the stop request when its budget runs out', async () => {
    const h = harness({ children: [machine('a', { graceful: false }, { shutdown: 1_000 })] });
    const done = h.sup.terminateChild('a');
    await h.clock.advance(999);
    expect(h.state('a')).toBe('running');
    await h.clock.advance(1);
    await done;
    expect(h.sup.whichChildren()[0]).toMatchObject({
      state: 'stopped',
      lastExit: { reason: 'killed', at: 1_000 },
    });
    expect(h.rec.ofType('child.killed')).toMatchObject([
      { childId: 'a', afterMs: 1_000, at: 1_000 },
    ]);
  });

  it("stops a 'brutal' child at once, even a machine that would drain", async () => {
    const h = harness({
      children: [machine('a', { graceful: true, drainMs: 500 }, { shutdown: 'brutal' })],
    });
    await h.sup.terminateChild('a');
    expect(h.clock.now()).toBe(0);
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('killed');
    expect(h.rec.ofType('child.killed')).toEqual([]); // no budget ran out
  });

  it("waits without limit for an 'infinity' child, such as a sub-supervisor draining its own children", async () => {
    const log: string[] = [];
    const sub = supervisor({
      children: [
        machine('x', { log, graceful: true, drainMs: 3_000 }, { shutdown: 10_000 }),
        machine('y', { log, graceful: true, drainMs: 2_000 }, { shutdown: 10_000 }),
      ],
    });
    const h = harness({ log, children: [{ id: 'sub', logic: sub }, cb('z', log)] });
    expect(h.sup.whichChildren()[0]?.shutdown).toBe('infinity');
    log.length = 0;
    const stopped = h.sup.stop();
    await h.clock.advance(0);
    expect(log).toEqual(['stop:z']);
    await h.clock.advance(2_000);
    expect(log).toEqual(['stop:z', 'stop:y']);
    await h.clock.advance(3_000);
    await expect(stopped).resolves.toEqual({ reason: 'shutdown' });
    expect(log).toEqual(['stop:z', 'stop:y', 'stop:x']);
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('shutdown');
  });

  it('stops children one at a time in reverse order, each within its own budget', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [
        machine('a', { log, graceful: true, drainMs: 100 }, { shutdown: 1_000 }),
        machine('b', { log, graceful: false }, { shutdown: 500 }),
        machine('c', { log, graceful: true, drainMs: 300 }, { shutdown: 1_000 }),
      ],
    });
    log.length = 0;
    const stopped = h.sup.stop();
    await h.clock.advance(300); // c drains
    expect(log).toEqual(['stop:c']);
    expect(h.states()).toEqual({ a: 'running', b: 'running', c: 'stopped' });
    await h.clock.advance(500); // b ignores the request and is killed at 300 + 500
    expect(h.states()).toEqual({ a: 'running', b: 'stopped', c: 'stopped' });
    expect(h.rec.ofType('child.killed')).toMatchObject([{ childId: 'b', at: 800 }]);
    await h.clock.advance(100); // a is asked only now, and drains
    await expect(stopped).resolves.toEqual({ reason: 'shutdown' });
    expect(log).toEqual(['stop:c', 'stop:a']);
    expect(h.rec.ofType('child.exited').map((e) => [e.childId, e.reason, e.at])).toEqual([
      ['c', 'shutdown', 300],
      ['b', 'killed', 800],
      ['a', 'shutdown', 900],
    ]);
  });

  it('sends the child its own shutdownEvent when the spec names one', async () => {
    const seen: string[] = [];
    const h = harness({
      children: [
        {
          id: 'a',
          logic: cb('a', []).logic,
          input: { id: 'a', log: seen },
          shutdown: 50,
          shutdownEvent: { type: 'PLEASE_STOP' },
        },
      ],
    });
    const ref = h.ref('a');
    const sent: string[] = [];
    h.sup.actor.system.inspect((ev) => {
      if (ev.type === '@xstate.event' && ev.actorRef === ref) sent.push(ev.event.type);
    });
    const done = h.sup.terminateChild('a');
    await h.clock.advance(50);
    await done;
    expect(sent).toContain('PLEASE_STOP');
    expect(sent).not.toContain('belfry.shutdown');
  });
});
