import type { MayorMessage } from '@belfry/core';
import { expect, it } from 'vitest';
import { eventsOf, reportsTo, TIMINGS, until } from './chainHelpers';
import { spawnedAgents, town } from './faultyStoreTown';

it('a convoy reopens when one of its beads reopens, and closes again when it is done (gascity #6045)', async () => {
  const mayor: MayorMessage[] = [];
  const t = await town({
    mayor: (m) => {
      mayor.push(m);
    },
  });
  const a = await t.work('part a', 'api');
  const b = await t.work('part b', 'web');
  const convoy = await t.town.convoys.create({ title: 'feature', beadIds: [a.beadId, b.beadId] });
  await until(t, () => spawnedAgents(t).length >= 2, { what: 'the spawns' });
  await t.town.done(a.agent, a.beadId);
  await t.town.done(b.agent, b.beadId);
  await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
  expect((await t.town.convoys.status(convoy.id)).status).toBe('closed');

  await t.model.beads.setStatus(a.beadId, 'open');
  expect(await t.town.convoys.status(convoy.id)).toMatchObject({ status: 'open', openCount: 1 });
  expect((await t.town.status()).convoys.open).toBe(1);
  await t.advance(5 * TIMINGS.heartbeatMs);
  expect(eventsOf(t, 'convoy.closed')).toHaveLength(1);

  const again = await t.town.sling(a.beadId, 'api');
  await until(t, () => spawnedAgents(t).filter((x) => x === again.agent).length >= 2, {
    what: 'the reopened bead to be picked up',
  });
  await t.town.done(again.agent, again.beadId);
  await t.next('convoy.closed', { where: (e) => e.convoyId === convoy.id });
  expect((await t.town.convoys.status(convoy.id)).status).toBe('closed');
  // Each landing is news for the Mayor.
  expect(reportsTo(mayor, `convoy-landed:${convoy.id}`)).toHaveLength(2);
  await t.stop();
});
