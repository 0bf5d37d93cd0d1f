import { DriverError, StoreError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { failure } from '../modelHelpers';
import { settleOn } from './chainHelpers';
import { sessionOf, spawnOf, town } from './recordingTown';

describe('town.nudge', () => {
  it("delivers to the agent's session, refuses an unknown agent, and fails for a session that is not running", async () => {
    const t = await town({ agent: { launch: () => ({ command: ['agent'] }) } });
    const { agent, beadId } = await t.work('listen to me');
    await spawnOf(t, beadId);
    const session = sessionOf(agent);
    expect(t.driver.nudgesOf(session)).toEqual([expect.stringContaining(beadId)]);

    await t.town.nudge(agent, 'please rebase on main');
    expect(t.driver.nudgesOf(session)).toEqual([
      expect.stringContaining(beadId),
      'please rebase on main',
    ]);
    // The memory driver's agent echoes what it got: it reached the session.
    expect(await t.driver.capture(session)).toContain('> please rebase on main');

    for (const unknown of ['api/ghost', 'web/toast']) {
      const error = await failure(() => t.town.nudge(unknown, 'hello?'));
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'NOT_FOUND' });
    }

    // Its session gone (done): the polecat exists, its session does not run.
    await t.town.done(agent, beadId);
    const error = await failure(() => t.town.nudge(agent, 'still there?'));
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: 'NOT_RUNNING' });
    expect(t.driver.nudgesOf(session)).toHaveLength(2);
    await t.stop();
  });

  it('fails with NOT_RUNNING for a hooked polecat whose session crashed in a parked rig', async () => {
    const t = await town();
    const { agent, beadId } = await t.work('crashes while parked');
    await spawnOf(t, beadId);
    await settleOn(t, t.town.rigs.park('api'));
    t.crash(agent);
    await t.advance(60_000);
    expect(await t.model.hooks.get(agent)).toMatchObject({ beadId });
    const error = await failure(() => t.town.nudge(agent, 'wake up'));
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: 'NOT_RUNNING' });
    await t.stop();
  });
});
