import { type ProbeContext, type ProbeOptions, SupervisorError } from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import type { AnyActorRef } from 'xstate';
import { cb, harness, type Log, machine } from './helpers';

/** A liveness probe that fails for the first instance and passes for every restarted one. */
function failsUntilRestarted(extra: Partial<ProbeOptions> = {}): ProbeOptions {
  return {
    check: ({ restarts }) => restarts > 0,
    periodMs: 100,
    failureThreshold: 1,
    ...extra,
  };
}

describe('startup probe', () => {
  it('keeps the child starting until the check passes, then reports it running and ready', async () => {
    const log: Log = [];
    const clock = new SimulatedClock();
    let ok = false;
    const checks: number[] = [];
    const h = harness({
      clock,
      log,
      children: [
        cb('a', log, {
          probes: {
            startup: {
              check: () => {
                checks.push(clock.now());
                return ok;
              },
              periodMs: 100,
              failureThreshold: 10,
            },
          },
        }),
      ],
    });
    expect(h.state('a')).toBe('starting');
    expect(h.sup.countChildren()).toMatchObject({ active: 1, starting: 1, running: 0 });
    expect(h.rec.ofType('child.started').map((e) => e.childId)).toEqual(['a']);

    await clock.advance(0); // first check at once (initialDelayMs defaults to 0)
    await clock.advance(100);
    expect(checks).toEqual([0, 100]);
    expect(h.state('a')).toBe('starting');
    expect(h.rec.ofType('child.ready')).toHaveLength(0);
    expect(
      h.rec.ofType('child.probeFailed').map((e) => [e.probe, e.failures, e.threshold, e.at]),
    ).toEqual([
      ['startup', 1, 10, 0],
      ['startup', 2, 10, 100],
    ]);

    ok = true;
    await clock.advance(100);
    expect(checks).toEqual([0, 100, 200]);
    expect(h.state('a')).toBe('running');
    expect(h.sup.countChildren()).toMatchObject({ active: 1, starting: 0, running: 1 });
    expect(h.rec.ofType('child.ready').map((e) => [e.childId, e.at])).toEqual([['a', 200]]);

    // The startup probe is done once it has passed.
    await clock.advance(10_000);
    expect(checks).toEqual([0, 100, 200]);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
  });

  it('starts liveness and heartbeat monitoring only once the startup probe passes', async () => {
    const clock = new SimulatedClock();
    let ok = false;
    const liveness: number[] = [];
    const h = harness({
      clock,
      children: [
        cb('a', [], {
          probes: {
            startup: { check: () => ok, periodMs: 100, failureThreshold: 10 },
            liveness: {
              check: () => {
                liveness.push(clock.now());
                return true;
              },
              periodMs: 50,
            },
            heartbeat: { intervalMs: 30, graceMs: 30 },
          },
        }),
      ],
    });
    // Far longer than the heartbeat allows, but the child is not ready yet.
    await clock.advance(250);
    expect(liveness).toEqual([]);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.state('a')).toBe('starting');

    ok = true;
    await clock.advance(50); // startup check at 300 passes
    expect(h.state('a')).toBe('running');
    await clock.advance(59);
    expect(liveness).toEqual([350]); // one periodMs after ready
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    await clock.advance(1); // 300 + intervalMs + graceMs
    expect(h.rec.ofType('child.unhealthy').map((e) => [e.probe, e.at])).toEqual([
      ['heartbeat', 360],
    ]);
  });

  it('declares the child unhealthy after failureThreshold failures and restarts it', async () => {
    const log: Log = [];
    const h = harness({
      log,
      maxRestarts: 5,
      withinMs: 100_000,
      children: [
        cb('a', log, {
          probes: {
            startup: {
              check: ({ restarts }) => restarts > 0,
              periodMs: 100,
              failureThreshold: 3,
            },
          },
        }),
      ],
    });
    const first = h.ref('a');
    await h.clock.advance(199);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.state('a')).toBe('starting');
    expect(h.ref('a')).toBe(first);

    await h.clock.advance(1); // checks at 0, 100, 200
    const unhealthy = h.rec.ofType('child.unhealthy');
    expect(unhealthy.map((e) => [e.childId, e.probe, e.at])).toEqual([['a', 'startup', 200]]);
    expect(unhealthy[0]?.error).toBeInstanceOf(SupervisorError);
    expect(unhealthy[0]?.error.code).toBe('PROBE_FAILED');
    expect(h.rec.ofType('child.probeFailed').map((e) => e.failures)).toEqual([1, 2, 3]);

    expect(log).toEqual(['start:a', 'stop:a', 'start:a']);
    const info = h.sup.whichChildren()[0];
    expect(info?.restarts).toBe(1);
    expect(info?.ref).not.toBe(first);
    expect(info?.lastExit).toMatchObject({ reason: 'error', at: 200 });
    expect(info?.lastExit?.error).toBeInstanceOf(SupervisorError);
    expect(info?.lastExit?.error).toMatchObject({ code: 'PROBE_FAILED' });
    expect(h.rec.ofType('child.restarting').map((e) => [e.childId, e.restarts])).toEqual([
      ['a', 1],
    ]);

    // The new instance runs its own startup probe (at once, at 200) and passes it.
    expect(h.state('a')).toBe('running');
    expect(h.rec.ofType('child.ready').map((e) => e.at)).toEqual([200]);
  });

  it('counts a failed startup probe against maxRestarts', async () => {
    const h = harness({
      maxRestarts: 1,
      withinMs: 100_000,
      children: [
        cb('a', [], {
          probes: { startup: { check: () => false, periodMs: 100, failureThreshold: 3 } },
        }),
      ],
    });
    await h.clock.advance(200); // first instance unhealthy: restart 1 of 1 allowed
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.sup.whichChildren()[0]?.restarts).toBe(1);
    await h.clock.advance(200); // second instance unhealthy: over the limit
    expect(h.sup.actor.getSnapshot().status).toBe('error');
    const err = await h.sup.whenStopped().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect((err as SupervisorError).code).toBe('MAX_RESTART_INTENSITY');
    expect(h.rec.ofType('supervisor.gaveUp').map((e) => [e.childId, e.at])).toEqual([['a', 400]]);
  });
  it('runs its first startup check at initialDelayMs when given', async () => {
    const clock = new SimulatedClock();
    const at: number[] = [];
    const h = harness({
      clock,
      children: [
        cb('a', [], {
          probes: {
            startup: {
              check: () => {
                at.push(clock.now());
                return at.length > 1;
              },
              initialDelayMs: 250,
              periodMs: 100,
            },
          },
        }),
      ],
    });
    await clock.advance(249);
    expect(at).toEqual([]);
    expect(h.state('a')).toBe('starting');
    await clock.advance(101);
    expect(at).toEqual([250, 350]);
    expect(h.rec.ofType('child.ready').map((e) => e.at)).toEqual([350]);
    expect(h.state('a')).toBe('running');
  });
});

