import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectNoWrite,
  expectRefused,
  generatedId,
  ids,
  makeTown,
  T0,
} from './modelHelpers';

const ALLOWED_STATUSES = "'open', 'in_progress', 'blocked', 'hooked', 'done', 'wontfix'";

describe('Beads', () => {
  describe('create', () => {
    it('fills in the defaults: a bd- id, open, stamped by the clock, nothing optional set', async () => {
      const { model } = makeTown();
      const bead = await model.beads.create({ title: 'fix the login bug' });
      expect(bead.id).toMatch(generatedId('bd'));
      expect(bead).toStrictEqual({
        id: bead.id,
        title: 'fix the login bug',
        status: 'open',
        labels: [],
        metadata: {},
        createdAt: T0,
        updatedAt: T0,
      });
      expect(await model.beads.require(bead.id)).toEqual(bead);
      expect(await model.beads.get(bead.id)).toEqual(bead);
    });

    it('gives every bead its own id', async () => {
      const { model } = makeTown();
      const made = new Set<string>();
      for (let i = 0; i < 50; i++) made.add((await model.beads.create({ title: `b${i}` })).id);
      expect(made.size).toBe(50);
    });

    it('keeps the given fields, and sets closedAt only for a terminal status', async () => {
      const { model, clock } = makeTown();
      await model.rigs.create({ name: 'api' });
      clock.advanceSync(5);
      const bead = await model.beads.create({
        id: 'api-42',
        title: 'ship it',
        status: 'in_progress',
        assignee: 'api/toast',
        rig: 'api',
        labels: ['p1', 'backend'],
        metadata: { estimate: 3, tags: ['x'], nested: { ok: true } },
      });
      expect(bead).toStrictEqual({
        id: 'api-42',
        title: 'ship it',
        status: 'in_progress',
        assignee: 'api/toast',
        rig: 'api',
        labels: ['p1', 'backend'],
        metadata: { estimate: 3, tags: ['x'], nested: { ok: true } },
        createdAt: T0 + 5,
        updatedAt: T0 + 5,
      });
      const done = await model.beads.create({ title: 'already done', status: 'done' });
      expect(done.closedAt).toBe(T0 + 5);
      const wontfix = await model.beads.create({ title: 'nope', status: 'wontfix' });
      expect(wontfix.closedAt).toBe(T0 + 5);
      const blocked = await model.beads.create({ title: 'stuck', status: 'blocked' });
      expect(blocked).not.toHaveProperty('closedAt');
    });

    it('refuses an explicit id that is taken with DUPLICATE_ID', async () => {
      const town = makeTown();
      await town.model.beads.create({ id: 'x-1', title: 'first' });
      await expectRefused(
        town,
        () => town.model.beads.create({ id: 'x-1', title: 'second' }),
        'DUPLICATE_ID',
      );
      expect((await town.model.beads.require('x-1')).title).toBe('first');
    });

    it('uses a custom beadPrefix for generated ids', async () => {
      const { model } = makeTown({ beadPrefix: 'tk9' });
      expect((await model.beads.create({ title: 't' })).id).toMatch(generatedId('tk9'));
    });

    it('follows custom statuses and terminal statuses', async () => {
      const town = makeTown({
        statuses: ['open', 'hooked', 'review', 'merged', 'abandoned'],
        terminalStatuses: ['merged', 'abandoned'],
      });
      const { model, clock } = town;
      const bead = await model.beads.create({ title: 't', status: 'review' });
      expect(bead).not.toHaveProperty('closedAt');
      expect(model.beads.isTerminal('merged')).toBe(true);
      expect(model.beads.isTerminal('done')).toBe(false);
      clock.advanceSync(10);
      expect(await model.beads.setStatus(bead.id, 'merged')).toMatchObject({
        status: 'merged',
        closedAt: T0 + 10,
      });
      await expectRefused(
        town,
        () => model.beads.setStatus(bead.id, 'abandoned'),
        'INVALID_TRANSITION',
      );
      await expectInvalid(
        town,
        () => model.beads.create({ title: 't', status: 'done' }),
        'bead.status',
        {
          message: "must be one of 'open', 'hooked', 'review', 'merged', 'abandoned'; got \"done\"",
        },
      );
      await expectInvalid(town, () => model.beads.setStatus(bead.id, 'done'), 'status');
    });
  });

  describe('status rules', () => {
    it("refuses 'hooked' at creation: only a hook sets it", async () => {
      const town = makeTown();
      await expectInvalid(
        town,
        () => town.model.beads.create({ title: 't', status: 'hooked' }),
        'bead.status',
        { message: /set by attaching a hook \(model\.hooks\.attach\)/ },
      );
    });

    it("refuses setStatus to 'hooked' with INVALID_TRANSITION", async () => {
      const town = makeTown();
      const bead = await town.model.beads.create({ title: 't' });
      await expectRefused(
        town,
        () => town.model.beads.setStatus(bead.id, 'hooked'),
        'INVALID_TRANSITION',
        /'hooked' is set by attaching a hook/,
      );
    });

    it("refuses to move a bead off 'hooked' except by detaching its hook", async () => {
      const town = makeTown();
      const { model } = town;
      await model.rigs.create({ name: 'api' });
      const bead = await model.beads.create({ title: 't', rig: 'api' });
      await model.hooks.attach({ agent: 'api/toast', beadId: bead.id, rig: 'api' });
      for (const status of ['open', 'in_progress', 'done', 'wontfix']) {
        await expectRefused(
          town,
          () => model.beads.setStatus(bead.id, status),
          'INVALID_TRANSITION',
          /is on a hook; detach the hook \(model\.hooks\.detach\)/,
        );
      }
      expect((await model.beads.require(bead.id)).status).toBe('hooked');
    });

    it('refuses terminal to another terminal status: reopen first', async () => {
      const town = makeTown();
      const bead = await town.model.beads.create({ title: 't' });
      const done = await town.model.beads.setStatus(bead.id, 'done');
      await expectRefused(
        town,
        () => town.model.beads.setStatus(bead.id, 'wontfix'),
        'INVALID_TRANSITION',
        `bead ${bead.id} is already done; reopen it before marking it wontfix`,
      );
      expect(await town.model.beads.require(bead.id)).toEqual(done);
    });

    it('reopens a terminal bead and clears closedAt; closing again stamps the new time', async () => {
      const { model, clock } = makeTown();
      const bead = await model.beads.create({ title: 't' });
      clock.advanceSync(10);
      const done = await model.beads.setStatus(bead.id, 'done');
      expect(done).toMatchObject({ status: 'done', closedAt: T0 + 10, updatedAt: T0 + 10 });
      clock.advanceSync(10);
      const reopened = await model.beads.setStatus(bead.id, 'in_progress');
      expect(reopened).toMatchObject({ status: 'in_progress', updatedAt: T0 + 20 });
      expect(reopened).not.toHaveProperty('closedAt');
      expect(await model.beads.require(bead.id)).not.toHaveProperty('closedAt');
      clock.advanceSync(10);
      expect(await model.beads.setStatus(bead.id, 'wontfix')).toMatchObject({
        status: 'wontfix',
        closedAt: T0 + 30,
      });
    });

    it('moves between non-terminal statuses without closedAt, keeping the other fields', async () => {
      const { model, clock } = makeTown();
      const bead = await model.beads.create({
        title: 't',
        assignee: 'api/toast',
        labels: ['a'],
        metadata: { k: 1 },
      });
      clock.advanceSync(7);
      const moved = await model.beads.setStatus(bead.id, 'blocked');
      expect(moved).toStrictEqual({ ...bead, status: 'blocked', updatedAt: T0 + 7 });
    });

    it('treats setting the current status as a no-op that writes nothing', async () => {
      const town = makeTown();
      const open = await town.model.beads.create({ title: 'a' });
      town.clock.advanceSync(10);
      const done = await town.model.beads.setStatus(
        (await town.model.beads.create({ title: 'b' })).id,
        'done',
      );
      town.clock.advanceSync(10);
      expect(await expectNoWrite(town, () => town.model.beads.setStatus(open.id, 'open'))).toEqual(
        open,
      );
      expect(await expectNoWrite(town, () => town.model.beads.setStatus(done.id, 'done'))).toEqual(
        done,
      );
    });

    it('refuses an unknown status naming the allowed ones, and an unknown bead', async () => {
      const town = makeTown();
      const bead = await town.model.beads.create({ title: 't' });
      await expectInvalid(town, () => town.model.beads.setStatus(bead.id, 'closed'), 'status', {
        message: `status: must be one of ${ALLOWED_STATUSES}; got "closed"`,
      });
      await expectRefused(
        town,
        () => town.model.beads.setStatus('bd-missing', 'done'),
        'NOT_FOUND',
        'unknown bead "bd-missing"',
      );
      await expectRefused(town, () => town.model.beads.require('bd-missing'), 'NOT_FOUND');
      expect(await town.model.beads.get('bd-missing')).toBeUndefined();
    });
  });

  describe('update', () => {
    it('changes title, labels and metadata, and stamps updatedAt, leaving the status alone', async () => {
      const { model, clock } = makeTown();
      const bead = await model.beads.create({ title: 'old', labels: ['a'], metadata: { v: 1 } });
      clock.advanceSync(10);
      const updated = await model.beads.update(bead.id, {
        title: 'new',
        labels: ['b', 'c'],
        metadata: { v: 2, list: [1, 'two', null] },
      });
      expect(updated).toStrictEqual({
        ...bead,
        title: 'new',
        labels: ['b', 'c'],
        metadata: { v: 2, list: [1, 'two', null] },
        updatedAt: T0 + 10,
      });
      expect(await model.beads.require(bead.id)).toEqual(updated);
    });

    it('sets the assignee, keeps it when not given, and clears it with null', async () => {
      const { model } = makeTown();
      const bead = await model.beads.create({ title: 't' });
      expect((await model.beads.update(bead.id, { assignee: 'api/toast' })).assignee).toBe(
        'api/toast',
      );
      expect((await model.beads.update(bead.id, { title: 'renamed' })).assignee).toBe('api/toast');
      const cleared = await model.beads.update(bead.id, { assignee: null });
      expect(cleared).not.toHaveProperty('assignee');
      expect(await model.beads.require(bead.id)).not.toHaveProperty('assignee');
    });

    it('refuses bad patches with a ConfigError at the field, writing nothing', async () => {
      const town = makeTown();
      const bead = await town.model.beads.create({ title: 't', labels: ['keep'] });
      const update = (patch: unknown) => () => town.model.beads.update(bead.id, patch as never);
      await expectInvalid(town, update({ labels: ['a', 'b', 'a'] }), 'patch.labels[2]', {
        message: 'label "a" is listed twice',
      });
      await expectInvalid(town, update({ labels: 'a' }), 'patch.labels', {
        message: 'must be an array of strings',
      });
      await expectInvalid(town, update({ labels: [''] }), 'patch.labels[0]');
      await expectInvalid(town, update({ metadata: { when: new Date(0) } }), 'patch.metadata', {
        message: /cannot be stored as JSON: it is an instance of Date/,
      });
      await expectInvalid(town, update({ metadata: { n: Number.NaN } }), 'patch.metadata');
      await expectInvalid(town, update({ metadata: ['x'] }), 'patch.metadata', {
        message: 'must be a JSON object',
      });
      await expectInvalid(town, update({ title: '   ' }), 'patch.title', {
        message: 'must be a non-empty string of at most 500 characters',
      });
      await expectInvalid(town, update({ assignee: 'has space' }), 'patch.assignee');
      await expectInvalid(town, update({ colour: 'red' }), 'patch.colour', {
        code: 'UNKNOWN_OPTION',
        message: 'allowed: title, assignee, labels, metadata',
      });
      await expectInvalid(town, update({ status: 'done' }), 'patch.status', {
        code: 'UNKNOWN_OPTION',
        message: 'status has setStatus',
      });
      await expectInvalid(town, update({ title: 'fine', status: 'done' }), 'patch.status', {
        code: 'UNKNOWN_OPTION',
      });
      expect((await town.model.beads.require(bead.id)).status).toBe('open');
    });

    it('fails for an unknown bead with NOT_FOUND', async () => {
      const town = makeTown();
      await expectRefused(
        town,
        () => town.model.beads.update('bd-missing', { title: 'x' }),
        'NOT_FOUND',
      );
    });
  });

  describe('list', () => {
    it('lists by status, oldest first, and follows status changes', async () => {
      const { model, clock } = makeTown();
      const a = await model.beads.create({ title: 'a' });
      clock.advanceSync(1);
      const b = await model.beads.create({ title: 'b' });
      clock.advanceSync(1);
      const c = await model.beads.create({ title: 'c' });
      clock.advanceSync(1);
      const d = await model.beads.create({ title: 'd', status: 'done' });
      expect(ids(await model.beads.list({ status: 'open' }))).toEqual([a.id, b.id, c.id]);
      expect(ids(await model.beads.list({ status: 'open', limit: 2 }))).toEqual([a.id, b.id]);
      expect(ids(await model.beads.list({ status: 'done' }))).toEqual([d.id]);
      await model.beads.setStatus(b.id, 'done');
      expect(ids(await model.beads.list({ status: 'open' }))).toEqual([a.id, c.id]);
      expect(ids(await model.beads.list({ status: 'done' })).sort()).toEqual([b.id, d.id].sort());
      expect(await model.beads.list({ status: 'blocked' })).toEqual([]);
    });

    it('lists by rig, and by rig and status', async () => {
      const { model } = makeTown();
      await model.rigs.create({ name: 'api' });
      await model.rigs.create({ name: 'web' });
      const a1 = await model.beads.create({ title: 'a1', rig: 'api' });
      const a2 = await model.beads.create({ title: 'a2', rig: 'api', status: 'done' });
      const w1 = await model.beads.create({ title: 'w1', rig: 'web' });
      await model.beads.create({ title: 'no rig' });
      expect(ids(await model.beads.list({ rig: 'api' })).sort()).toEqual([a1.id, a2.id].sort());
      expect(ids(await model.beads.list({ rig: 'api', status: 'done' }))).toEqual([a2.id]);
      expect(ids(await model.beads.list({ rig: 'web' }))).toEqual([w1.id]);
      expect(await model.beads.list({ rig: 'web', status: 'done' })).toEqual([]);
    });

    it('needs a status or a rig', async () => {
      const town = makeTown();
      await expectInvalid(town, () => town.model.beads.list({}), 'options', {
        message: 'give a status, a rig, or both',
      });
    });
  });

  describe('bad input', () => {
    it('refuses a bead in an unknown rig with NOT_FOUND naming the known rigs, writing nothing', async () => {
      const town = makeTown();
      await town.model.rigs.create({ name: 'api' });
      await expectRefused(
        town,
        () => town.model.beads.create({ title: 't', rig: 'ghost' }),
        'NOT_FOUND',
        'unknown rig "ghost"; known: api',
      );
      expect(await town.model.beads.list({ status: 'open' })).toEqual([]);
    });

    it('refuses each bad field with a ConfigError naming it and what is allowed', async () => {
      const town = makeTown();
      await town.model.rigs.create({ name: 'api' });
      const create = (input: unknown) => () => town.model.beads.create(input as never);
      const cases: Array<[unknown, string, string | RegExp]> = [
        [{}, 'bead.title', 'must be a non-empty string of at most 500 characters; got undefined'],
        [{ title: '' }, 'bead.title', 'got ""'],
        [{ title: 'x'.repeat(501) }, 'bead.title', 'at most 500 characters'],
        [{ title: 7 }, 'bead.title', 'got 7'],
        [{ title: 't', status: 'closed' }, 'bead.status', `must be one of ${ALLOWED_STATUSES}`],
        [{ title: 't', assignee: 'has space' }, 'bead.assignee', /letters, digits/],
        [{ title: 't', labels: 'p1' }, 'bead.labels', 'must be an array of strings'],
        [{ title: 't', labels: ['ok', ''] }, 'bead.labels[1]', 'non-empty string'],
        [{ title: 't', labels: ['x'.repeat(101)] }, 'bead.labels[0]', 'at most 100 characters'],
        [{ title: 't', labels: ['p1', 'p1'] }, 'bead.labels[1]', 'label "p1" is listed twice'],
        [{ title: 't', metadata: 'x' }, 'bead.metadata', 'must be a JSON object; got "x"'],
        [{ title: 't', metadata: null }, 'bead.metadata', 'must be a JSON object; got null'],
        [{ title: 't', metadata: { f: () => 1 } }, 'bead.metadata', /it is a function/],
        [{ title: 't', id: 'has space' }, 'bead.id', /letters, digits/],
        [{ title: 't', rig: 'bad rig' }, 'bead.rig', /letters, digits/],
      ];
      for (const [input, path, message] of cases) {
        await expectInvalid(town, create(input), path, { message });
      }
    });
  });
});

