import type { Rig, RigState, TownModel } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectNoWrite,
  expectRefused,
  ids,
  makeTown,
  T0,
  type TestTown,
} from './modelHelpers';

type Command = 'park' | 'unpark' | 'dock' | 'undock';

/** A town with rig `api` brought into `state` at T0, the clock then moved on by 100 ms. */
async function rigIn(state: RigState): Promise<TestTown> {
  const town = makeTown();
  await town.model.rigs.create({ name: 'api' });
  if (state === 'parked') await town.model.rigs.park('api');
  if (state === 'docked') await town.model.rigs.dock('api');
  town.clock.advanceSync(100);
  return town;
}

function run(model: TownModel, command: Command, name: string): Promise<Rig> {
  return model.rigs[command](name);
}

describe('Rigs', () => {
  describe('create', () => {
    it('adds an operational rig named by its id, stamped with the clock', async () => {
      const { model } = makeTown();
      const rig = await model.rigs.create({ name: 'api' });
      expect(rig).toEqual({
        id: 'api',
        state: 'operational',
        createdAt: T0,
        stateChangedAt: T0,
      });
      expect(await model.rigs.get('api')).toEqual(rig);
      expect(await model.rigs.require('api')).toEqual(rig);
    });

    it('accepts every character a name may have, up to 100 characters', async () => {
      const { model } = makeTown();
      for (const name of ['a', '9', 'api/v2:blue_green-x.y', `a${'b'.repeat(99)}`]) {
        expect((await model.rigs.create({ name })).id).toBe(name);
      }
    });

    it('refuses a taken name with DUPLICATE_ID and keeps the existing rig', async () => {
      const town = makeTown();
      const first = await town.model.rigs.create({ name: 'api' });
      await town.model.rigs.park('api');
      town.clock.advanceSync(50);
      await expectRefused(town, () => town.model.rigs.create({ name: 'api' }), 'DUPLICATE_ID');
      expect(await town.model.rigs.require('api')).toEqual({
        ...first,
        state: 'parked',
      });
    });

    it('refuses a bad name with a ConfigError at rig.name that says what a name may be', async () => {
      const town = makeTown();
      for (const name of [
        '',
        ' api',
        'has space',
        '-lead',
        '.hidden',
        'é',
        `a${'b'.repeat(100)}`,
        42,
        null,
        undefined,
      ]) {
        await expectInvalid(town, () => town.model.rigs.create({ name } as never), 'rig.name', {
          message: /rig\.name: must be 1 to 100 characters: letters, digits/,
        });
      }
      await expectInvalid(town, () => town.model.rigs.create(undefined as never), 'rig.name');
      expect(await town.model.rigs.list()).toEqual([]);
    });
  });

  describe('state machine', () => {
    const allowed: Array<[RigState, Command, RigState]> = [
      ['operational', 'park', 'parked'],
      ['operational', 'dock', 'docked'],
      ['parked', 'unpark', 'operational'],
      ['parked', 'dock', 'docked'],
      ['docked', 'undock', 'operational'],
    ];
    for (const [from, command, to] of allowed) {
      it(`${command} moves a ${from} rig to ${to} and stamps stateChangedAt`, async () => {
        const { model } = await rigIn(from);
        const before = await model.rigs.require('api');
        const after = await run(model, command, 'api');
        expect(after).toEqual({
          id: 'api',
          state: to,
          createdAt: T0,
          stateChangedAt: T0 + 100,
        });
        expect(before.state).toBe(from);
        expect(await model.rigs.require('api')).toEqual(after);
      });
    }

    const noOps: Array<[RigState, Command]> = [
      ['operational', 'unpark'],
      ['operational', 'undock'],
      ['parked', 'park'],
      ['docked', 'dock'],
    ];
    for (const [state, command] of noOps) {
      it(`${command} on a ${state} rig changes nothing (stateChangedAt kept)`, async () => {
        const town = await rigIn(state);
        const before = await town.model.rigs.require('api');
        const after = await expectNoWrite(town, () => run(town.model, command, 'api'));
        expect(after).toEqual(before);
        expect(after.stateChangedAt).toBe(T0);
      });
    }

    const refused: Array<[RigState, Command, RegExp]> = [
      ['docked', 'park', /rig api is docked; undock it before parking it/],
      ['docked', 'unpark', /rig api is docked, not parked; use undock/],
      ['parked', 'undock', /rig api is parked, not docked; use unpark/],
    ];
    for (const [state, command, message] of refused) {
      it(`refuses ${command} on a ${state} rig with INVALID_TRANSITION naming the right command`, async () => {
        const town = await rigIn(state);
        await expectRefused(
          town,
          () => run(town.model, command, 'api'),
          'INVALID_TRANSITION',
          message,
        );
        expect((await town.model.rigs.require('api')).state).toBe(state);
      });
    }

    it('walks a full cycle and stamps each real change only', async () => {
      const { model, clock } = makeTown();
      await model.rigs.create({ name: 'api' });
      const seen: Array<[RigState, number]> = [];
      for (const command of ['park', 'park', 'dock', 'undock', 'unpark', 'dock'] as const) {
        clock.advanceSync(10);
        const rig = await run(model, command, 'api');
        seen.push([rig.state, rig.stateChangedAt]);
      }
      expect(seen).toEqual([
        ['parked', T0 + 10],
        ['parked', T0 + 10],
        ['docked', T0 + 30],
        ['operational', T0 + 40],
        ['operational', T0 + 40],
        ['docked', T0 + 60],
      ]);
    });
  });

  describe('list', () => {
    it('lists every rig by name, or the rigs in one state', async () => {
      const { model } = makeTown();
      for (const name of ['web', 'api', 'db', 'cache']) await model.rigs.create({ name });
      await model.rigs.park('web');
      await model.rigs.park('api');
      await model.rigs.dock('db');
      expect(ids(await model.rigs.list())).toEqual(['api', 'cache', 'db', 'web']);
      expect(ids(await model.rigs.list({ state: 'parked' }))).toEqual(['api', 'web']);
      expect(ids(await model.rigs.list({ state: 'docked' }))).toEqual(['db']);
      expect(ids(await model.rigs.list({ state: 'operational' }))).toEqual(['cache']);
      await model.rigs.unpark('web');
      expect(ids(await model.rigs.list({ state: 'parked' }))).toEqual(['api']);
      expect(ids(await model.rigs.list({ state: 'operational' }))).toEqual(['cache', 'web']);
    });
  });

  describe('unknown rigs', () => {
    it('has no rig to get', async () => {
      const { model } = makeTown();
      expect(await model.rigs.get('ghost')).toBeUndefined();
    });

    it('fails require and every command with NOT_FOUND naming the known rigs', async () => {
      const town = makeTown();
      await town.model.rigs.create({ name: 'web' });
      await town.model.rigs.create({ name: 'api' });
      const message = 'unknown rig "ghost"; known: api, web';
      await expectRefused(town, () => town.model.rigs.require('ghost'), 'NOT_FOUND', message);
      for (const command of ['park', 'unpark', 'dock', 'undock'] as const) {
        await expectRefused(town, () => run(town.model, command, 'ghost'), 'NOT_FOUND', message);
      }
    });

    it('says there are none when the town has no rig, and shortens a long list', async () => {
      const town = makeTown();
      await expectRefused(
        town,
        () => town.model.rigs.park('ghost'),
        'NOT_FOUND',
        'unknown rig "ghost"; there are none',
      );
      for (let i = 0; i < 12; i++) await town.model.rigs.create({ name: `r${i + 10}` });
      const error = await expectRefused(town, () => town.model.rigs.park('ghost'), 'NOT_FOUND');
      expect(error.message).toBe(
        'unknown rig "ghost"; known: r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, …',
      );
    });
  });
});
