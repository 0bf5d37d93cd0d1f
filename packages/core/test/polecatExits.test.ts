import { type PolecatExit, StoreError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { makeTown } from './modelHelpers';

async function withPolecat() {
  const town = makeTown();
  await town.model.rigs.create({ name: 'api' });
  const bead = await town.model.beads.create({ title: 'one' });
  const { polecat } = await town.model.polecats.sling(bead.id, 'api', { names: ['toast'] });
  return { model: town.model, agent: polecat.id, beadId: bead.id };
}

function exitOf(beadId: string, epoch: number, more: Partial<PolecatExit> = {}): PolecatExit {
  return {
    epoch,
    beadId,
    reason: 'exited',
    exitCode: 1,
    signal: null,
    at: 1_000,
    lastOutput: ['boom'],
    ...more,
  };
}

describe('Polecats.recordExit', () => {
  it('records an epoch’s exit once: the same or an older epoch changes nothing, a newer one does', async () => {
    const { model, agent, beadId } = await withPolecat();
    const first = await model.polecats.recordExit(agent, exitOf(beadId, 5));
    expect(first.recorded).toBe(true);
    expect(first.polecat.lastExit).toEqual(exitOf(beadId, 5));
    const again = await model.polecats.recordExit(agent, exitOf(beadId, 5, { exitCode: 2 }));
    expect(again.recorded).toBe(false);
    expect(await model.polecats.recordExit(agent, exitOf(beadId, 4))).toMatchObject({
      recorded: false,
    });
    expect((await model.polecats.get(agent))?.lastExit?.exitCode).toBe(1);
    const next = await model.polecats.recordExit(
      agent,
      exitOf(beadId, 6, { reason: 'missing', exitCode: null, lastOutput: [] }),
    );
    expect(next.recorded).toBe(true);
    expect((await model.polecats.get(agent))?.lastExit).toMatchObject({
      epoch: 6,
      reason: 'missing',
    });
  });

  it('keeps the output bounded: the newest 20 lines, 200 characters each, 2,000 in all', async () => {
    const { model, agent, beadId } = await withPolecat();
    // Every fourth line long: 5 cut to 200 and 15 short ones fit in 2,000.
    const lines = Array.from({ length: 25 }, (_, i) => `${i} ${'y'.repeat(i % 4 ? 10 : 300)}`);
    const { polecat } = await model.polecats.recordExit(
      agent,
      exitOf(beadId, 1, { lastOutput: lines }),
    );
    const kept = polecat.lastExit?.lastOutput ?? [];
    expect(kept).toHaveLength(20);
    expect(kept[0]).toBe(lines[5]);
    expect(kept[3]).toBe(`${(lines[8] as string).slice(0, 199)}…`);
    expect(kept[3]).toHaveLength(200);
    // Long lines only: the oldest go first until 2,000 characters remain.
    const long = Array.from({ length: 20 }, (_, i) => `${i} `.padEnd(250, 'z'));
    long.push('short');
    const bounded =
      (await model.polecats.recordExit(agent, exitOf(beadId, 2, { lastOutput: long }))).polecat
        .lastExit?.lastOutput ?? [];
    expect(bounded.at(-1)).toBe('short');
    expect(bounded).toHaveLength(10);
    expect(bounded[0]?.startsWith('11 ')).toBe(true);
    expect(bounded.join('').length).toBe(9 * 200 + 5);
  });

  it.each([
    ['a negative epoch', { epoch: -1 }, 'epoch must be an integer >= 0'],
    [
      'an unknown reason',
      { reason: 'gone' },
      'reason must be one of exited, missing, lost, stopped',
    ],
    ['a fractional exit code', { exitCode: 1.5 }, 'exitCode must be an integer or null'],
    ['an empty signal', { signal: '' }, 'signal must be a non-empty string or null'],
    [
      'a missing session with a code',
      { reason: 'missing', exitCode: 1 },
      "of a 'missing' session has neither exitCode nor signal",
    ],
    ['output that is not text', { lastOutput: [1] }, 'lastOutput must be an array of strings'],
    ['no time', { at: Number.NaN }, 'at must be a finite time (clock ms)'],
  ])('refuses %s, saying what is allowed', async (_what, bad, message) => {
    const { model, agent, beadId } = await withPolecat();
    const error = await model.polecats
      .recordExit(agent, { ...exitOf(beadId, 1), ...bad } as PolecatExit)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'INVALID_RECORD' });
    expect((error as Error).message).toContain(`polecat ${agent}: exit ${message}`);
    expect((await model.polecats.get(agent))?.lastExit).toBeUndefined();
  });

  it('refuses an unknown polecat', async () => {
    const { model, beadId } = await withPolecat();
    await expect(model.polecats.recordExit('api/nobody', exitOf(beadId, 1))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