describe('liveness probe', () => {
  it('finds a hung child: reports each failure, then stops it and starts a new instance', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [
        cb('a', log, {
          probes: {
            liveness: {
              check: ({ restarts }) => restarts > 0, // the first instance is hung
              periodMs: 100,
              failureThreshold: 3,
            },
          },
        }),
      ],
    });
    expect(h.state('a')).toBe('running'); // no startup probe: running at once
    const before = h.ref('a');

    await h.clock.advance(299);
    expect(
      h.rec.ofType('child.probeFailed').map((e) => [e.probe, e.failures, e.threshold, e.at]),
    ).toEqual([
      ['liveness', 1, 3, 100],
      ['liveness', 2, 3, 200],
    ]);
    expect(h.rec.ofType('child.probeFailed')[0]?.error).toBeInstanceOf(Error);
    expect(h.ref('a')).toBe(before);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);

    await h.clock.advance(1);
    expect(h.rec.ofType('child.probeFailed').map((e) => e.failures)).toEqual([1, 2, 3]);
    const unhealthy = h.rec.ofType('child.unhealthy');
    expect(unhealthy.map((e) => [e.childId, e.probe, e.at])).toEqual([['a', 'liveness', 300]]);
    expect(unhealthy[0]?.error.code).toBe('PROBE_FAILED');

    const after = h.ref('a');
    expect(after).not.toBe(before);
    expect(before.getSnapshot().status).toBe('stopped');
    expect(log).toEqual(['start:a', 'stop:a', 'start:a']);
    expect(h.sup.whichChildren()[0]).toMatchObject({ state: 'running', restarts: 1 });
    expect(
      h.rec.ofType('child.exited').map((e) => [e.reason, e.initiatedBy, e.willRestart]),
    ).toEqual([['error', 'supervisor', true]]);

    // The new instance is healthy and is left alone.
    await h.clock.advance(10_000);
    expect(h.ref('a')).toBe(after);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(1);
  });

  it('resets the failure count after a successful check', async () => {
    const results = [false, false, true, false, false, true, false, false, true];
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: { check: () => results.shift() ?? true, periodMs: 100, failureThreshold: 3 },
          },
        }),
      ],
    });
    const ref = h.ref('a');
    await h.clock.advance(1_000);
    expect(results).toEqual([]);
    expect(h.rec.ofType('child.probeFailed').map((e) => e.failures)).toEqual([1, 2, 1, 2, 1, 2]);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.ref('a')).toBe(ref);
  });

  it.each([
    // [initialDelayMs, time advanced, when checks ran]: by default one periodMs after ready.
    [undefined, [99, 251], [[], [100, 200, 300]]],
    [30, [29, 1, 200], [[], [30], [30, 130, 230]]],
    [0, [0, 100], [[0], [0, 100]]],
  ] as const)(
    'runs its first check at initialDelayMs %s, then every periodMs',
    async (initialDelayMs, steps, expected) => {
      const clock = new SimulatedClock();
      const at: number[] = [];
      const check = () => {
        at.push(clock.now());
        return true;
      };
      const liveness =
        initialDelayMs === undefined
          ? { check, periodMs: 100 }
          : { check, periodMs: 100, initialDelayMs };
      harness({ clock, children: [cb('a', [], { probes: { liveness } })] });
      for (const [i, ms] of steps.entries()) {
        await clock.advance(ms);
        expect(at).toEqual(expected[i]);
      }
    },
  );

  it('passes the check the running instance, its id, restart count and a live signal', async () => {
    const seen: ProbeContext[] = [];
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: (ctx) => {
                seen.push(ctx);
                return true;
              },
              periodMs: 100,
            },
          },
        }),
      ],
    });
    await h.clock.advance(100);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.id).toBe('a');
    expect(seen[0]?.ref).toBe(h.ref('a'));
    expect(seen[0]?.restarts).toBe(0);
    expect(seen[0]?.signal.aborted).toBe(false);
  });
});

