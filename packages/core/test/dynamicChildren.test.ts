import { ConfigError, SupervisorError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { fromCallback } from 'xstate';
import { cb, harness, machine } from './helpers';

describe('dynamic children', () => {
  it('adds and starts a child at run time, after the existing ones', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('a', log)] });
    const info = await h.sup.startChild(cb('b', log));
    expect(info).toMatchObject({ id: 'b', state: 'running', restarts: 0 });
    expect(info.ref?.getSnapshot().status).toBe('active');
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['a', 'b']);
    expect(log).toEqual(['start:a', 'start:b']);
  });

  it('refuses a duplicate id: ALREADY_STARTED when running, ALREADY_PRESENT when stopped', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('a', log)] });
    await expect(h.sup.startChild(cb('a', log))).rejects.toMatchObject({ code: 'ALREADY_STARTED' });
    await h.sup.terminateChild('a');
    await expect(h.sup.startChild(cb('a', log))).rejects.toMatchObject({ code: 'ALREADY_PRESENT' });
  });

  it('refuses a bad spec with a ConfigError naming the field', async () => {
    const h = harness({ children: [] });
    const err = await h.sup.startChild({ id: 'x', logic: {} as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'INVALID_OPTION', path: 'spec.logic' });
    expect(h.sup.whichChildren()).toEqual([]);
  });

  it('does not keep the spec of a child that fails to start, and says why', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [] });
    const err = (await h.sup
      .startChild({
        id: 'bad',
        logic: cb('bad', log).logic,
        input: { id: 'bad', log, failStart: true },
      })
      .catch((e: unknown) => e)) as SupervisorError;
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err.code).toBe('START_FAILED');
    expect(err.message).toContain('bad failed to start');
    await h.clock.advance(0);
    expect(h.sup.whichChildren()).toEqual([]);
    expect(h.rec.ofType('child.restarting')).toEqual([]);
    // A duplicate systemId makes creating the actor throw: also START_FAILED, nothing kept.
    await h.sup.startChild(cb('one', log, { systemId: 'shared' }));
    await expect(h.sup.startChild(cb('two', log, { systemId: 'shared' }))).rejects.toMatchObject({
      code: 'START_FAILED',
    });
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['one']);
  });

  it('enforces maxChildren', async () => {
    const log: string[] = [];
    const h = harness({ log, maxChildren: 2, children: [cb('a', log)] });
    await h.sup.startChild(cb('b', log));
    await expect(h.sup.startChild(cb('c', log))).rejects.toMatchObject({ code: 'MAX_CHILDREN' });
    await h.sup.terminateChild('b');
    await h.sup.deleteChild('b');
    await expect(h.sup.startChild(cb('c', log))).resolves.toMatchObject({ id: 'c' });
  });

  it('terminates a child and keeps its spec; restartChild starts it again', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('a', log), cb('b', log)] });
    await h.sup.terminateChild('a');
    expect(h.states()).toEqual({ a: 'stopped', b: 'running' });
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('killed');
    await expect(h.sup.restartChild('b')).rejects.toMatchObject({ code: 'RUNNING' });
    const info = await h.sup.restartChild('a');
    expect(info.state).toBe('running');
    expect(log).toEqual(['start:a', 'start:b', 'stop:a', 'start:a']);
    // An operator's restart is not a supervisor restart.
    expect(info.restarts).toBe(0);
  });

  it('removes a temporary child spec when it is terminated', async () => {
    const log: string[] = [];
    const h = harness({ log, children: [cb('t', log, { restart: 'temporary' })] });
    await h.sup.terminateChild('t');
    expect(h.sup.whichChildren()).toEqual([]);
  });

  it('deletes only stopped children', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [cb('a', log), machine('w', {}, { backoff: { minMs: 1_000, jitter: 0 } })],
    });
    await expect(h.sup.deleteChild('a')).rejects.toMatchObject({ code: 'RUNNING' });
    await expect(h.sup.deleteChild('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    h.ref('w').send({ type: 'CRASH' });
    expect(h.state('w')).toBe('backoff');
    await expect(h.sup.deleteChild('w')).rejects.toMatchObject({ code: 'RESTARTING' });
    await h.sup.terminateChild('a');
    await h.sup.deleteChild('a');
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['w']);
  });

  it('reports NOT_FOUND for unknown ids in every call', async () => {
    const h = harness({ children: [] });
    await expect(h.sup.terminateChild('x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(h.sup.restartChild('x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(h.sup.deleteChild('x')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keeps a restartChild that fails to start as a stopped spec', async () => {
    const log: string[] = [];
    let fail = false;
    const h = harness({
      log,
      children: [
        { id: 'a', logic: cb('a', log).logic, getInput: () => ({ id: 'a', log, failStart: fail }) },
      ],
    });
    await h.sup.terminateChild('a');
    fail = true;
    await expect(h.sup.restartChild('a')).rejects.toMatchObject({ code: 'START_FAILED' });
    await h.clock.advance(0);
    expect(h.sup.whichChildren()).toMatchObject([
      { id: 'a', state: 'stopped', lastExit: { reason: 'error' } },
    ]);
  });

  it('serialises admin calls behind a shutdown in progress: they fail with SHUTTING_DOWN', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [machine('slow', { graceful: true, drainMs: 1_000 }, { shutdown: 5_000 })],
    });
    const stopped = h.sup.stop();
    const late = expect(h.sup.startChild(cb('late', log))).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
    });
    await h.clock.advance(1_000);
    await stopped;
    await late;
    expect(log).toEqual([]);
  });

  it('waits for a graceful terminateChild before running the next admin call', async () => {
    const log: string[] = [];
    const h = harness({
      log,
      children: [machine('a', { log, graceful: true, drainMs: 200 }, { shutdown: 1_000 })],
    });
    const order: string[] = [];
    const t = h.sup.terminateChild('a').then(() => order.push('terminated'));
    const r = h.sup.restartChild('a').then(() => order.push('restarted'));
    await h.clock.advance(200);
    await Promise.all([t, r]);
    expect(order).toEqual(['terminated', 'restarted']);
    expect(log).toEqual(['start:a', 'stop:a', 'start:a']);
  });

  it('supports a thousand dynamic children started and terminated at run time', async () => {
    const h = harness({ children: [] });
    const idle = fromCallback(() => () => {});
    await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => h.sup.startChild({ id: `p${i}`, logic: idle })),
    );
    expect(h.sup.countChildren()).toMatchObject({ specs: 1_000, active: 1_000 });
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => h.sup.terminateChild(`p${i}`)));
    expect(h.sup.countChildren()).toMatchObject({ specs: 1_000, active: 0, stopped: 1_000 });
  });
});
