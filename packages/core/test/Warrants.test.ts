import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectNoWrite,
  expectRefused,
  generatedId,
  ids,
  makeTown,
  T0,
} from './modelHelpers';

const STUCK = { target: 'api/toast', reason: 'no output for 2h', filedBy: 'deacon' };

describe('Warrants', () => {
  describe('file', () => {
    it('files a pending warrant stamped by the clock', async () => {
      const { model, clock } = makeTown();
      clock.advanceSync(10);
      const { warrant, created } = await model.warrants.file(STUCK);
      expect(created).toBe(true);
      expect(warrant.id).toMatch(generatedId('wr'));
      expect(warrant).toStrictEqual({
        id: warrant.id,
        ...STUCK,
        filedAt: T0 + 10,
        status: 'pending',
      });
      expect(await model.warrants.get(warrant.id)).toEqual(warrant);
      expect(await model.warrants.pending()).toEqual([warrant]);
    });

    it('returns the pending warrant when the same target is filed again, writing nothing', async () => {
      const town = makeTown();
      const first = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(60_000);
      const again = await expectNoWrite(town, () =>
        town.model.warrants.file({ ...STUCK, reason: 'still stuck', filedBy: 'witness' }),
      );
      expect(again).toEqual({ warrant: first.warrant, created: false });
    });

    it('keeps one pending warrant per target even when filed concurrently', async () => {
      const { model } = makeTown();
      const results = await Promise.all([
        model.warrants.file(STUCK),
        model.warrants.file({ ...STUCK, filedBy: 'witness' }),
        model.warrants.file({ ...STUCK, target: 'api/nux' }),
      ]);
      expect(results.map((r) => r.created)).toEqual([true, false, true]);
      expect(results[1]?.warrant).toEqual(results[0]?.warrant);
      expect(await model.warrants.pending()).toHaveLength(2);
    });

    it('refuses bad fields with a ConfigError at the field', async () => {
      const town = makeTown();
      const file = (input: unknown) => () => town.model.warrants.file(input as never);
      await expectInvalid(town, file({ ...STUCK, target: 'bad target' }), 'warrant.target');
      await expectInvalid(town, file({ ...STUCK, reason: '' }), 'warrant.reason');
      await expectInvalid(town, file({ ...STUCK, filedBy: undefined }), 'warrant.filedBy');
      await expectInvalid(town, file(undefined), 'warrant.target');
    });
  });

  describe('execute and cancel', () => {
    it('executes a pending warrant once, recording who and when', async () => {
      const town = makeTown();
      const { warrant } = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(10);
      const executed = await town.model.warrants.execute(warrant.id, { by: 'boot' });
      expect(executed).toStrictEqual({
        ...warrant,
        status: 'executed',
        executedAt: T0 + 10,
        executedBy: 'boot',
      });
      expect(await town.model.warrants.get(warrant.id)).toEqual(executed);
      expect(await town.model.warrants.pending()).toEqual([]);

      town.clock.advanceSync(10);
      await expectRefused(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'boot-2' }),
        'INVALID_TRANSITION',
        `warrant ${warrant.id} was already executed at ${T0 + 10}`,
      );
      await expectRefused(
        town,
        () => town.model.warrants.cancel(warrant.id),
        'INVALID_TRANSITION',
        /was already executed/,
      );
    });

    it('cancels a pending warrant, which then cannot be executed', async () => {
      const town = makeTown();
      const { warrant } = await town.model.warrants.file(STUCK);
      town.clock.advanceSync(10);
      const cancelled = await town.model.warrants.cancel(warrant.id);
      expect(cancelled).toStrictEqual({ ...warrant, status: 'cancelled', cancelledAt: T0 + 10 });
      expect(await town.model.warrants.pending()).toEqual([]);
      await expectRefused(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'boot' }),
        'INVALID_TRANSITION',
        `warrant ${warrant.id} was already cancelled at ${T0 + 10}`,
      );
      await expectRefused(town, () => town.model.warrants.cancel(warrant.id), 'INVALID_TRANSITION');
    });

    it('lets a new warrant be filed for a target once its previous one is finished', async () => {
      const { model, clock } = makeTown();
      const first = await model.warrants.file(STUCK);
      await model.warrants.execute(first.warrant.id, { by: 'boot' });
      clock.advanceSync(10);
      const second = await model.warrants.file({ ...STUCK, reason: 'stuck again' });
      expect(second.created).toBe(true);
      expect(second.warrant).toMatchObject({
        target: STUCK.target,
        reason: 'stuck again',
        status: 'pending',
        filedAt: T0 + 10,
      });
      expect(second.warrant.id).not.toBe(first.warrant.id);
      await model.warrants.cancel(second.warrant.id);
      const third = await model.warrants.file(STUCK);
      expect(third.created).toBe(true);
      expect(ids(await model.warrants.pending())).toEqual([third.warrant.id]);
      // The old ones keep their outcome.
      expect((await model.warrants.get(first.warrant.id))?.status).toBe('executed');
      expect((await model.warrants.get(second.warrant.id))?.status).toBe('cancelled');
    });

    it('fails for an unknown warrant with NOT_FOUND, and for a bad executor name', async () => {
      const town = makeTown();
      const { warrant } = await town.model.warrants.file(STUCK);
      await expectRefused(
        town,
        () => town.model.warrants.execute('wr-missing', { by: 'boot' }),
        'NOT_FOUND',
        'unknown warrant "wr-missing"',
      );
      await expectRefused(town, () => town.model.warrants.cancel('wr-missing'), 'NOT_FOUND');
      await expectInvalid(
        town,
        () => town.model.warrants.execute(warrant.id, { by: 'has space' }),
        'options.by',
      );
    });
  });

  it('lists pending warrants oldest first', async () => {
    const { model, clock } = makeTown();
    const filed: string[] = [];
    for (const target of ['web/zed', 'api/toast', 'db/mole']) {
      filed.push((await model.warrants.file({ ...STUCK, target })).warrant.id);
      clock.advanceSync(10);
    }
    expect(ids(await model.warrants.pending())).toEqual(filed);
    expect(ids(await model.warrants.pending({ limit: 2 }))).toEqual(filed.slice(0, 2));
    await model.warrants.execute(filed[1] as string, { by: 'boot' });
    expect(ids(await model.warrants.pending())).toEqual([filed[0], filed[2]]);
  });
});