describe('check results', () => {
  it('fails a check that never settles after timeoutMs and aborts its signal', async () => {
    const signals: AbortSignal[] = [];
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: ({ signal }) => {
                signals.push(signal);
                return new Promise<boolean>(() => {});
              },
              periodMs: 100,
              timeoutMs: 50,
              failureThreshold: 2,
            },
          },
        }),
      ],
    });
    const first = h.ref('a');
    await h.clock.advance(149);
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(false);
    expect(h.rec.ofType('child.probeFailed')).toHaveLength(0);

    await h.clock.advance(1);
    expect(signals[0]?.aborted).toBe(true);
    const failed = h.rec.ofType('child.probeFailed');
    expect(failed.map((e) => [e.failures, e.at])).toEqual([[1, 150]]);
    expect(failed[0]?.error).toMatchObject({
      message: expect.stringMatching(/timed out after 50 ms/),
    });

    // Next check one periodMs after the failure; it times out too and the child is unhealthy.
    await h.clock.advance(150);
    expect(signals).toHaveLength(2);
    expect(signals[1]?.aborted).toBe(true);
    expect(h.rec.ofType('child.unhealthy').map((e) => [e.probe, e.at])).toEqual([
      ['liveness', 300],
    ]);
    expect(h.ref('a')).not.toBe(first);
  });

  it('ignores a result that arrives after the check timed out', async () => {
    const clock = new SimulatedClock();
    const h = harness({
      clock,
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              // Healthy, but too slow: answers after 80 ms with a 50 ms timeout.
              check: () =>
                new Promise<boolean>((resolve) => clock.setTimeout(() => resolve(true), 80)),
              periodMs: 100,
              timeoutMs: 50,
              failureThreshold: 2,
            },
          },
        }),
      ],
    });
    await clock.advance(300);
    expect(h.rec.ofType('child.probeFailed').map((e) => [e.failures, e.at])).toEqual([
      [1, 150],
      [2, 300],
    ]);
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([300]);
  });

  it('accepts a check that resolves to true', async () => {
    let calls = 0;
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: async () => {
                calls++;
                return true;
              },
              periodMs: 100,
              failureThreshold: 1,
            },
          },
        }),
      ],
    });
    const ref = h.ref('a');
    await h.clock.advance(1_000);
    expect(calls).toBe(10);
    expect(h.rec.ofType('child.probeFailed')).toHaveLength(0);
    expect(h.ref('a')).toBe(ref);
  });

  const boom = new Error('boom');
  it.each<[string, ProbeOptions['check'], (error: unknown) => void]>([
    [
      'throws',
      () => {
        throw boom;
      },
      (error) => expect(error).toBe(boom),
    ],
    ['rejects', () => Promise.reject(boom), (error) => expect(error).toBe(boom)],
    [
      'returns false',
      () => false,
      (error) => expect((error as Error).message).toMatch(/returned false/),
    ],
    [
      'returns a truthy non-boolean',
      () => 1 as unknown as boolean,
      (error) => expect((error as Error).message).toMatch(/must return true or false/),
    ],
    [
      'returns undefined',
      () => undefined as unknown as boolean,
      (error) => expect((error as Error).message).toMatch(/must return true or false/),
    ],
    [
      'resolves to a non-boolean',
      () => Promise.resolve('yes' as unknown as boolean),
      (error) => expect((error as Error).message).toMatch(/must return true or false/),
    ],
  ])('counts a check that %s as a failure', async (_name, check, checkError) => {
    const h = harness({
      children: [
        cb('a', [], { probes: { liveness: { check, periodMs: 100, failureThreshold: 1 } } }),
      ],
    });
    const first = h.ref('a');
    await h.clock.advance(100);
    const failed = h.rec.ofType('child.probeFailed');
    expect(failed.map((e) => [e.probe, e.failures, e.at])).toEqual([['liveness', 1, 100]]);
    checkError(failed[0]?.error);
    const unhealthy = h.rec.ofType('child.unhealthy');
    expect(unhealthy.map((e) => e.error.code)).toEqual(['PROBE_FAILED']);
    expect(unhealthy[0]?.error.cause).toBe(failed[0]?.error);
    expect(h.ref('a')).not.toBe(first);
  });
});

