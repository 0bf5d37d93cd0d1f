import { DriverError, type SessionDriver } from '@belfry/core/driver';
import type { MemoryDriver } from '@belfry/driver-memory';
import { createTestTown, type TestTown } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { eventsOf, TIMINGS, waitFor } from './helpers';

// When what runs the sessions dies (a tmux server), every session goes with it. That is one
// incident, not a crash of each agent: the beads are not charged respawns, so four server deaths
// never block them (issue 13, item 5). The memory driver's `loseHost` is that death.

const MINUTE = 60_000;
const CHATTY = { launch: () => ({ command: ['chatty', '10000'] }) };

async function working(t: TestTown, n: number) {
  const work: Array<{ agent: string; beadId: string }> = [];
  for (let i = 0; i < n; i++) {
    const w = await t.work(`job ${i}`);
    await waitFor(t, 'polecat.spawned', { where: (e) => e.beadId === w.beadId });
    work.push(w);
  }
  return work;
}

describe('a host that dies takes its sessions with it, which is nobody’s crash', () => {
  it('four host deaths under three agents: each restarts them, no respawn is counted, no bead is blocked, one incident per death', async () => {
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY });
    const work = await working(t, 3);
    const hosts: string[] = [];
    for (let death = 0; death < 4; death++) {
      hosts.push(t.driver.host);
      const from = t.events.length;
      t.driver.loseHost();
      for (const w of work)
        await waitFor(t, 'polecat.spawned', {
          where: (e) => e.agent === w.agent,
          since: from,
          withinMs: 5 * MINUTE,
        });
      const exits = eventsOf(t, 'polecat.exited').slice(-3);
      expect(exits.map((e) => e.reason)).toEqual(['lost', 'lost', 'lost']);
      await t.advance(2 * MINUTE);
    }
    for (const w of work) {
      expect(await t.model.respawns.count(w.beadId)).toBe(0);
      expect((await t.model.beads.require(w.beadId)).status).toBe('hooked');
      expect((await t.session(w.agent)).state).toBe('running');
    }
    expect(eventsOf(t, 'polecat.escalated')).toEqual([]);
    expect(eventsOf(t, 'polecat.spawned').filter((e) => e.respawn)).toEqual([]);
    const incidents = (await t.model.reports.open()).filter((r) =>
      r.incidentKey.startsWith('session-host-lost:'),
    );
    expect(incidents.map((r) => r.incidentKey).sort()).toEqual(
      hosts.map((h) => `session-host-lost:${h}`).sort(),
    );
    for (const r of incidents) expect(r.count).toBe(3);
    await t.stop();
  });
  it('a host that is unavailable while a session starts (UNAVAILABLE) is not one of the bead’s tries: five such starts, then it starts, nothing counted', async () => {
    let unavailable = 0;
    const wrap = (memory: MemoryDriver): SessionDriver =>
      Object.assign(Object.create(memory) as MemoryDriver, {
        start: async (spec: Parameters<MemoryDriver['start']>[0]) => {
          if (unavailable > 0) {
            unavailable--;
            throw new DriverError({
              code: 'UNAVAILABLE',
              message: 'the tmux server died while it started',
            });
          }
          return memory.start(spec);
        },
      });
    const t = await createTestTown({ timings: TIMINGS, agent: CHATTY, wrapDriver: wrap });
    const [w] = await working(t, 1);
    if (!w) throw new Error('no work');
    unavailable = 5;
    const from = t.events.length;
    t.driver.loseHost();
    const again = await waitFor(t, 'polecat.spawned', {
      where: (e) => e.agent === w.agent,
      since: from,
      withinMs: 30 * MINUTE,
    });
    expect(unavailable).toBe(0);
    expect(again.respawn).toBe(false);
    expect(await t.model.respawns.count(w.beadId)).toBe(0);
    expect((await t.model.beads.require(w.beadId)).status).toBe('hooked');
    await t.stop();
  });

  // A session that vanishes from a host that still runs is `missing`, and its respawn counts:
  // exits.test.ts ("a session that vanished").
});
