import type { MayorMessage } from '@belfry/core';
import { expect, it } from 'vitest';
import { reportsTo, TIMINGS, until } from './chainHelpers';
import { restartDeacon, town } from './faultyStoreTown';

it('the crash-loop state expires (#4462): after a quiet period a new crash loop is a new incident', async () => {
  const mayor: MayorMessage[] = [];
  const t = await town({
    mayor: (m) => {
      mayor.push(m);
    },
  });
  const loops = async () => {
    await restartDeacon(t, t.store, t.seen);
    t.store.failMolecules = true;
    await until(t, async () => (await t.town.status()).deacon.crashLoop, {
      what: 'a crash loop',
    });
    await t.advance(2 * TIMINGS.heartbeatMs);
    t.store.failMolecules = false;
    await until(t, async () => (await t.town.status()).deacon.state === 'running', {
      what: 'the Deacon to come back',
    });
  };
  await loops();
  expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(1);

  // The Deacon stays up: 31 min later (past the crash-loop window, and past the 30 min after
  // which its restart backoff starts over) the state is gone and the incident resolved.
  await t.advance(31 * 60_000);
  expect((await t.town.status()).deacon).toMatchObject({ state: 'running', crashLoop: false });
  expect(await t.model.reports.byIncident('deacon-crash-loop')).toBeUndefined();

  await loops();
  expect(reportsTo(mayor, 'deacon-crash-loop')).toHaveLength(2);
  await t.stop();
});
