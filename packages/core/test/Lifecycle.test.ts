import type { LifecycleAction, LifecycleRequest } from '@belfry/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectRefused,
  generatedId,
  ids,
  makeTown,
  T0,
  type TestTown,
} from './modelHelpers';

async function request(
  town: TestTown,
  action: LifecycleAction = 'restart',
  target = 'api/toast',
): Promise<LifecycleRequest> {
  // A rig's request must name a rig that exists.
  if (['park', 'unpark', 'dock', 'undock'].includes(action) && !(await town.model.rigs.get(target)))
    await town.model.rigs.create({ name: target });
  return town.model.lifecycle.request({ action, target, requestedBy: 'mayor' });
}

function token(request: LifecycleRequest | undefined): string {
  const t = request?.claim?.token;
  if (t === undefined) throw new Error('expected a claimed request');
  return t;
}

describe('Lifecycle', () => {
  describe('request', () => {
    it('queues requests in order with increasing seq', async () => {
      const town = makeTown();
      await town.model.rigs.create({ name: 'api' });
      town.clock.advanceSync(5);
      const first = await town.model.lifecycle.request({
        action: 'park',
        target: 'api',
        args: { reason: 'deploy freeze' },
        requestedBy: 'mayor',
      });
      expect(first.id).toMatch(generatedId('lc'));
      expect(first).toStrictEqual({
        id: first.id,
        seq: 1,
        action: 'park',
        target: 'api',
        args: { reason: 'deploy freeze' },
        requestedBy: 'mayor',
        requestedAt: T0 + 5,
        status: 'requested',
        attempts: 0,
      });
      const second = await request(town);
      expect(second).toMatchObject({ seq: 2, args: {} });
      expect(await town.model.lifecycle.pending()).toEqual([first, second]);
    });

    it('refuses an unknown action listing the allowed ones, and bad fields', async () => {
      const town = makeTown();
      const req = (input: unknown) => () => town.model.lifecycle.request(input as never);
      const base = { action: 'stop', target: 'api/toast', requestedBy: 'mayor' };
      await expectInvalid(town, req({ ...base, action: 'reboot' }), 'request.action', {
        message:
          "must be one of 'start', 'stop', 'restart', 'park', 'unpark', 'dock', 'undock'; got \"reboot\"",
      });
      await expectInvalid(town, req({ ...base, target: '' }), 'request.target');
      await expectInvalid(town, req({ ...base, requestedBy: 'a b' }), 'request.requestedBy');
      await expectInvalid(town, req({ ...base, args: [1] }), 'request.args');
      expect(await town.model.lifecycle.pending()).toEqual([]);
    });
  });

  describe('claimNext', () => {
    it('claims the oldest request with a lease and a token', async () => {
      const town = makeTown();
      const a = await request(town, 'stop', 'api/a');
      await request(town, 'stop', 'api/b');
      town.clock.advanceSync(10);
      const claimed = await town.model.lifecycle.claimNext({ claimer: 'daemon', leaseMs: 1_000 });
      expect(claimed).toStrictEqual({
        ...a,
        status: 'claimed',
        attempts: 1,
        claim: { by: 'daemon', at: T0 + 10, expiresAt: T0 + 1_010, token: token(claimed) },
      });
      expect(token(claimed)).toMatch(/^[0-9A-Za-z]{20}$/);
      expect(await town.model.lifecycle.get(a.id)).toEqual(claimed);
    });

    it('serves requests first in, first out by seq', async () => {
      const town = makeTown();
      const made: string[] = [];
      for (let i = 0; i < 5; i++) made.push((await request(town, 'start', `api/p${i}`)).id);
      const served: string[] = [];
      for (;;) {
        const next = await town.model.lifecycle.claimNext({ claimer: 'd', leaseMs: 1_000 });
        if (!next) break;
        served.push(next.id);
      }
      expect(served).toEqual(made);
    });

    it('hands every request to exactly one of many concurrent claimers', async () => {
      const town = makeTown();
      const requests = 10;
      const made = new Set<string>();
      for (let i = 0; i < requests; i++) made.add((await request(town, 'start', `api/p${i}`)).id);
      const claimers = ['d1', 'd2', 'd3', 'd4'];
      const calls = claimers.flatMap((claimer) => Array.from({ length: 4 }, () => ({ claimer })));
      const results = await Promise.all(
        calls.map(({ claimer }) => town.model.lifecycle.claimNext({ claimer, leaseMs: 60_000 })),
      );
      const claimed = results.filter((r): r is LifecycleRequest => r !== undefined);
      expect(claimed).toHaveLength(requests);
      expect(results.filter((r) => r === undefined)).toHaveLength(calls.length - requests);
      expect(new Set(ids(claimed))).toEqual(made);
      expect(new Set(claimed.map(token)).size).toBe(requests);
      for (const claimer of claimers) {
        const mine = claimed.filter((r) => r.claim?.by === claimer).map((r) => r.id);
        expect(new Set(mine).size).toBe(mine.length);
      }
      for (const [i, result] of results.entries()) {
        expect(result?.claim?.by ?? calls[i]?.claimer).toBe(calls[i]?.claimer);
      }
      // In store order: every stored claim is the one its claimer got back, claimed once.
      for (const r of claimed) {
        expect(await town.model.lifecycle.get(r.id)).toEqual(r);
        expect(r.attempts).toBe(1);
      }
      expect(await town.model.lifecycle.claimNext({ claimer: 'late', leaseMs: 1 })).toBeUndefined();
    });

    it('filters by action and still serves the oldest of those', async () => {
      const town = makeTown();
      const park = await request(town, 'park', 'api');
      const start = await request(town, 'start', 'api/a');
      const stop = await request(town, 'stop', 'api/b');
      const sessions = ['start', 'stop', 'restart'] as const;
      expect(
        (await town.model.lifecycle.claimNext({ claimer: 'd', leaseMs: 1_000, actions: sessions }))
          ?.id,
      ).toBe(start.id);
      expect(
        (await town.model.lifecycle.claimNext({ claimer: 'd', leaseMs: 1_000, actions: sessions }))
          ?.id,
      ).toBe(stop.id);
      expect(
        await town.model.lifecycle.claimNext({ claimer: 'd', leaseMs: 1_000, actions: sessions }),
      ).toBeUndefined();
      expect(
        (
          await town.model.lifecycle.claimNext({
            claimer: 'deacon',
            leaseMs: 1_000,
            actions: ['park', 'park', 'dock'],
          })
        )?.id,
      ).toBe(park.id);
    });

    it('refuses a bad leaseMs, claimer or action with a ConfigError', async () => {
      const town = makeTown();
      await request(town);
      const claim = (options: unknown) => () => town.model.lifecycle.claimNext(options as never);
      for (const leaseMs of [0, -1, 1.5, '1000', undefined, Number.POSITIVE_INFINITY]) {
        await expectInvalid(town, claim({ claimer: 'd', leaseMs }), 'options.leaseMs', {
          message: 'must be an integer number of ms > 0',
        });
      }
      await expectInvalid(town, claim({ claimer: 'a b', leaseMs: 1 }), 'options.claimer');
      await expectInvalid(
        town,
        claim({ claimer: 'd', leaseMs: 1, actions: ['stop', 'reboot'] }),
        'options.actions[1]',
        { message: /must be one of 'start'/ },
      );
      expect((await town.model.lifecycle.pending())[0]?.status).toBe('requested');
    });
  });

  describe('leases', () => {
    it('lets an expired claim be claimed again; the first claimer can then finish nothing', async () => {
      const town = makeTown();
      const req = await request(town);
      const first = await town.model.lifecycle.claimNext({ claimer: 'w1', leaseMs: 1_000 });
      town.clock.advanceSync(999);
      expect(
        await town.model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 1_000 }),
      ).toBeUndefined();
      town.clock.advanceSync(1);
      const second = await town.model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 1_000 });
      expect(second).toMatchObject({
        id: req.id,
        status: 'claimed',
        attempts: 2,
        claim: { by: 'w2', at: T0 + 1_000, expiresAt: T0 + 2_000 },
      });
      expect(token(second)).not.toBe(token(first));

      const stale = token(first);
      const message = `lifecycle request ${req.id}: this claim is no longer current (it expired and w2 claimed it)`;
      await expectRefused(
        town,
        () => town.model.lifecycle.complete(req.id, { token: stale, result: 'late' }),
        'CONFLICT',
        message,
      );
      await expectRefused(
        town,
        () => town.model.lifecycle.fail(req.id, { token: stale, error: 'late' }),
        'CONFLICT',
        message,
      );
      await expectRefused(
        town,
        () => town.model.lifecycle.release(req.id, { token: stale }),
        'CONFLICT',
        message,
      );
      const done = await town.model.lifecycle.complete(req.id, { token: token(second) });
      expect(done.status).toBe('done');
    });

    it('serves an expired claim before a newer waiting request', async () => {
      const town = makeTown();
      const old = await request(town, 'stop', 'api/a');
      await town.model.lifecycle.claimNext({ claimer: 'w1', leaseMs: 100 });
      const newer = await request(town, 'stop', 'api/b');
      town.clock.advanceSync(100);
      expect((await town.model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 100 }))?.id).toBe(
        old.id,
      );
      expect((await town.model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 100 }))?.id).toBe(
        newer.id,
      );
      // An expired claim of another action is not served to a filtered claimer.
      town.clock.advanceSync(100);
      expect(
        await town.model.lifecycle.claimNext({ claimer: 'w3', leaseMs: 100, actions: ['park'] }),
      ).toBeUndefined();
    });

    it('release puts a request back first in line, without its claim', async () => {
      const town = makeTown();
      const a = await request(town, 'stop', 'api/a');
      const b = await request(town, 'stop', 'api/b');
      const claimed = await town.model.lifecycle.claimNext({ claimer: 'w1', leaseMs: 60_000 });
      const released = await town.model.lifecycle.release(a.id, { token: token(claimed) });
      expect(released).toStrictEqual({ ...a, attempts: 1 });
      expect(released).not.toHaveProperty('claim');
      const again = await town.model.lifecycle.claimNext({ claimer: 'w2', leaseMs: 60_000 });
      expect(again).toMatchObject({ id: a.id, attempts: 2, claim: { by: 'w2' } });
      expect((await town.model.lifecycle.claimNext({ claimer: 'w3', leaseMs: 1 }))?.id).toBe(b.id);
      // The released token no longer finishes it.
      await expectRefused(
        town,
        () => town.model.lifecycle.complete(a.id, { token: token(claimed) }),
        'CONFLICT',
      );
    });
  });

  describe('finishing', () => {
    it('completes or fails a claimed request; finished requests leave pending()', async () => {
      const town = makeTown();
      const a = await request(town, 'start', 'api/a');
      const b = await request(town, 'start', 'api/b');
      const c = await request(town, 'start', 'api/c');
      const ca = await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      const cb = await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      expect(ids(await town.model.lifecycle.pending())).toEqual([a.id, b.id, c.id]);
      town.clock.advanceSync(10);
      const done = await town.model.lifecycle.complete(a.id, {
        token: token(ca),
        result: { pid: 42 },
      });
      expect(done).toMatchObject({ status: 'done', finishedAt: T0 + 10, result: { pid: 42 } });
      const failed = await town.model.lifecycle.fail(b.id, {
        token: token(cb),
        error: 'no such session',
      });
      expect(failed).toMatchObject({
        status: 'failed',
        finishedAt: T0 + 10,
        error: 'no such session',
      });
      expect(ids(await town.model.lifecycle.pending())).toEqual([c.id]);
      expect(await town.model.lifecycle.get(a.id)).toEqual(done);
      expect(await town.model.lifecycle.get(b.id)).toEqual(failed);
      // A finished request is never claimed again, even after its lease time.
      town.clock.advanceSync(10_000);
      expect((await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1 }))?.id).toBe(c.id);
      expect(await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1 })).toBeUndefined();
      await expectRefused(
        town,
        () => town.model.lifecycle.complete(a.id, { token: token(ca) }),
        'CONFLICT',
        `lifecycle request ${a.id} is done, not claimed`,
      );
    });

    it('lists pending requests in seq order across waiting and claimed, with a limit', async () => {
      const town = makeTown();
      const made: string[] = [];
      for (let i = 0; i < 4; i++) made.push((await request(town, 'stop', `api/p${i}`)).id);
      await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      expect(ids(await town.model.lifecycle.pending())).toEqual(made);
      expect(ids(await town.model.lifecycle.pending({ limit: 3 }))).toEqual(made.slice(0, 3));
    });

    it('refuses a wrong token, an unclaimed request and an unknown one', async () => {
      const town = makeTown();
      const req = await request(town);
      await expectRefused(
        town,
        () => town.model.lifecycle.complete(req.id, { token: 'x'.repeat(20) }),
        'CONFLICT',
        `lifecycle request ${req.id} is requested, not claimed`,
      );
      await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      for (const finish of [
        () => town.model.lifecycle.complete(req.id, { token: 'x'.repeat(20) }),
        () => town.model.lifecycle.fail(req.id, { token: 'x'.repeat(20), error: 'e' }),
        () => town.model.lifecycle.release(req.id, { token: 'x'.repeat(20) }),
      ]) {
        await expectRefused(town, finish, 'CONFLICT', /this claim is no longer current/);
      }
      await expectInvalid(
        town,
        () => town.model.lifecycle.complete(req.id, { token: '' }),
        'options.token',
      );
      await expectInvalid(
        town,
        () => town.model.lifecycle.fail(req.id, { token: 'x', error: '' }),
        'options.error',
      );
      await expectRefused(
        town,
        () => town.model.lifecycle.complete('lc-missing', { token: 'x' }),
        'NOT_FOUND',
        'unknown lifecycle request "lc-missing"',
      );
    });
  });
});

