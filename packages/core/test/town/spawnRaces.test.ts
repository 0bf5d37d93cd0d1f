import { describe, expect, it } from 'vitest';
import { runningSessions, until } from './chainHelpers';
import { spawnedAgents, town } from './faultyStoreTown';

describe('spawn races (#1752, #4329, #1973)', () => {
  it('many concurrent slings: distinct agents, exactly one session each', async () => {
    const t = await town();
    const slung = await Promise.all(
      Array.from({ length: 8 }, (_, i) => t.work(`job ${i}`, i % 2 === 0 ? 'api' : 'web')),
    );
    expect(new Set(slung.map((s) => s.agent)).size).toBe(8);
    await until(t, () => spawnedAgents(t).length >= 8, { what: 'eight spawns' });
    await t.advance(10 * 60_000);

    expect(spawnedAgents(t).sort()).toEqual(slung.map((s) => s.agent).sort());
    const startsPerSession = new Map<string, number>();
    for (const s of t.driver.starts)
      startsPerSession.set(s.name, (startsPerSession.get(s.name) ?? 0) + 1);
    expect([...startsPerSession.values()]).toEqual(Array(8).fill(1));
    expect(await runningSessions(t.driver)).toHaveLength(8);
    await t.stop();
  });

  it('the same bead slung twice at once: one hook, one polecat, one session', async () => {
    const t = await town();
    const bead = await t.model.beads.create({ title: 'hot bead', rig: 'api' });
    const [a, b] = await Promise.all([t.town.sling(bead.id, 'api'), t.town.sling(bead.id, 'api')]);
    expect(a.agent).toBe(b.agent);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    // Slung to two rigs at once: one wins, the other is refused.
    const other = await t.model.beads.create({ title: 'contested bead', rig: 'api' });
    const outcomes = await Promise.allSettled([
      t.town.sling(other.id, 'api'),
      t.town.sling(other.id, 'web'),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);

    await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
    await t.advance(10 * 60_000);
    expect(await t.model.hooks.list({ rig: 'api' })).toHaveLength(2);
    expect(await t.model.hooks.list({ rig: 'web' })).toHaveLength(0);
    expect((await t.model.hooks.byBead(bead.id))?.id).toBe(a.agent);
    expect(t.driver.starts.map((s) => s.labels?.bead).sort()).toEqual([bead.id, other.id].sort());
    expect(await t.model.polecats.list('web')).toEqual([]);
    await t.stop();
  });
});
