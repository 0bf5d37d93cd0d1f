import { ConfigError, createTown } from '@belfry/core';
import { createMemoryDriver } from '@belfry/driver-memory';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { failure } from '../modelHelpers';
import { reportsTo } from './chainHelpers';
import { START, spawnOf, town } from './recordingTown';

describe('session names never collide', () => {
  it("polecat names with '-' are refused by the model's sling, and nothing is written", async () => {
    const t = await town();
    const bead = await t.model.beads.create({ title: 'would be api-b-c', rig: 'api' });
    for (const names of [['b-c'], ['ok', 'b-c'], ['Upper'], ['x'.repeat(32)]]) {
      const error = await failure(() => t.model.polecats.sling(bead.id, 'api', { names }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION' });
    }
    expect(await t.model.polecats.list('api')).toEqual([]);
    expect(await t.model.hooks.byBead(bead.id)).toBeUndefined();
    expect((await t.model.beads.require(bead.id)).status).toBe('open');
    await t.stop();
  });

  it.each([
    [['b-c'], 'options.polecatNames[0]'],
    [['ok', 'a-b'], 'options.polecatNames[1]'],
    [['x'.repeat(32)], 'options.polecatNames[0]'],
  ])('createTown refuses polecatNames %j (%s)', (names, path) => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(START) });
    let error: unknown;
    try {
      createTown({ driver, polecatNames: names });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path });
  });

  it('rig names longer than 32 characters are refused by createTown and town.rigs.create', async () => {
    const driver = createMemoryDriver({ clock: new SimulatedClock(START) });
    let error: unknown;
    try {
      createTown({ driver, rigs: ['api', 'r'.repeat(33)] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', path: 'options.rigs[1]' });
    expect(() => createTown({ driver, rigs: ['r'.repeat(32)] })).not.toThrow();

    const t = await town();
    const refused = await failure(() => t.town.rigs.create('r'.repeat(33)));
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused).toMatchObject({ code: 'INVALID_OPTION', path: 'name' });
    expect((await t.town.rigs.list()).map((r) => r.id)).toEqual(['api']);
    await t.stop();
  });

  it('the longest names allowed (a 32-character rig, a 31-character polecat) make a 64-character session that runs', async () => {
    const rig = `r${'a'.repeat(31)}`;
    const name = `p${'b'.repeat(30)}`;
    const t = await town({ rigs: [rig], polecatNames: [name] });
    const { agent, beadId } = await t.work('long names', rig);
    expect(agent).toBe(`${rig}/${name}`);
    const spawned = await spawnOf(t, beadId);
    const session = `${rig}-${name}`;
    expect(session).toHaveLength(64);
    expect(await t.driver.status(session)).toMatchObject({
      state: 'running',
      epoch: spawned.epoch,
      labels: { rig, agent, bead: beadId },
    });
    await t.stop();
  });
});

describe('edge cases: work for other agents, rigs the town cannot name, long triage reasons', () => {
  it.each([
    ['too long for a session name', 'r'.repeat(60)],
    ["with a '.' (not allowed in session names)", 'web.v2'],
  ])(
    'work for a rig the model created with a name %s is refused or escalated, never retried silently',
    async (_what, rig) => {
      const t = await town();
      // The model takes wider names than the town (`town.rigs.create` would refuse these).
      await t.model.rigs.create({ name: rig });
      const bead = await t.model.beads.create({ title: 'unreachable work', rig });
      const outcome = await t.town.sling(bead.id, rig).then(
        () => 'accepted' as const,
        (error: unknown) => error,
      );
      const polecatEvents = () =>
        t.seen.filter((e) => 'childId' in e && e.childId === 'polecat-toast');
      if (outcome === 'accepted') {
        await t.advance(30 * 60_000);
        expect(
          {
            reports: reportsTo(t.mayor).map((r) => r.incidentKey),
            bead: (await t.model.beads.require(bead.id)).status,
          },
          `the bead stays hooked and its polecat fails over and over (${polecatEvents().length} supervisor events), with nobody told`,
        ).toEqual({ reports: [`respawn-limit:${bead.id}`], bead: 'blocked' });
      } else {
        expect(outcome).toBeInstanceOf(ConfigError);
        expect(await t.model.hooks.byBead(bead.id)).toBeUndefined();
      }
      await t.stop();
    },
  );
});
