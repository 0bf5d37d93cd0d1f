import { describe, expect, it } from 'vitest';
import { expectInvalid, expectNoWrite, expectRefused, makeTown } from './modelHelpers';

describe('Respawns', () => {
  it('counts respawns per bead from 0, and resets them', async () => {
    const town = makeTown();
    const { model } = town;
    const a = await model.beads.create({ title: 'a' });
    const b = await model.beads.create({ title: 'b' });
    expect(await model.respawns.count(a.id)).toBe(0);
    expect(await model.respawns.increment(a.id)).toBe(1);
    expect(await model.respawns.increment(a.id)).toBe(2);
    expect(await model.respawns.increment(b.id)).toBe(1);
    expect(await model.respawns.count(a.id)).toBe(2);
    expect(await model.respawns.count(b.id)).toBe(1);
    await model.respawns.reset(a.id);
    expect(await model.respawns.count(a.id)).toBe(0);
    expect(await model.respawns.count(b.id)).toBe(1);
    expect(await model.respawns.increment(a.id)).toBe(1);
    // Resetting a bead with no count changes nothing.
    await expectNoWrite(town, () => model.respawns.reset('bd-never'));
  });

  it('counts concurrent increments without losing one', async () => {
    const { model } = makeTown();
    const bead = await model.beads.create({ title: 'a' });
    const counts = await Promise.all(
      Array.from({ length: 10 }, () => model.respawns.increment(bead.id)),
    );
    expect([...counts].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await model.respawns.count(bead.id)).toBe(10);
  });

  it('refuses an unknown bead with NOT_FOUND, and a bad id with a ConfigError', async () => {
    const town = makeTown();
    await expectRefused(
      town,
      () => town.model.respawns.increment('bd-missing'),
      'NOT_FOUND',
      'unknown bead "bd-missing"',
    );
    expect(await town.model.respawns.count('bd-missing')).toBe(0);
    await expectInvalid(town, () => town.model.respawns.increment('not an id'), 'beadId');
  });
});