describe('claims, as documented', () => {
  it('refuses an empty action filter, which could never match', async () => {
    const town = makeTown();
    await town.model.lifecycle.request({ action: 'start', target: 'api/a', requestedBy: 'op' });
    await expectInvalid(
      town,
      () => town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 10, actions: [] }),
      'options.actions',
    );
  });

  it('lets the holder finish after its lease ran out as long as nobody else claimed it', async () => {
    const { model, clock } = makeTown();
    const req = await model.lifecycle.request({
      action: 'start',
      target: 'api/a',
      requestedBy: 'op',
    });
    const claim = await model.lifecycle.claimNext({ claimer: 'w1', leaseMs: 10 });
    clock.advanceSync(1_000);
    const done = await model.lifecycle.complete(req.id, { token: claim?.claim?.token as string });
    expect(done).toMatchObject({ status: 'done', attempts: 1 });
  });

  describe('requests on one target run in the order they were made (issue 13, item 1)', () => {
    it('a later request waits while an earlier one on the same target is claimed by a worker that died; after its lease the earlier runs first', async () => {
      const town = makeTown();
      const dock = await request(town, 'dock', 'api');
      const claimed = await town.model.lifecycle.claimNext({ claimer: 'deacon', leaseMs: 60_000 });
      expect(claimed?.id).toBe(dock.id);
      // The worker dies here (SIGKILL mid-dock); the operator asks to undock.
      const undock = await request(town, 'undock', 'api');
      const other = await request(town, 'park', 'web');
      // While the dock's lease runs, the undock is not handed out; other targets are.
      const next = await town.model.lifecycle.claimNext({ claimer: 'deacon2', leaseMs: 60_000 });
      expect(next?.id).toBe(other.id);
      await town.model.lifecycle.complete(other.id, { token: token(next) });
      expect(
        await town.model.lifecycle.claimNext({ claimer: 'deacon2', leaseMs: 60_000 }),
      ).toBeUndefined();
      town.clock.advanceSync(60_000);
      const again = await town.model.lifecycle.claimNext({ claimer: 'deacon2', leaseMs: 60_000 });
      expect(again?.id).toBe(dock.id);
      expect(
        await town.model.lifecycle.claimNext({ claimer: 'deacon2', leaseMs: 60_000 }),
      ).toBeUndefined();
      await town.model.lifecycle.complete(dock.id, { token: token(again) });
      const last = await town.model.lifecycle.claimNext({ claimer: 'deacon2', leaseMs: 60_000 });
      expect(last?.id).toBe(undock.id);
    });

    it('a request waiting for another worker holds back the later ones on its target', async () => {
      const town = makeTown();
      const stop = await request(town, 'stop', 'api/toast');
      const restart = await request(town, 'restart', 'api/toast');
      // A worker that only does restarts gets nothing: the stop before it is not done yet.
      expect(
        await town.model.lifecycle.claimNext({
          claimer: 'w',
          leaseMs: 1_000,
          actions: ['restart'],
        }),
      ).toBeUndefined();
      const first = await town.model.lifecycle.claimNext({ claimer: 'w', leaseMs: 1_000 });
      expect(first?.id).toBe(stop.id);
      await town.model.lifecycle.fail(stop.id, { token: token(first), error: 'no such agent' });
      const second = await town.model.lifecycle.claimNext({
        claimer: 'w',
        leaseMs: 1_000,
        actions: ['restart'],
      });
      expect(second?.id).toBe(restart.id);
    });

    const RIG_STATE: Record<string, string> = {
      park: 'parked',
      unpark: 'operational',
      dock: 'docked',
      undock: 'operational',
    };
    type Step =
      | { kind: 'request'; action: 'park' | 'unpark' | 'dock' | 'undock' }
      | { kind: 'work' }
      | { kind: 'die' }
      | { kind: 'wait'; ms: number };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        kind: fc.constant('request' as const),
        action: fc.constantFrom(
          'park' as const,
          'unpark' as const,
          'dock' as const,
          'undock' as const,
        ),
      }),
      fc.constant({ kind: 'work' as const }),
      fc.constant({ kind: 'die' as const }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 120_000 }) }),
    );

    it('property: over random interleavings of requests, work and killed workers, the rig ends in the state of the last request', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
          const town = makeTown();
          const lifecycle = town.model.lifecycle;
          let state = 'operational';
          let last: string | undefined;
          // A worker claims, then either finishes (applying the request) or dies mid-way.
          const claim = () => lifecycle.claimNext({ claimer: 'deacon', leaseMs: 60_000 });
          for (const step of steps) {
            if (step.kind === 'request') {
              await request(town, step.action, 'api');
              last = step.action;
            } else if (step.kind === 'wait') town.clock.advanceSync(step.ms);
            else {
              const r = await claim();
              if (!r) continue;
              // Killed after acting, before recording: the request runs again later (at least
              // once), which is why order matters.
              state = RIG_STATE[r.action] as string;
              if (step.kind === 'work') await lifecycle.complete(r.id, { token: token(r) });
            }
          }
          // The town comes back and carries out whatever is left.
          for (;;) {
            town.clock.advanceSync(60_000);
            const r = await claim();
            if (!r) break;
            state = RIG_STATE[r.action] as string;
            await lifecycle.complete(r.id, { token: token(r) });
          }
          expect(await lifecycle.pending()).toEqual([]);
          if (last !== undefined) expect(state).toBe(RIG_STATE[last]);
        }),
        { numRuns: 300 },
      );
    });
  });
});
