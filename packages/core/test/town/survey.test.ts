import type { SessionStatus } from '@belfry/core/driver';
import { MemoryDriver } from '@belfry/driver-memory';
import { createTestTown, SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { SessionSurvey } from '../../src/town/SessionSurvey';

/** A memory driver counting its list and status calls; `hold()` makes the next status wait. */
class CallCounter extends MemoryDriver {
  lists = 0;
  statuses = 0;
  private held: Array<() => void> | undefined;

  override async list(): Promise<SessionStatus[]> {
    this.lists++;
    return super.list();
  }

  override async status(name: string): Promise<SessionStatus> {
    this.statuses++;
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    return super.status(name);
  }

  hold(): void {
    this.held = [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const go of waiting) go();
  }
}

function setup(maxAgeMs = 5_000) {
  const clock = new SimulatedClock(0);
  const driver = new CallCounter({ clock });
  return { clock, driver, survey: new SessionSurvey(driver, clock, maxAgeMs) };
}

describe('SessionSurvey', () => {
  it('answers every session from one driver.list() per interval', async () => {
    const { clock, driver, survey } = setup();
    for (const name of ['a-one', 'a-two', 'b-one'])
      await driver.start({ name, epoch: 1, command: ['silent'] });
    const names = ['a-one', 'a-two', 'b-one', 'c-none'];
    const first = await Promise.all(names.map((n) => survey.status(n)));
    expect(first.map((s) => s.state)).toEqual(['running', 'running', 'running', 'missing']);
    expect(driver.lists).toBe(1);
    await clock.advance(4_999);
    await survey.status('a-one');
    expect(driver.lists).toBe(1);
    await clock.advance(1);
    await survey.status('a-one');
    expect(driver.lists).toBe(2);
    expect(driver.statuses).toBe(0);
  });

  it('a forgotten session is asked of the driver once, then served from the reading again', async () => {
    const { driver, survey } = setup();
    await driver.start({ name: 'a-one', epoch: 1, command: ['silent'] });
    expect((await survey.status('a-two')).state).toBe('missing');
    await driver.start({ name: 'a-two', epoch: 1, command: ['silent'] });
    // Not forgotten: the reading still says missing (at most maxAgeMs old).
    expect((await survey.status('a-two')).state).toBe('missing');
    survey.forget('a-two');
    expect(await survey.status('a-two')).toMatchObject({ state: 'running', epoch: 1 });
    expect(await survey.status('a-two')).toMatchObject({ state: 'running', epoch: 1 });
    expect({ lists: driver.lists, statuses: driver.statuses }).toEqual({ lists: 1, statuses: 1 });
  });

  it('a change during the driver call is not overwritten by the older answer', async () => {
    const { driver, survey } = setup();
    await driver.start({ name: 'a-one', epoch: 1, command: ['silent'] });
    await survey.status('a-one');
    survey.forget('a-one');
    driver.hold();
    const asked = survey.status('a-one');
    await Promise.resolve();
    await Promise.resolve();
    // The session changes (and is forgotten again) while that status call is in flight.
    driver.release();
    survey.forget('a-one');
    await asked;
    await driver.stop('a-one', { graceMs: 0 });
    expect((await survey.status('a-one')).state).toBe('exited');
  });

  it('a failed reading is not kept: the next call reads again', async () => {
    const { driver, survey } = setup();
    const list = driver.list.bind(driver);
    let fail = true;
    driver.list = async () => {
      if (fail) throw new Error('driver down');
      return list();
    };
    await expect(survey.status('a-one')).rejects.toThrow('driver down');
    fail = false;
    expect((await survey.status('a-one')).state).toBe('missing');
  });

  it('a town lists its sessions once per interval however many rigs it has', async () => {
    const clock = new SimulatedClock(1_700_000_000_000);
    const driver = new CallCounter({ clock });
    const rigs = Array.from({ length: 8 }, (_, i) => `rig${i}`);
    const t = await createTestTown({ clock, driver, rigs, timings: { surveyMs: 10_000 } });
    for (const rig of rigs) await t.work(`job in ${rig}`, rig);
    await t.advance(60_000);
    const before = driver.lists;
    await t.advance(100_000);
    // One reading per half survey interval at most: 20 in 100 s, not 20 per rig.
    expect(driver.lists - before).toBeLessThanOrEqual(21);
    await t.stop();
  });
});