describe('heartbeat', () => {
  it('keeps a child that beats within interval + grace running', async () => {
    const h = harness({
      children: [machine('a', {}, { probes: { heartbeat: { intervalMs: 100, graceMs: 50 } } })],
    });
    const ref = h.ref('a');
    // Beats 140 ms apart: later than intervalMs, but within the grace.
    for (let i = 0; i < 10; i++) {
      await h.clock.advance(140);
      h.ref('a').send({ type: 'BEAT' });
    }
    expect(h.clock.now()).toBe(1_400);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.ref('a')).toBe(ref);
    expect(h.state('a')).toBe('running');
  });

  it('declares a child that stops beating unhealthy exactly intervalMs + graceMs after its last beat', async () => {
    const h = harness({
      children: [
        machine(
          'a',
          {},
          { shutdown: 'brutal', probes: { heartbeat: { intervalMs: 100, graceMs: 50 } } },
        ),
      ],
    });
    const first = h.ref('a');
    for (let i = 0; i < 5; i++) {
      await h.clock.advance(100);
      first.send({ type: 'BEAT' });
    }
    // Last beat at 500: due at 650.
    await h.clock.advance(149);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.ref('a')).toBe(first);
    await h.clock.advance(1);
    const unhealthy = h.rec.ofType('child.unhealthy');
    expect(unhealthy.map((e) => [e.childId, e.probe, e.at])).toEqual([['a', 'heartbeat', 650]]);
    expect(unhealthy[0]?.error).toBeInstanceOf(SupervisorError);
    expect(unhealthy[0]?.error.code).toBe('HEARTBEAT_MISSED');
    expect(h.ref('a')).not.toBe(first);
    expect(h.sup.whichChildren()[0]?.restarts).toBe(1);
  });

  it('counts from when the child became ready if it never beats', async () => {
    const h = harness({
      children: [
        machine(
          'a',
          {},
          { shutdown: 'brutal', probes: { heartbeat: { intervalMs: 100, graceMs: 50 } } },
        ),
      ],
    });
    await h.clock.advance(149);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.unhealthy').map((e) => [e.probe, e.at])).toEqual([
      ['heartbeat', 150],
    ]);
    // The new instance gets its own full interval + grace from its start.
    await h.clock.advance(149);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([150, 300]);
  });

  it('defaults graceMs to intervalMs', async () => {
    const h = harness({
      children: [machine('a', {}, { probes: { heartbeat: { intervalMs: 100 } } })],
    });
    await h.clock.advance(199);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([200]);
  });

  it('counts sup.heartbeat(childId) from outside as a beat', async () => {
    const h = harness({
      children: [cb('a', [], { probes: { heartbeat: { intervalMs: 100, graceMs: 50 } } })],
    });
    const ref = h.ref('a');
    for (let i = 0; i < 10; i++) {
      await h.clock.advance(100);
      h.sup.heartbeat('a');
    }
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.ref('a')).toBe(ref);
    await h.clock.advance(149);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.unhealthy').map((e) => [e.probe, e.at])).toEqual([
      ['heartbeat', 1_150],
    ]);
  });
  it('ignores beats from an instance that is already being stopped as unhealthy', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [
        machine(
          'a',
          { log, graceful: true, drainMs: 300 },
          { probes: { heartbeat: { intervalMs: 100, graceMs: 50 } } },
        ),
      ],
    });
    const first = h.ref('a');
    await h.clock.advance(150); // unhealthy; a drains until 450
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([150]);
    for (let i = 0; i < 2; i++) {
      await h.clock.advance(100);
      first.send({ type: 'BEAT' }); // the draining instance still beats
    }
    expect(h.ref('a')).toBe(first);
    await h.clock.advance(100);
    expect(h.clock.now()).toBe(450);
    // It was stopped and replaced anyway, and its beats did not count for the new instance.
    expect(log).toEqual(['start:a', 'stop:a', 'start:a']);
    expect(h.ref('a')).not.toBe(first);
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('error');
    await h.clock.advance(149);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([150, 600]);
  });
});

