import { DriverError } from '@belfry/core/driver';
import { createMemoryDriver } from '@belfry/driver-memory';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';

function setup() {
  const clock = new SimulatedClock(1_000);
  return { clock, driver: createMemoryDriver({ clock }) };
}

describe('MemoryDriver controls', () => {
  it('crashes a session with a signal and lets a program exit with a code', async () => {
    const { driver, clock } = setup();
    await driver.start({ name: 'a', epoch: 1, command: ['agent'] });
    await driver.start({ name: 'b', epoch: 1, command: ['agent'] });
    clock.advanceSync(5);
    driver.crash('a');
    driver.exit('b', 2);
    expect(await driver.status('a')).toMatchObject({
      state: 'exited',
      exitCode: null,
      signal: 'SIGKILL',
      exitedAt: 1_005,
    });
    expect(await driver.status('b')).toMatchObject({ state: 'exited', exitCode: 2, signal: null });
    expect(() => driver.crash('a')).toThrow(DriverError);
  });

  it('hangs a session: still running, no activity, nudges delivered but ignored', async () => {
    const { driver, clock } = setup();
    await driver.start({ name: 'h', epoch: 1, command: ['agent'] });
    await driver.nudge('h', 'hello');
    const before = (await driver.status('h')).lastActivityAt;
    clock.advanceSync(60_000);
    driver.hang('h');
    await driver.nudge('h', 'are you there?');
    expect(await driver.status('h')).toMatchObject({ state: 'running', lastActivityAt: before });
    expect(driver.nudgesOf('h')).toEqual(['hello', 'are you there?']);
    expect(await driver.capture('h')).toEqual(['> hello']);
    driver.unhang('h');
    await driver.nudge('h', 'back');
    expect((await driver.status('h')).lastActivityAt).toBe(clock.now());
  });

  it('takes a program’s start delay on the clock (a slow start)', async () => {
    const { driver, clock } = setup();
    driver.program('slow', (s) => s.write('ready'), { startDelayMs: 3_000 });
    let started = false;
    const start = driver.start({ name: 's', epoch: 1, command: ['slow'] }).then(() => {
      started = true;
    });
    await clock.advance(2_999);
    expect(started).toBe(false);
    expect((await driver.status('s')).state).toBe('running');
    await clock.advance(1);
    await start;
    expect(started).toBe(true);
  });

  it('reports a program that dies while starting as a failed start', async () => {
    const { driver } = setup();
    driver.program('broken', () => {
      throw new Error('missing API key');
    });
    driver.program('refuses', () => {}, { failStart: 'no license' });
    await expect(driver.start({ name: 'x', epoch: 1, command: ['broken'] })).rejects.toMatchObject({
      code: 'START_FAILED',
      message: expect.stringContaining('missing API key'),
    });
    await expect(driver.start({ name: 'y', epoch: 1, command: ['refuses'] })).rejects.toMatchObject(
      { code: 'START_FAILED' },
    );
    expect((await driver.status('x')).state).toBe('exited');
  });

  it('runs the default program for unknown commands, and scripted programs on the clock', async () => {
    const clock = new SimulatedClock();
    const driver = createMemoryDriver({
      clock,
      programs: { flaky: (s) => s.after(500, () => s.crash('SIGSEGV')) },
      maxOutputLines: 3,
    });
    await driver.start({ name: 'claude', epoch: 1, command: ['claude', '--model', 'x'] });
    await driver.nudge('claude', 'hi');
    expect(await driver.capture('claude')).toEqual(['> hi']);
    await driver.start({ name: 'f', epoch: 1, command: ['flaky'] });
    await clock.advance(499);
    expect((await driver.status('f')).state).toBe('running');
    await clock.advance(1);
    expect(await driver.status('f')).toMatchObject({ state: 'exited', signal: 'SIGSEGV' });
    await driver.start({ name: 'c', epoch: 1, command: ['chatty', '100'] });
    await clock.advance(1_000);
    expect(await driver.capture('c')).toEqual(['working 8', 'working 9', 'working 10']);
    expect(await driver.capture('c', { lines: 1 })).toEqual(['working 10']);
  });

  it('refuses an unknown default program and works no more after close', async () => {
    expect(() => createMemoryDriver({ defaultProgram: 'nope' })).toThrow(/not a program/);
    const { driver } = setup();
    await driver.close();
    await expect(driver.start({ name: 'a', epoch: 1, command: ['agent'] })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});
