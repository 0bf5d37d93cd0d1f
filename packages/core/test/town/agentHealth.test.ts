import { expect, it } from 'vitest';
import { eventsOf, TWO_RIGS as OPTIONS, restartDaemon, TIMINGS, until } from './chainHelpers';
import { spawnedAgents, town } from './faultyStoreTown';

it('a freshly restarted agent is not killed for a heartbeat older than its start (#590, #2036)', async () => {
  // Grace longer than the staleness limit: only the grace keeps a new, quiet session alive.
  const timings = { ...TIMINGS, spawnGraceMs: 300_000, staleAfterMs: 60_000 };
  let program = 'chatty';
  const launch = () => ({ command: [program, '10000'] });
  const t = await town({ timings, agent: { launch } });
  const { agent } = await t.work('hangs while the daemon is down', 'api');
  await until(t, () => spawnedAgents(t).includes(agent), { what: 'the spawn' });
  t.town.kill();
  t.hang(agent);
  await t.advance(30 * 60_000);

  // The restarted daemon finds a session silent for 30 min: it replaces it by a new one that is
  // quiet while it warms up. The old session's silence must not count against the new one.
  program = 'silent';
  const t2 = await restartDaemon(t, { ...OPTIONS, timings, agent: { launch } });
  await until(t2, () => spawnedAgents(t2).includes(agent), { what: 'the replacement' });
  const replaced = eventsOf(t2, 'polecat.spawned')[0];
  const fresh = await t2.session(agent);
  expect(fresh).toMatchObject({ state: 'running', epoch: replaced?.epoch });
  const since = t2.events.indexOf(replaced as never) + 1;

  await t2.advance(timings.spawnGraceMs - 2 * TIMINGS.surveyMs);
  expect(eventsOf(t2, 'polecat.stopped', since)).toEqual([]);
  expect(await t2.session(agent)).toMatchObject({ state: 'running', epoch: replaced?.epoch });
  // Past its own grace, its own silence counts: it is replaced in turn.
  const stopped = await t2.next('polecat.stopped', { withinMs: 120_000 });
  expect(stopped.at).toBeGreaterThanOrEqual((fresh.startedAt as number) + timings.spawnGraceMs);
  await t2.stop();
});