describe('stopping an unhealthy child', () => {
  it('asks a graceful machine to shut down, waits for it, records error and restarts a transient child', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [
        machine(
          'a',
          { log, graceful: true, drainMs: 100 },
          { restart: 'transient', probes: { liveness: failsUntilRestarted() } },
        ),
      ],
    });
    const first = h.ref('a');
    await h.clock.advance(100); // unhealthy: sent belfry.shutdown, drains for 100 ms
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([100]);
    await h.clock.advance(99);
    expect(log).toEqual(['start:a']); // still draining
    expect(first.getSnapshot().value).toBe('draining');
    expect(h.rec.ofType('child.exited')).toHaveLength(0);

    await h.clock.advance(1);
    expect(log).toEqual(['start:a', 'stop:a', 'start:a']); // it finished its final state itself
    expect(first.getSnapshot().status).toBe('done');
    expect(h.rec.ofType('child.killed')).toHaveLength(0);

    const unhealthyError = h.rec.ofType('child.unhealthy')[0]?.error;
    const exited = h.rec.ofType('child.exited');
    expect(exited).toHaveLength(1);
    expect(exited[0]).toMatchObject({
      childId: 'a',
      reason: 'error',
      initiatedBy: 'supervisor',
      willRestart: true,
      at: 200,
    });
    expect(exited[0]?.error).toBe(unhealthyError);
    const info = h.sup.whichChildren()[0];
    expect(info?.lastExit).toEqual({ reason: 'error', at: 200, error: unhealthyError });
    expect(info).toMatchObject({ state: 'running', restarts: 1 });
    expect(h.ref('a')).not.toBe(first);
  });

  it('kills an unhealthy machine that ignores the shutdown event once its budget runs out', async () => {
    const h = harness({
      children: [machine('a', {}, { shutdown: 300, probes: { liveness: failsUntilRestarted() } })],
    });
    const first = h.ref('a');
    await h.clock.advance(399);
    expect(h.ref('a')).toBe(first);
    await h.clock.advance(1);
    expect(h.rec.ofType('child.killed').map((e) => [e.childId, e.afterMs, e.at])).toEqual([
      ['a', 300, 400],
    ]);
    expect(h.sup.whichChildren()[0]?.lastExit?.reason).toBe('error');
    expect(h.ref('a')).not.toBe(first);
  });

  it('removes a temporary child found unhealthy', async () => {
    const log: Log = [];
    const h = harness({
      log,
      children: [
        cb('keep', log),
        cb('a', log, { restart: 'temporary', probes: { liveness: failsUntilRestarted() } }),
      ],
    });
    await h.clock.advance(100);
    expect(log).toEqual(['start:keep', 'start:a', 'stop:a']);
    expect(h.sup.whichChildren().map((c) => c.id)).toEqual(['keep']);
    expect(h.rec.ofType('child.exited').map((e) => [e.childId, e.reason, e.willRestart])).toEqual([
      ['a', 'error', false],
    ]);
    expect(h.sup.actor.getSnapshot().status).toBe('active');
    expect(h.clock.pendingTimers()).toBe(0);
  });
});

