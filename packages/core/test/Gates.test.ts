import { ConfigError, type GateType } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import {
  expectConfigError,
  expectInvalid,
  expectNoWrite,
  expectRefused,
  generatedId,
  ids,
  makeTown,
  T0,
} from './modelHelpers';

/** A custom gate type: polls a URL every `everyMs` (default one minute). */
const pollGate: GateType = {
  type: 'poll',
  validate(spec) {
    const s = spec as { url?: unknown; everyMs?: unknown } | undefined;
    if (typeof s?.url !== 'string' || !s.url.startsWith('https://')) {
      throw new ConfigError({
        code: 'INVALID_OPTION',
        path: 'spec.url',
        message: 'spec.url: must be an https URL',
      });
    }
    return { url: s.url, everyMs: typeof s.everyMs === 'number' ? s.everyMs : 60_000 };
  },
  firstDueAt: (spec, createdAt) => createdAt + (spec.everyMs as number),
};

/** A custom gate type whose validator fails like ordinary code does. */
const sloppyGate: GateType = {
  type: 'sloppy',
  validate(spec) {
    return { n: (spec as { a: { b: number } }).a.b };
  },
};

describe('Gates', () => {
  describe('built-in types', () => {
    it('timer: open, due at createdAt + durationMs', async () => {
      const { model, clock } = makeTown();
      clock.advanceSync(5);
      const gate = await model.gates.create({ type: 'timer', spec: { durationMs: 1_000 } });
      expect(gate.id).toMatch(generatedId('gt'));
      expect(gate).toStrictEqual({
        id: gate.id,
        type: 'timer',
        spec: { durationMs: 1_000 },
        status: 'open',
        createdAt: T0 + 5,
        dueAt: T0 + 1_005,
        waiters: [],
        escalations: [],
      });
      expect(await model.gates.require(gate.id)).toEqual(gate);
      expect(await model.gates.due({ now: T0 + 1_004 })).toEqual([]);
      expect(ids(await model.gates.due({ now: T0 + 1_005 }))).toEqual([gate.id]);
    });

    it('human: never due by itself, with or without a spec', async () => {
      const { model } = makeTown();
      const plain = await model.gates.create({ type: 'human', spec: undefined });
      const full = await model.gates.create({
        type: 'human',
        spec: { prompt: 'ship it?', approvers: ['ann', 'bob'] },
      });
      expect(plain).not.toHaveProperty('dueAt');
      expect(plain.spec).toEqual({});
      expect(full.spec).toEqual({ prompt: 'ship it?', approvers: ['ann', 'bob'] });
      expect(await model.gates.due({ now: Number.MAX_SAFE_INTEGER - 1 })).toEqual([]);
      expect(ids(await model.gates.open({ type: 'human' })).sort()).toEqual(
        [plain.id, full.id].sort(),
      );
    });

    it('gh:run: due at once, by runId or by workflow', async () => {
      const { model } = makeTown();
      const byRun = await model.gates.create({
        type: 'gh:run',
        spec: { owner: 'belfry', repo: 'belfry.js', runId: 123 },
      });
      const byWorkflow = await model.gates.create({
        type: 'gh:run',
        spec: { owner: 'my-org_1', repo: 'app', workflow: 'ci.yml' },
      });
      expect(byRun).toMatchObject({
        dueAt: T0,
        spec: { owner: 'belfry', repo: 'belfry.js', runId: 123 },
      });
      expect(byWorkflow).toMatchObject({ dueAt: T0, spec: { workflow: 'ci.yml' } });
      expect(ids(await model.gates.due()).sort()).toEqual([byRun.id, byWorkflow.id].sort());
    });

    it('refuses malformed specs with a ConfigError naming spec.<field>, writing nothing', async () => {
      const town = makeTown();
      const gh = { owner: 'o', repo: 'r' };
      const cases: Array<[string, unknown, string, string | RegExp, string?]> = [
        ['timer', { durationMs: 0 }, 'spec.durationMs', 'must be a positive integer; got 0'],
        ['timer', { durationMs: -5 }, 'spec.durationMs', 'got -5'],
        ['timer', { durationMs: 1.5 }, 'spec.durationMs', 'got 1.5'],
        ['timer', { durationMs: '10' }, 'spec.durationMs', 'got "10"'],
        ['timer', {}, 'spec.durationMs', 'got undefined'],
        ['timer', undefined, 'spec', 'must be an object'],
        ['timer', { durationMs: 5, ms: 5 }, 'spec.ms', 'allowed: durationMs', 'UNKNOWN_OPTION'],
        ['human', { prompt: '' }, 'spec.prompt', 'must be a non-empty string'],
        ['human', { approvers: [] }, 'spec.approvers', 'must be a non-empty array of names'],
        ['human', { approvers: ['ann', 3] }, 'spec.approvers[1]', 'got 3'],
        ['human', { who: 'ann' }, 'spec.who', 'allowed: prompt, approvers', 'UNKNOWN_OPTION'],
        ['gh:run', { ...gh, runId: 1, workflow: 'ci.yml' }, 'spec.runId', 'exactly one of runId'],
        ['gh:run', { ...gh }, 'spec.runId', 'exactly one of runId'],
        ['gh:run', { ...gh, runId: 0 }, 'spec.runId', 'must be a positive integer'],
        ['gh:run', { ...gh, workflow: ' ' }, 'spec.workflow', 'must be a non-empty string'],
        ['gh:run', { repo: 'r', runId: 1 }, 'spec.owner', 'must be a non-empty string'],
        ['gh:run', { owner: 'o', runId: 1 }, 'spec.repo', 'must be a non-empty string'],
        ['gh:run', { ...gh, owner: 'has space', runId: 1 }, 'spec.owner', 'GitHub owner name'],
        ['gh:run', { ...gh, owner: '-lead', runId: 1 }, 'spec.owner', 'GitHub owner name'],
        ['gh:run', { ...gh, repo: 'a/b', runId: 1 }, 'spec.repo', 'GitHub repo name'],
        ['gh:run', { ...gh, repo: 'x'.repeat(101), runId: 1 }, 'spec.repo', 'GitHub repo name'],
        ['gh:run', { ...gh, runId: 1, ref: 'main' }, 'spec.ref', 'allowed', 'UNKNOWN_OPTION'],
        [
          'gh:run',
          { ...gh, runId: 1, branch: 'main' },
          'spec.branch',
          'with workflow',
          'INVALID_OPTION',
        ],
        [
          'gh:run',
          { ...gh, workflow: 'ci.yml', event: 'Push!' },
          'spec.event',
          'event name',
          'INVALID_OPTION',
        ],
        ['human', { deadlineMs: 0 }, 'spec.deadlineMs', 'positive integer', 'INVALID_OPTION'],
      ];
      for (const [type, spec, path, message, code] of cases) {
        await expectInvalid(town, () => town.model.gates.create({ type, spec }), path, {
          message,
          ...(code === undefined ? {} : { code: code as 'UNKNOWN_OPTION' }),
        });
      }
      expect(await town.model.gates.open()).toEqual([]);
    });

    it('refuses an unknown gate type, listing the registered ones', async () => {
      const town = makeTown({ gateTypes: [pollGate] });
      await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'slack', spec: {} }),
        'gate.type',
        { message: 'gate.type: no gate type "slack"; registered: timer, human, gh:run, poll' },
      );
    });

    it('refuses a bad timeoutMs, dueAt or waiter at its path', async () => {
      const town = makeTown();
      const spec = { durationMs: 10 };
      await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'timer', spec, timeoutMs: 0 }),
        'gate.timeoutMs',
        { message: 'must be an integer number of ms > 0' },
      );
      await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'timer', spec, dueAt: -1 }),
        'gate.dueAt',
      );
      await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'timer', spec, waiters: ['ok', 'not ok'] }),
        'gate.waiters[1]',
      );
    });

    it('takes an explicit dueAt over the type’s, and keeps the waiters given', async () => {
      const { model } = makeTown();
      const gate = await model.gates.create({
        type: 'timer',
        spec: { durationMs: 1_000 },
        dueAt: T0 + 42,
        waiters: ['mayor', 'mol-1'],
      });
      expect(gate).toMatchObject({ dueAt: T0 + 42, waiters: ['mayor', 'mol-1'] });
    });
  });

  describe('custom gate types', () => {
    it('registers a type from options.gateTypes: its validate fills defaults, firstDueAt schedules it', async () => {
      const { model } = makeTown({ gateTypes: [pollGate] });
      const gate = await model.gates.create({ type: 'poll', spec: { url: 'https://x.test' } });
      expect(gate).toMatchObject({
        type: 'poll',
        spec: { url: 'https://x.test', everyMs: 60_000 },
        dueAt: T0 + 60_000,
      });
      const fast = await model.gates.create({
        type: 'poll',
        spec: { url: 'https://x.test', everyMs: 5 },
      });
      expect(fast.dueAt).toBe(T0 + 5);
      expect(ids(await model.gates.due({ now: T0 + 5, type: 'poll' }))).toEqual([fast.id]);
    });

    it('passes on the ConfigError its validate throws', async () => {
      const town = makeTown({ gateTypes: [pollGate] });
      await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'poll', spec: { url: 'http://x' } }),
        'spec.url',
        { message: 'spec.url: must be an https URL' },
      );
    });

    it('turns anything else its validate throws into a ConfigError at spec, keeping the cause', async () => {
      const town = makeTown({ gateTypes: [sloppyGate] });
      const error = await expectInvalid(
        town,
        () => town.model.gates.create({ type: 'sloppy', spec: {} }),
        'spec',
        { message: /^spec: the sloppy gate type refused it: / },
      );
      expect(error.cause).toBeInstanceOf(TypeError);
      expect(error.message).toContain((error.cause as Error).message);
      // A type without firstDueAt is due when created.
      const { model } = makeTown({ gateTypes: [sloppyGate] });
      expect((await model.gates.create({ type: 'sloppy', spec: { a: { b: 1 } } })).dueAt).toBe(T0);
    });

    it('lets a custom type replace a built-in of the same name', async () => {
      const { model } = makeTown({
        gateTypes: [{ type: 'human', validate: () => ({ team: 'ops' }), firstDueAt: () => 7 }],
      });
      expect(await model.gates.create({ type: 'human', spec: { anything: true } })).toMatchObject({
        spec: { team: 'ops' },
        dueAt: 7,
      });
    });

    it('refuses duplicate or invalid gateTypes options', async () => {
      const make = (gateTypes: unknown) => () => makeTown({ gateTypes: gateTypes as GateType[] });
      await expectConfigError(make([pollGate, pollGate]), 'options.gateTypes[1].type', {
        message: 'gate type poll is given twice',
      });
      await expectConfigError(
        make([{ ...pollGate, type: 'Poll Gate' }]),
        'options.gateTypes[0].type',
        {
          message: 'must be lowercase letters',
        },
      );
      await expectConfigError(make([pollGate, { type: 'x' }]), 'options.gateTypes[1].validate', {
        code: 'MISSING_OPTION',
      });
      await expectConfigError(make([null]), 'options.gateTypes[0].type');
      await expectConfigError(make(pollGate), 'options.gateTypes', {
        message: 'must be an array of gate types',
      });
    });
  });

  describe('reschedule', () => {
    it('sets the next due time and records the evaluation', async () => {
      const { model, clock } = makeTown();
      const gate = await model.gates.create({
        type: 'gh:run',
        spec: { owner: 'o', repo: 'r', runId: 1 },
      });
      clock.advanceSync(10);
      const later = await model.gates.reschedule(gate.id, T0 + 500);
      expect(later).toMatchObject({ status: 'open', dueAt: T0 + 500, lastEvaluatedAt: T0 + 10 });
      expect(await model.gates.due({ now: T0 + 499 })).toEqual([]);
      expect(ids(await model.gates.due({ now: T0 + 500 }))).toEqual([gate.id]);
    });

    it('with null, makes the gate due only on demand', async () => {
      const { model } = makeTown();
      const gate = await model.gates.create({ type: 'timer', spec: { durationMs: 10 } });
      const manual = await model.gates.reschedule(gate.id, null);
      expect(manual).not.toHaveProperty('dueAt');
      expect(await model.gates.require(gate.id)).not.toHaveProperty('dueAt');
      expect(await model.gates.due({ now: Number.MAX_SAFE_INTEGER - 1 })).toEqual([]);
      expect(await model.gates.due({ now: Number.MAX_SAFE_INTEGER - 1, type: 'timer' })).toEqual(
        [],
      );
      expect(ids(await model.gates.open({ type: 'timer' }))).toEqual([gate.id]);
    });

    it('refuses a bad time', async () => {
      const town = makeTown();
      const gate = await town.model.gates.create({ type: 'timer', spec: { durationMs: 10 } });
      await expectInvalid(town, () => town.model.gates.reschedule(gate.id, -1), 'dueAt');
      await expectInvalid(town, () => town.model.gates.reschedule(gate.id, 1.5), 'dueAt');
    });
  });

  describe('close', () => {
    it('closes once, storing the result; the gate leaves due, open and overdue', async () => {
      const town = makeTown();
      const { model, clock } = town;
      const gate = await model.gates.create({
        type: 'timer',
        spec: { durationMs: 10 },
        timeoutMs: 20,
      });
      clock.advanceSync(30);
      expect(ids(await model.gates.overdue())).toEqual([gate.id]);
      const { gate: closed, released } = await model.gates.close(gate.id, {
        fired: true,
        at: [1, 2],
      });
      expect(released).toEqual([]);
      expect(closed).toMatchObject({
        status: 'closed',
        closedAt: T0 + 30,
        lastEvaluatedAt: T0 + 30,
        result: { fired: true, at: [1, 2] },
      });
      expect(closed).not.toHaveProperty('dueAt');
      expect(await model.gates.require(gate.id)).toEqual(closed);
      expect(await model.gates.due({ now: T0 + 1_000 })).toEqual([]);
      expect(await model.gates.overdue({ now: T0 + 1_000 })).toEqual([]);
      expect(await model.gates.open()).toEqual([]);

      clock.advanceSync(10);
      await expectRefused(
        town,
        () => model.gates.close(gate.id, 'again'),
        'INVALID_TRANSITION',
        `cannot close gate ${gate.id}: it closed at ${T0 + 30}`,
      );
      await expectRefused(
        town,
        () => model.gates.reschedule(gate.id, T0 + 100),
        'INVALID_TRANSITION',
        /cannot reschedule gate/,
      );
      await expectRefused(
        town,
        () => model.gates.escalate(gate.id, 'late'),
        'INVALID_TRANSITION',
        /cannot escalate gate/,
      );
      await expectRefused(
        town,
        () => model.gates.addWaiter(gate.id, 'mayor'),
        'INVALID_TRANSITION',
        /cannot add a waiter to gate/,
      );
    });

    it('closes without a result', async () => {
      const { model } = makeTown();
      const gate = await model.gates.create({ type: 'human', spec: {} });
      const { gate: closed } = await model.gates.close(gate.id);
      expect(closed.status).toBe('closed');
      expect(closed).not.toHaveProperty('result');
    });

    it('fails for an unknown gate with NOT_FOUND', async () => {
      const town = makeTown();
      await expectRefused(town, () => town.model.gates.close('gt-missing'), 'NOT_FOUND');
      await expectRefused(town, () => town.model.gates.require('gt-missing'), 'NOT_FOUND');
      expect(await town.model.gates.get('gt-missing')).toBeUndefined();
    });
  });

  describe('escalate', () => {
    it('counts a repeated reason on one record, and appends a new reason', async () => {
      const { model, clock } = makeTown();
      const gate = await model.gates.create({ type: 'human', spec: {} });
      clock.advanceSync(10);
      const first = await model.gates.escalate(gate.id, 'no approval after 1h');
      expect(first.isNew).toBe(true);
      expect(first.escalation).toEqual({
        reason: 'no approval after 1h',
        firstAt: T0 + 10,
        lastAt: T0 + 10,
        count: 1,
      });
      clock.advanceSync(10);
      const repeat = await model.gates.escalate(gate.id, 'no approval after 1h');
      expect(repeat.isNew).toBe(false);
      expect(repeat.escalation).toEqual({
        reason: 'no approval after 1h',
        firstAt: T0 + 10,
        lastAt: T0 + 20,
        count: 2,
      });
      expect(repeat.gate.escalations).toEqual([repeat.escalation]);
      clock.advanceSync(10);
      const other = await model.gates.escalate(gate.id, 'approver on leave');
      expect(other.isNew).toBe(true);
      expect(other.gate.escalations).toEqual([
        repeat.escalation,
        { reason: 'approver on leave', firstAt: T0 + 30, lastAt: T0 + 30, count: 1 },
      ]);
      const stored = await model.gates.require(gate.id);
      expect(stored.escalations).toEqual(other.gate.escalations);
      expect(stored.status).toBe('open');
    });

    it('records each reason once, even when reasons alternate (the list stays bounded)', async () => {
      const { model, clock } = makeTown();
      const gate = await model.gates.create({ type: 'human', spec: {} });
      await model.gates.escalate(gate.id, 'late');
      clock.advanceSync(10);
      await model.gates.escalate(gate.id, 'approver away');
      let back = await model.gates.escalate(gate.id, 'late');
      for (let i = 0; i < 5; i++) {
        clock.advanceSync(10);
        await model.gates.escalate(gate.id, 'approver away');
        back = await model.gates.escalate(gate.id, 'late');
      }
      expect(back.isNew).toBe(false);
      expect(back.gate.escalations.map((e) => [e.reason, e.count, e.firstAt, e.lastAt])).toEqual([
        ['late', 7, T0, T0 + 60],
        ['approver away', 6, T0 + 10, T0 + 60],
      ]);
    });

    it('refuses an empty reason', async () => {
      const town = makeTown();
      const gate = await town.model.gates.create({ type: 'human', spec: {} });
      await expectInvalid(town, () => town.model.gates.escalate(gate.id, ' '), 'reason');
    });
  });

  describe('addWaiter', () => {
    it('adds a waiter once; adding it again writes nothing', async () => {
      const town = makeTown();
      const gate = await town.model.gates.create({ type: 'human', spec: {}, waiters: ['mayor'] });
      const added = await town.model.gates.addWaiter(gate.id, 'deacon');
      expect(added.waiters).toEqual(['mayor', 'deacon']);
      const again = await expectNoWrite(town, () => town.model.gates.addWaiter(gate.id, 'mayor'));
      expect(again.waiters).toEqual(['mayor', 'deacon']);
      await expectInvalid(town, () => town.model.gates.addWaiter(gate.id, 'bad name'), 'waiter');
    });
  });

  describe('due and overdue', () => {
    it('lists open gates due at an explicit now, earliest first, optionally by type', async () => {
      const { model } = makeTown({ gateTypes: [pollGate] });
      const t30 = await model.gates.create({ type: 'timer', spec: { durationMs: 30 } });
      const t10 = await model.gates.create({ type: 'timer', spec: { durationMs: 10 } });
      const p20 = await model.gates.create({
        type: 'poll',
        spec: { url: 'https://x.test', everyMs: 20 },
      });
      expect(await model.gates.due({ now: T0 + 9 })).toEqual([]);
      expect(ids(await model.gates.due({ now: T0 + 20 }))).toEqual([t10.id, p20.id]);
      expect(ids(await model.gates.due({ now: T0 + 30 }))).toEqual([t10.id, p20.id, t30.id]);
      expect(ids(await model.gates.due({ now: T0 + 30, limit: 2 }))).toEqual([t10.id, p20.id]);
      expect(ids(await model.gates.due({ now: T0 + 30, type: 'timer' }))).toEqual([t10.id, t30.id]);
      expect(ids(await model.gates.due({ now: T0 + 30, type: 'gh:run' }))).toEqual([]);
    });

    it('sets timeoutAt to createdAt + timeoutMs and lists overdue gates, most overdue first', async () => {
      const { model, clock } = makeTown();
      clock.advanceSync(100);
      const slow = await model.gates.create({ type: 'human', spec: {}, timeoutMs: 5_000 });
      const quick = await model.gates.create({ type: 'human', spec: {}, timeoutMs: 1_000 });
      const never = await model.gates.create({ type: 'human', spec: {} });
      expect(slow.timeoutAt).toBe(T0 + 5_100);
      expect(quick.timeoutAt).toBe(T0 + 1_100);
      expect(never).not.toHaveProperty('timeoutAt');
      expect(await model.gates.overdue({ now: T0 + 1_099 })).toEqual([]);
      expect(ids(await model.gates.overdue({ now: T0 + 1_100 }))).toEqual([quick.id]);
      expect(ids(await model.gates.overdue({ now: T0 + 10_000 }))).toEqual([quick.id, slow.id]);
      expect(await model.gates.overdue()).toEqual([]);
      clock.advanceSync(5_000);
      expect(ids(await model.gates.overdue())).toEqual([quick.id, slow.id]);
    });
  });
});

describe('gates never due', () => {
  it('are not due by type even at the largest possible time', async () => {
    const { model } = makeTown();
    await model.gates.create({ type: 'human', spec: {} });
    const timer = await model.gates.create({ type: 'timer', spec: { durationMs: 1 } });
    expect(await model.gates.due({ type: 'human', now: Number.MAX_SAFE_INTEGER })).toEqual([]);
    expect(
      (await model.gates.due({ type: 'timer', now: Number.MAX_SAFE_INTEGER })).map((g) => g.id),
    ).toEqual([timer.id]);
    expect((await model.gates.due({ now: Number.MAX_SAFE_INTEGER })).map((g) => g.id)).toEqual([
      timer.id,
    ]);
  });
});
