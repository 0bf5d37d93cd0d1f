import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectNoWrite,
  expectRefused,
  ids,
  makeTown,
  T0,
  type TestTown,
} from './modelHelpers';

/** A town with rigs `api` and `web` and open beads `b1`, `b2` in `api`. */
async function town(): Promise<TestTown> {
  const t = makeTown();
  await t.model.rigs.create({ name: 'api' });
  await t.model.rigs.create({ name: 'web' });
  await t.model.beads.create({ id: 'b1', title: 'one', rig: 'api' });
  await t.model.beads.create({ id: 'b2', title: 'two', rig: 'api' });
  return t;
}

describe('Hooks', () => {
  describe('attach', () => {
    it('puts the bead on the hook: hooked, assigned to the agent, stamped', async () => {
      const { model, clock } = await town();
      clock.advanceSync(10);
      const hook = await model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      expect(hook).toEqual({
        id: 'api/toast',
        beadId: 'b1',
        rig: 'api',
        attachedAt: T0 + 10,
        epoch: 1,
      });
      expect(await model.hooks.get('api/toast')).toEqual(hook);
      expect(await model.beads.require('b1')).toMatchObject({
        status: 'hooked',
        assignee: 'api/toast',
        updatedAt: T0 + 10,
      });
    });

    it('gives a larger epoch to every new attachment, across agents and detach cycles', async () => {
      const { model } = await town();
      const epochs: number[] = [];
      for (const [agent, bead] of [
        ['api/toast', 'b1'],
        ['api/toast', 'b1'],
        ['api/nux', 'b1'],
        ['api/toast', 'b2'],
      ] as const) {
        epochs.push((await model.hooks.attach({ agent, beadId: bead, rig: 'api' })).epoch);
        await model.hooks.detach(agent);
      }
      expect(epochs).toEqual([1, 2, 3, 4]);
      // Two hooks at once still get distinct epochs.
      const a = await model.hooks.attach({ agent: 'api/a', beadId: 'b1', rig: 'api' });
      const b = await model.hooks.attach({ agent: 'api/b', beadId: 'b2', rig: 'api' });
      expect([a.epoch, b.epoch]).toEqual([5, 6]);
    });

    it('returns the same hook (same epoch) when the same bead is attached to the same agent again', async () => {
      const t = await town();
      const first = await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      t.clock.advanceSync(100);
      const again = await expectNoWrite(t, () =>
        t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' }),
      );
      expect(again).toEqual(first);
    });

    it('refuses a second bead for an agent that already holds one, writing nothing', async () => {
      const t = await town();
      await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: 'b2', rig: 'api' }),
        'INVALID_TRANSITION',
        'agent api/toast already holds bead b1; detach it first',
      );
      expect((await t.model.beads.require('b2')).status).toBe('open');
    });

    it("refuses a bead that is on another agent's hook, writing nothing", async () => {
      const t = await town();
      await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/nux', beadId: 'b1', rig: 'api' }),
        'INVALID_TRANSITION',
        "bead b1 is already on api/toast's hook",
      );
      expect(await t.model.hooks.get('api/nux')).toBeUndefined();
      expect((await t.model.beads.require('b1')).assignee).toBe('api/toast');
    });

    it('refuses to re-prime an agent onto a bead it already closed (terminal bead)', async () => {
      const t = await town();
      await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      await t.model.hooks.detach('api/toast', { status: 'done' });
      t.clock.advanceSync(10);
      // The restarted polecat is primed again with the bead it just finished.
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' }),
        'INVALID_TRANSITION',
        'bead b1 is done; reopen it before putting it on a hook',
      );
      await t.model.beads.create({ id: 'b3', title: 'won\u2019t fix', status: 'wontfix' });
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/nux', beadId: 'b3', rig: 'api' }),
        'INVALID_TRANSITION',
        /is wontfix; reopen it/,
      );
      // Reopened, it can be hooked again.
      await t.model.beads.setStatus('b1', 'open');
      expect(
        (await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' })).epoch,
      ).toBe(2);
    });

    it('refuses an unknown rig or bead with NOT_FOUND, and bad names with a ConfigError', async () => {
      const t = await town();
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'ghost' }),
        'NOT_FOUND',
        'unknown rig "ghost"; known: api, web',
      );
      await expectRefused(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: 'bd-missing', rig: 'api' }),
        'NOT_FOUND',
        'unknown bead "bd-missing"',
      );
      await expectInvalid(
        t,
        () => t.model.hooks.attach({ agent: 'api toast', beadId: 'b1', rig: 'api' }),
        'hook.agent',
      );
      await expectInvalid(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: '' }),
        'hook.rig',
      );
      await expectInvalid(
        t,
        () => t.model.hooks.attach({ agent: 'api/toast', beadId: '', rig: 'api' }),
        'hook.beadId',
      );
    });
  });

  describe('detach', () => {
    it('puts the bead back in the pool by default: open, no assignee, hook gone', async () => {
      const { model, clock } = await town();
      const hook = await model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      clock.advanceSync(10);
      const { hook: removed, bead } = await model.hooks.detach('api/toast');
      expect(removed).toEqual(hook);
      expect(bead).toMatchObject({ id: 'b1', status: 'open', updatedAt: T0 + 10 });
      expect(bead).not.toHaveProperty('assignee');
      expect(bead).not.toHaveProperty('closedAt');
      expect(await model.beads.require('b1')).toEqual(bead);
      expect(await model.hooks.get('api/toast')).toBeUndefined();
      expect(await model.hooks.byBead('b1')).toBeUndefined();
    });

    it('clears the assignee for any non-terminal status', async () => {
      const { model } = await town();
      await model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      const { bead } = await model.hooks.detach('api/toast', { status: 'blocked' });
      expect(bead.status).toBe('blocked');
      expect(bead).not.toHaveProperty('assignee');
    });

    it('closes the bead with a terminal status, keeping who finished it, and counts for convoys', async () => {
      const { model, clock } = await town();
      const convoy = await model.convoys.create({ title: 'release', beadIds: ['b1'] });
      await model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      clock.advanceSync(10);
      const { bead } = await model.hooks.detach('api/toast', { status: 'done' });
      expect(bead).toMatchObject({
        status: 'done',
        assignee: 'api/toast',
        closedAt: T0 + 10,
        updatedAt: T0 + 10,
      });
      expect(await model.convoys.require(convoy.id)).toMatchObject({
        openCount: 0,
        lastProgressAt: T0 + 10,
      });
      expect(ids(await model.convoys.finished())).toEqual([convoy.id]);
    });

    it("refuses status 'hooked' or an unknown status with a ConfigError, writing nothing", async () => {
      const t = await town();
      await t.model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      await expectInvalid(
        t,
        () => t.model.hooks.detach('api/toast', { status: 'hooked' }),
        'options.status',
        {
          message:
            "must be a status other than 'hooked': open, in_progress, blocked, done, wontfix",
        },
      );
      await expectInvalid(
        t,
        () => t.model.hooks.detach('api/toast', { status: 'closed' }),
        'options.status',
        { message: 'got "closed"' },
      );
      expect(await t.model.hooks.get('api/toast')).toBeDefined();
    });

    it('fails for an agent without a hook with NOT_FOUND', async () => {
      const t = await town();
      await expectRefused(
        t,
        () => t.model.hooks.detach('api/ghost'),
        'NOT_FOUND',
        'unknown hook for agent "api/ghost"',
      );
    });
  });

  describe('queries', () => {
    it('finds the hook holding a bead, and lists a rig’s hooks by agent name', async () => {
      const { model } = await town();
      await model.beads.create({ id: 'w1', title: 'web work', rig: 'web' });
      const toast = await model.hooks.attach({ agent: 'api/toast', beadId: 'b1', rig: 'api' });
      const nux = await model.hooks.attach({ agent: 'api/nux', beadId: 'b2', rig: 'api' });
      const web = await model.hooks.attach({ agent: 'web/ace', beadId: 'w1', rig: 'web' });
      expect(await model.hooks.byBead('b1')).toEqual(toast);
      expect(await model.hooks.byBead('w1')).toEqual(web);
      expect(await model.hooks.list({ rig: 'api' })).toEqual([nux, toast]);
      expect(await model.hooks.list({ rig: 'api', limit: 1 })).toEqual([nux]);
      expect(await model.hooks.list({ rig: 'web' })).toEqual([web]);
      await model.hooks.detach('api/nux');
      expect(await model.hooks.list({ rig: 'api' })).toEqual([toast]);
      expect(await model.hooks.byBead('b2')).toBeUndefined();
    });
  });
});