describe('a hooked bead belongs to its hook', () => {
  it('refuses to change the assignee of a hooked bead, writing nothing', async () => {
    const town = makeTown();
    await town.model.rigs.create({ name: 'api' });
    const bead = await town.model.beads.create({ title: 'hooked work', rig: 'api' });
    await town.model.hooks.attach({ agent: 'api/toast', beadId: bead.id, rig: 'api' });
    await expectRefused(
      town,
      () => town.model.beads.update(bead.id, { assignee: 'api/other' }),
      'INVALID_TRANSITION',
      /api\/toast's hook/,
    );
    await expectRefused(
      town,
      () => town.model.beads.update(bead.id, { assignee: null }),
      'INVALID_TRANSITION',
    );
    // Other fields, and naming the same assignee, are fine.
    const renamed = await town.model.beads.update(bead.id, {
      title: 'renamed',
      assignee: 'api/toast',
    });
    expect(renamed).toMatchObject({ title: 'renamed', assignee: 'api/toast', status: 'hooked' });
  });
});

describe('argument errors', () => {
  it('reject the returned promise rather than throwing, so promise handling sees them', async () => {
    const { model } = makeTown();
    const results = await Promise.allSettled([
      model.beads.create({ title: '' }),
      model.rigs.create({ name: 'bad name' }),
      model.beads.setStatus('bd-x', 'nonsense'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  });
});
