import { describe, expect, it } from 'vitest';
import { createTestTown } from '../src';

// The snippets of docs/testing.md, as tests: what the page promises works as written.
describe('createTestTown, as docs/testing.md shows it', () => {
  it('restarts a crashed agent with its work', async () => {
    const t = await createTestTown();
    const { agent, beadId } = await t.work('fix the login bug');
    await t.next('polecat.spawned');
    t.crash(agent);
    const again = await t.next('polecat.spawned', { withinMs: 120_000 });
    expect(again).toMatchObject({ agent, beadId, respawn: true });
    await t.stop();
  });

  it('a second town on the same store, driver and clock adopts the running session', async () => {
    const t = await createTestTown();
    const { agent } = await t.work('long job');
    const first = await t.next('polecat.spawned');
    t.town.kill();
    const t2 = await createTestTown({ store: t.store, driver: t.driver, clock: t.clock });
    const adopted = await t2.next('polecat.adopted', { since: 0 }); // it may come during start
    expect(adopted).toMatchObject({ agent, epoch: first.epoch });
    expect(await t2.session(agent)).toMatchObject({ state: 'running', epoch: first.epoch });
    await t2.stop();
  });

  it('next() fails with the events it saw when the awaited one does not come', async () => {
    const t = await createTestTown();
    await expect(t.next('convoy.closed', { withinMs: 5_000 })).rejects.toThrow(/convoy\.closed/);
    await t.stop();
  });

  it('next() with since looks at earlier events; a bad since is refused', async () => {
    const t = await createTestTown();
    await t.advance(200_000);
    const beat = await t.next('heartbeat', { since: 0, withinMs: 0 });
    expect(beat.count).toBe(1);
    await expect(t.next('heartbeat', { since: -1 })).rejects.toThrow(/since must be an index/);
    await expect(t.next('heartbeat', { since: t.events.length + 1 })).rejects.toThrow(
      /since must be an index/,
    );
    await t.stop();
  });

  it('wrapDriver puts a driver between the town and the memory driver; helpers act behind it', async () => {
    const calls: string[] = [];
    const t = await createTestTown({
      wrapDriver: (memory) =>
        new Proxy(memory, {
          get(target, key, receiver) {
            const value = Reflect.get(target, key, receiver);
            if (typeof value !== 'function' || typeof key !== 'string') return value;
            return (...args: unknown[]) => {
              calls.push(key);
              return value.apply(target, args);
            };
          },
        }),
    });
    const { agent } = await t.work('recorded');
    await t.next('polecat.spawned');
    expect(calls).toContain('start');
    expect(calls).toContain('nudge');
    t.crash(agent); // on the memory driver directly
    expect((await t.session(agent)).state).toBe('exited');
    await t.stop();
  });
});