describe('probe lifetime', () => {
  it('stops checking a child that was terminated and clears its timers', async () => {
    let checks = 0;
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: () => {
                checks++;
                return true;
              },
              periodMs: 100,
            },
            heartbeat: { intervalMs: 100 },
          },
        }),
      ],
    });
    await h.clock.advance(150);
    h.sup.heartbeat('a');
    expect(checks).toBe(1);
    expect(h.clock.pendingTimers()).toBe(2); // next liveness check + heartbeat deadline

    await h.sup.terminateChild('a');
    expect(h.state('a')).toBe('stopped');
    expect(h.clock.pendingTimers()).toBe(0);
    await h.clock.advance(10_000);
    expect(checks).toBe(1);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
    expect(h.rec.ofType('child.probeFailed')).toHaveLength(0);
  });

  it('aborts a check in flight when the child stops', async () => {
    const signals: AbortSignal[] = [];
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: ({ signal }) => {
                signals.push(signal);
                return new Promise<boolean>(() => {});
              },
              periodMs: 100,
              timeoutMs: 500,
            },
          },
        }),
      ],
    });
    await h.clock.advance(120);
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(false);
    await h.sup.terminateChild('a');
    expect(signals[0]?.aborted).toBe(true);
    expect(h.clock.pendingTimers()).toBe(0);
    await h.clock.advance(1_000);
    expect(h.rec.ofType('child.probeFailed')).toHaveLength(0);
  });

  it('starts fresh probes for each new instance', async () => {
    const clock = new SimulatedClock();
    const calls: Array<{ at: number; restarts: number; ref: AnyActorRef }> = [];
    const h = harness({
      clock,
      maxRestarts: 10,
      withinMs: 100_000,
      children: [
        cb('a', [], {
          probes: {
            liveness: {
              check: ({ restarts, ref }) => {
                calls.push({ at: clock.now(), restarts, ref });
                return false;
              },
              periodMs: 100,
              failureThreshold: 2,
            },
          },
        }),
      ],
    });
    await clock.advance(400);
    expect(calls.map((c) => [c.at, c.restarts])).toEqual([
      [100, 0],
      [200, 0],
      [300, 1],
      [400, 1],
    ]);
    expect(calls[0]?.ref).toBe(calls[1]?.ref);
    expect(calls[2]?.ref).toBe(calls[3]?.ref);
    expect(calls[2]?.ref).not.toBe(calls[0]?.ref);
    // The failure count starts again at 1 for the new instance.
    expect(h.rec.ofType('child.probeFailed').map((e) => e.failures)).toEqual([1, 2, 1, 2]);
    expect(h.rec.ofType('child.unhealthy').map((e) => e.at)).toEqual([200, 400]);
    // Only the current instance's next check is scheduled; nothing left over from the others.
    expect(h.clock.pendingTimers()).toBe(1);
  });

  it('runs the probes again for a child restarted with restartChild', async () => {
    let checks = 0;
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            startup: {
              check: () => {
                checks++;
                return true;
              },
            },
          },
        }),
      ],
    });
    await h.clock.advance(0);
    expect(checks).toBe(1);
    await h.sup.terminateChild('a');
    const info = await h.sup.restartChild('a');
    expect(info.state).toBe('starting');
    await h.clock.advance(0);
    expect(checks).toBe(2);
    expect(h.state('a')).toBe('running');
    expect(h.rec.ofType('child.ready')).toHaveLength(2);
  });

  it('leaves no probe timers behind when the supervisor stops', async () => {
    const h = harness({
      children: [
        cb('a', [], {
          probes: {
            startup: { check: () => false, periodMs: 100, failureThreshold: 100 },
          },
        }),
        cb('b', [], {
          probes: {
            liveness: { check: () => new Promise<boolean>(() => {}), periodMs: 100 },
            heartbeat: { intervalMs: 1_000 },
          },
        }),
      ],
    });
    await h.clock.advance(150); // b has a check in flight, a is still starting
    expect(h.clock.pendingTimers()).toBeGreaterThan(0);
    await expect(h.sup.stop()).resolves.toEqual({ reason: 'shutdown' });
    expect(h.clock.pendingTimers()).toBe(0);
    await h.clock.advance(10_000);
    expect(h.rec.ofType('child.unhealthy')).toHaveLength(0);
  });
});
