import { ConfigError } from '@belfry/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestTown, DEFAULT_TEST_SEED, seededRandom } from '../src';

const ENV = 'BELFRY_TEST_SEED';

describe('createTestTown seeds the town', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[ENV];
    delete process.env[ENV];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[ENV];
    else process.env[ENV] = saved;
  });

  const beadIds = async (t: Awaited<ReturnType<typeof createTestTown>>, n = 3) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await t.model.beads.create({ title: `b${i}` })).id);
    return ids;
  };

  it('with the default seed unless told otherwise: every run of a test is the same', async () => {
    const a = await createTestTown({ start: false });
    const b = await createTestTown({ start: false });
    expect(a.seed).toBe(DEFAULT_TEST_SEED);
    expect(await beadIds(b)).toEqual(await beadIds(a));
  });

  it('with the seed given, the same ids for the same seed and others for another', async () => {
    const a = await createTestTown({ start: false, seed: 77 });
    const b = await createTestTown({ start: false, seed: 77 });
    const c = await createTestTown({ start: false, seed: 78 });
    expect(a.seed).toBe(77);
    const ids = await beadIds(a);
    expect(await beadIds(b)).toEqual(ids);
    expect((await beadIds(c)).filter((id) => ids.includes(id))).toEqual([]);
  });

  it('BELFRY_TEST_SEED replaces the default seed (to replay a CI run), not a seed the test gives', async () => {
    process.env[ENV] = '31337';
    const fromEnv = await createTestTown({ start: false });
    expect(fromEnv.seed).toBe(31_337);
    const replay = await createTestTown({ start: false, seed: 31_337 });
    expect(await beadIds(fromEnv)).toEqual(await beadIds(replay));
    expect((await createTestTown({ start: false, seed: 5 })).seed).toBe(5);
  });

  it('refuses a BELFRY_TEST_SEED that is not a seed, naming the variable', async () => {
    for (const bad of ['abc', '-1', '1.5', '4294967296']) {
      process.env[ENV] = bad;
      const error = await createTestTown({ start: false }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(
        /BELFRY_TEST_SEED \(the environment\): must be an integer from 0 to 4294967295/,
      );
    }
  });

  it('refuses a bad seed, and a seed together with a random', async () => {
    await expect(createTestTown({ start: false, seed: -3 })).rejects.toThrow(
      /options\.seed: must be an integer from 0 to 4294967295; got -3/,
    );
    await expect(
      createTestTown({ start: false, seed: 1, random: seededRandom(1) }),
    ).rejects.toThrow(/give either seed .* or random .*, not both/);
  });

  it('an explicit random replaces the seed: t.seed is undefined', async () => {
    const t = await createTestTown({ start: false, random: seededRandom(DEFAULT_TEST_SEED) });
    expect(t.seed).toBeUndefined();
    const seeded = await createTestTown({ start: false });
    expect(await beadIds(t)).toEqual(await beadIds(seeded));
  });

  it('a second town on the same store draws ids of its own, the same on every run', async () => {
    const run = async () => {
      const t = await createTestTown({ start: false });
      const first = await beadIds(t);
      const t2 = await createTestTown({ start: false, store: t.store });
      return [...first, ...(await beadIds(t2))];
    };
    const ids = await run();
    expect(new Set(ids).size).toBe(ids.length);
    expect(await run()).toEqual(ids);
  });

  it('next() names the seed to replay with when the event does not come', async () => {
    const t = await createTestTown({ seed: 12_345 });
    await expect(t.next('convoy.closed', { withinMs: 5_000 })).rejects.toThrow(
      'seed 12345: replay with createTestTown({ seed: 12345 })',
    );
    await t.stop();
  });
});
