import { type Bead, ConfigError, createTownModel, type Molecule } from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import {
  expectInvalid,
  expectRefused,
  failure,
  generatedId,
  ids,
  makeTown,
  T0,
  type TestTown,
} from './modelHelpers';

const THREE_STEPS = [{ name: 'one' }, { name: 'two' }, { name: 'three' }];

/** A molecule dispatched by `deacon`: running, epoch 1. */
async function running(
  town: TestTown,
  steps: Parameters<TestTown['model']['molecules']['create']>[0]['steps'] = THREE_STEPS,
  name = 'patrol',
): Promise<Molecule> {
  const mol = await town.model.molecules.create({ name, steps });
  return town.model.molecules.dispatch(mol.id, { by: 'deacon' });
}

describe('Molecules', () => {
  describe('create', () => {
    it('starts a molecule without a gate at step 0, ready', async () => {
      const { model } = makeTown();
      await model.rigs.create({ name: 'api' });
      const mol = await model.molecules.create({
        name: 'deacon-patrol',
        steps: THREE_STEPS,
        rig: 'api',
        metadata: { formula: 'v2' },
      });
      expect(mol.id).toMatch(generatedId('mol'));
      expect(mol).toStrictEqual({
        id: mol.id,
        name: 'deacon-patrol',
        steps: THREE_STEPS,
        status: 'ready',
        cursor: 0,
        completed: [],
        epoch: 0,
        rig: 'api',
        metadata: { formula: 'v2' },
        createdAt: T0,
        updatedAt: T0,
      });
      expect(await model.molecules.require(mol.id)).toEqual(mol);
      expect(ids(await model.molecules.ready())).toEqual([mol.id]);
    });

    it('starts waiting on a new gate when step 0 has one', async () => {
      const { model } = makeTown();
      const mol = await model.molecules.create({
        name: 'deploy',
        steps: [
          { name: 'wait', gate: { type: 'timer', spec: { durationMs: 500 }, timeoutMs: 900 } },
          { name: 'ship' },
        ],
      });
      expect(mol).toMatchObject({ status: 'waiting', cursor: 0, epoch: 0 });
      const gate = await model.gates.require(mol.waitingOn as string);
      expect(gate).toMatchObject({
        type: 'timer',
        spec: { durationMs: 500 },
        status: 'open',
        createdAt: T0,
        dueAt: T0 + 500,
        timeoutAt: T0 + 900,
        waiters: [mol.id],
      });
      expect(await model.molecules.ready()).toEqual([]);
      expect(ids(await model.molecules.list({ status: 'waiting' }))).toEqual([mol.id]);
    });

    it('refuses bad steps with a ConfigError at the step, writing nothing (no gate either)', async () => {
      const town = makeTown();
      const create = (steps: unknown) => () =>
        town.model.molecules.create({ name: 'm', steps: steps as never });
      await expectInvalid(town, create([]), 'molecule.steps', {
        message: 'must be a non-empty array of steps',
      });
      await expectInvalid(town, create(undefined), 'molecule.steps');
      await expectInvalid(town, create([{ name: 'a' }, 'b']), 'molecule.steps[1]', {
        message: 'must be { name, gate? }',
      });
      await expectInvalid(town, create([{ name: 'a', retries: 3 }]), 'molecule.steps[0].retries', {
        code: 'UNKNOWN_OPTION',
        message: 'allowed: name, gate',
      });
      await expectInvalid(town, create([{ name: '' }]), 'molecule.steps[0].name');
      await expectInvalid(
        town,
        create([{ name: 'a' }, { name: 'b', gate: { type: 'slack', spec: {} } }]),
        'molecule.steps[1].gate.type',
        { message: 'no gate type "slack"; registered: timer, human, gh:run' },
      );
      await expectInvalid(
        town,
        create([{ name: 'a', gate: { type: 'timer', spec: { durationMs: 5 }, timeoutMs: 0 } }]),
        'molecule.steps[0].gate.timeoutMs',
      );
      await expectInvalid(
        town,
        () => town.model.molecules.create({ name: 'bad name', steps: THREE_STEPS }),
        'molecule.name',
      );
      await expectInvalid(
        town,
        () => town.model.molecules.create({ name: 'm', steps: THREE_STEPS, metadata: [] as never }),
        'molecule.metadata',
      );
      await expectRefused(
        town,
        () => town.model.molecules.create({ name: 'm', steps: THREE_STEPS, rig: 'ghost' }),
        'NOT_FOUND',
        'unknown rig "ghost"',
      );
      expect(await town.model.molecules.ready()).toEqual([]);
    });

    it('refuses a bad gate spec at create time, not when the step is reached', async () => {
      const town = makeTown();
      const before = await town.snapshot();
      const error = await failure(() =>
        town.model.molecules.create({
          name: 'm',
          steps: [{ name: 'a' }, { name: 'b', gate: { type: 'timer', spec: { durationMs: 0 } } }],
        }),
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({
        code: 'INVALID_OPTION',
        path: expect.stringMatching(/spec\.durationMs$/),
      });
      expect((error as ConfigError).message).toMatch(/must be a positive integer; got 0/);
      expect(await town.snapshot()).toEqual(before);
      expect(await town.model.gates.open()).toEqual([]);
    });

    it('names the step whose gate spec is bad in the error path', async () => {
      const town = makeTown();
      await expectInvalid(
        town,
        () =>
          town.model.molecules.create({
            name: 'm',
            steps: [{ name: 'a' }, { name: 'b', gate: { type: 'timer', spec: { durationMs: 0 } } }],
          }),
        'molecule.steps[1].gate.spec.durationMs',
      );
    });

    it('refuses an unknown key in a step’s gate (a typo such as timeout for timeoutMs)', async () => {
      const town = makeTown();
      await expectInvalid(
        town,
        () =>
          town.model.molecules.create({
            name: 'm',
            steps: [{ name: 'a', gate: { type: 'human', spec: {}, timeout: 60_000 } as never }],
          }),
        'molecule.steps[0].gate.timeout',
        { code: 'UNKNOWN_OPTION' },
      );
    });
  });

  describe('dispatch', () => {
    it('claims a ready molecule: running, epoch + 1, stamped with who and when', async () => {
      const town = makeTown();
      const mol = await town.model.molecules.create({ name: 'patrol', steps: THREE_STEPS });
      town.clock.advanceSync(10);
      const run = await town.model.molecules.dispatch(mol.id, { by: 'deacon' });
      expect(run).toStrictEqual({
        ...mol,
        status: 'running',
        epoch: 1,
        dispatchedBy: 'deacon',
        dispatchedAt: T0 + 10,
        updatedAt: T0 + 10,
      });
      expect(await town.model.molecules.ready()).toEqual([]);
      await expectRefused(
        town,
        () => town.model.molecules.dispatch(mol.id, { by: 'deacon-2' }),
        'CONFLICT',
        `molecule ${mol.id} is running, not ready; it cannot be dispatched`,
      );
    });

    it('lets exactly one of two concurrent dispatchers win', async () => {
      const { model } = makeTown();
      const mol = await model.molecules.create({ name: 'patrol', steps: THREE_STEPS });
      const results = await Promise.allSettled([
        model.molecules.dispatch(mol.id, { by: 'a' }),
        model.molecules.dispatch(mol.id, { by: 'b' }),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((await model.molecules.require(mol.id)).epoch).toBe(1);
    });

    it('refuses a waiting molecule, an unknown one, and a bad dispatcher name', async () => {
      const town = makeTown();
      const mol = await town.model.molecules.create({
        name: 'm',
        steps: [{ name: 'a', gate: { type: 'human', spec: {} } }],
      });
      await expectRefused(
        town,
        () => town.model.molecules.dispatch(mol.id, { by: 'deacon' }),
        'CONFLICT',
        /is waiting, not ready/,
      );
      await expectRefused(
        town,
        () => town.model.molecules.dispatch('mol-missing', { by: 'deacon' }),
        'NOT_FOUND',
      );
      await expectInvalid(
        town,
        () => town.model.molecules.dispatch(mol.id, { by: '' }),
        'options.by',
      );
    });
  });

  describe('completeStep', () => {
    it('records each step and moves the cursor; after the last step the molecule is done', async () => {
      const town = makeTown();
      const { model, clock } = town;
      const run = await running(town);
      clock.advanceSync(10);
      const after0 = await model.molecules.completeStep(run.id, {
        step: 0,
        epoch: 1,
        result: { checked: 3 },
      });
      expect(after0).toMatchObject({
        status: 'running',
        cursor: 1,
        epoch: 1,
        updatedAt: T0 + 10,
        completed: [{ step: 0, name: 'one', at: T0 + 10, result: { checked: 3 } }],
      });
      clock.advanceSync(10);
      await model.molecules.completeStep(run.id, { step: 1, epoch: 1 });
      clock.advanceSync(10);
      const done = await model.molecules.completeStep(run.id, { step: 2, epoch: 1, result: 'ok' });
      expect(done).toMatchObject({ status: 'done', cursor: 3 });
      expect(done.completed).toEqual([
        { step: 0, name: 'one', at: T0 + 10, result: { checked: 3 } },
        { step: 1, name: 'two', at: T0 + 20 },
        { step: 2, name: 'three', at: T0 + 30, result: 'ok' },
      ]);
      expect(await model.molecules.require(run.id)).toEqual(done);
      await expectRefused(
        town,
        () => model.molecules.completeStep(run.id, { step: 3, epoch: 1 }),
        'CONFLICT',
        /it is done/,
      );
    });

    it('refuses an old or a future step with CONFLICT, writing nothing', async () => {
      const town = makeTown();
      const run = await running(town);
      await town.model.molecules.completeStep(run.id, { step: 0, epoch: 1 });
      await expectRefused(
        town,
        () => town.model.molecules.completeStep(run.id, { step: 0, epoch: 1 }),
        'CONFLICT',
        `molecule ${run.id}: step 0 was already completed; the next step is 1`,
      );
      await expectRefused(
        town,
        () => town.model.molecules.completeStep(run.id, { step: 2, epoch: 1 }),
        'CONFLICT',
        `molecule ${run.id}: step 2 is not reached yet; the current step is 1`,
      );
    });

    it('refuses a step of a molecule that is not running', async () => {
      const town = makeTown();
      const mol = await town.model.molecules.create({ name: 'm', steps: THREE_STEPS });
      await expectRefused(
        town,
        () => town.model.molecules.completeStep(mol.id, { step: 0, epoch: 0 }),
        'CONFLICT',
        /it is ready/,
      );
    });

    it('waits on a fresh gate at a gated step; closing the gate makes it ready, and a stale epoch is refused', async () => {
      const town = makeTown();
      const { model, clock } = town;
      const run = await running(town, [
        { name: 'build' },
        {
          name: 'approve',
          gate: { type: 'human', spec: { prompt: 'ship?' }, timeoutMs: 3_600_000 },
        },
        { name: 'ship' },
      ]);
      clock.advanceSync(100);
      const waiting = await model.molecules.completeStep(run.id, { step: 0, epoch: 1 });
      expect(waiting).toMatchObject({ status: 'waiting', cursor: 1, epoch: 1 });
      const gate = await model.gates.require(waiting.waitingOn as string);
      expect(gate).toMatchObject({
        type: 'human',
        spec: { prompt: 'ship?' },
        status: 'open',
        createdAt: T0 + 100,
        timeoutAt: T0 + 100 + 3_600_000,
        waiters: [run.id],
      });
      // The old runner cannot go on while the molecule waits.
      await expectRefused(
        town,
        () => model.molecules.completeStep(run.id, { step: 1, epoch: 1 }),
        'CONFLICT',
        /it is waiting/,
      );

      clock.advanceSync(100);
      const { released } = await model.gates.close(gate.id, { approvedBy: 'ann' });
      expect(ids(released)).toEqual([run.id]);
      const ready = await model.molecules.require(run.id);
      expect(ready).toMatchObject({ status: 'ready', cursor: 1, updatedAt: T0 + 200 });
      expect(ready).not.toHaveProperty('waitingOn');
      expect(ids(await model.molecules.ready())).toEqual([run.id]);

      const again = await model.molecules.dispatch(run.id, { by: 'deacon-2' });
      expect(again).toMatchObject({ status: 'running', epoch: 2, dispatchedBy: 'deacon-2' });
      await expectRefused(
        town,
        () => model.molecules.completeStep(run.id, { step: 1, epoch: 1 }),
        'CONFLICT',
        `cannot complete a step of molecule ${run.id}: epoch 1 is stale; it was dispatched again (epoch 2)`,
      );
      const after1 = await model.molecules.completeStep(run.id, { step: 1, epoch: 2 });
      expect(after1).toMatchObject({ status: 'running', cursor: 2 });
      const done = await model.molecules.completeStep(run.id, { step: 2, epoch: 2 });
      expect(done.status).toBe('done');
      expect(done.completed.map((c) => c.name)).toEqual(['build', 'approve', 'ship']);
    });

    it('refuses a result that is not JSON', async () => {
      const town = makeTown();
      const run = await running(town);
      await expectRefused(
        town,
        () =>
          town.model.molecules.completeStep(run.id, {
            step: 0,
            epoch: 1,
            result: new Map() as never,
          }),
        'INVALID_RECORD',
      );
    });
  });

  describe('resume after a crash', () => {
    it('continues from the cursor in a new process on the same store, never redoing a step', async () => {
      const town = makeTown();
      const other = await running(town, [{ name: 'x' }], 'other');
      const run = await running(town);
      town.clock.advanceSync(10);
      await town.model.molecules.completeStep(run.id, { step: 0, epoch: run.epoch, result: 1 });

      // The runner crashes here. A new process opens the same store with its own clock.
      const clock = new SimulatedClock(T0 + 60_000);
      const after = createTownModel({ store: town.store, clock });
      const unfinished = await after.molecules.list({ status: 'running', name: 'patrol' });
      expect(ids(unfinished)).toEqual([run.id]);
      expect(ids(await after.molecules.list({ status: 'running' })).sort()).toEqual(
        [run.id, other.id].sort(),
      );
      const [mol] = unfinished as [Molecule];
      expect(mol).toMatchObject({ cursor: 1, epoch: 1, completed: [{ step: 0, result: 1 }] });

      const done: string[] = [];
      let current = mol;
      while (current.status === 'running') {
        const step = current.steps[current.cursor];
        done.push(step?.name as string);
        clock.advanceSync(5);
        current = await after.molecules.completeStep(current.id, {
          step: current.cursor,
          epoch: current.epoch,
        });
      }
      expect(done).toEqual(['two', 'three']);
      expect(current).toMatchObject({ status: 'done', cursor: 3 });
      expect(current.completed).toEqual([
        { step: 0, name: 'one', at: T0 + 10, result: 1 },
        { step: 1, name: 'two', at: T0 + 60_005 },
        { step: 2, name: 'three', at: T0 + 60_010 },
      ]);
      expect(await after.molecules.list({ status: 'running', name: 'patrol' })).toEqual([]);
      expect(ids(await after.molecules.list({ status: 'done', name: 'patrol' }))).toEqual([run.id]);
    });
  });

  describe('fail', () => {
    it('marks a running molecule failed at its current step', async () => {
      const town = makeTown();
      const run = await running(town);
      await town.model.molecules.completeStep(run.id, { step: 0, epoch: 1 });
      town.clock.advanceSync(10);
      const failed = await town.model.molecules.fail(run.id, { epoch: 1, reason: 'disk full' });
      expect(failed).toMatchObject({
        status: 'failed',
        failure: 'disk full',
        cursor: 1,
        updatedAt: T0 + 10,
      });
      expect(ids(await town.model.molecules.list({ status: 'failed' }))).toEqual([run.id]);
      await expectRefused(
        town,
        () => town.model.molecules.completeStep(run.id, { step: 1, epoch: 1 }),
        'CONFLICT',
      );
    });

    it('refuses a molecule that is not running, a stale epoch, and an empty reason', async () => {
      const town = makeTown();
      const ready = await town.model.molecules.create({ name: 'm', steps: THREE_STEPS });
      await expectRefused(
        town,
        () => town.model.molecules.fail(ready.id, { epoch: 0, reason: 'x' }),
        'CONFLICT',
      );
      const run = await running(town);
      await expectRefused(
        town,
        () => town.model.molecules.fail(run.id, { epoch: 7, reason: 'x' }),
        'CONFLICT',
        /epoch 7 is stale/,
      );
      await expectInvalid(
        town,
        () => town.model.molecules.fail(run.id, { epoch: 1, reason: '' }),
        'options.reason',
      );
    });
  });

  describe('squash', () => {
    it('turns a done molecule into one digest bead and removes the molecule', async () => {
      const town = makeTown();
      const { model, clock } = town;
      await model.rigs.create({ name: 'api' });
      const mol = await model.molecules.create({
        name: 'patrol',
        steps: [{ name: 'one' }, { name: 'two' }],
        rig: 'api',
      });
      await model.molecules.dispatch(mol.id, { by: 'deacon' });
      clock.advanceSync(10);
      await model.molecules.completeStep(mol.id, { step: 0, epoch: 1, result: { n: 1 } });
      clock.advanceSync(10);
      await model.molecules.completeStep(mol.id, { step: 1, epoch: 1 });
      clock.advanceSync(10);
      const digest = await model.molecules.squash(mol.id, { summary: 'all quiet' });
      expect(digest.id).toMatch(generatedId('bd'));
      expect(digest).toStrictEqual({
        id: digest.id,
        title: 'digest: patrol',
        status: 'done',
        rig: 'api',
        labels: ['digest', 'molecule:patrol'],
        metadata: {
          molecule: mol.id,
          name: 'patrol',
          outcome: 'done',
          summary: 'all quiet',
          steps: [
            { step: 0, name: 'one', at: T0 + 10, result: { n: 1 } },
            { step: 1, name: 'two', at: T0 + 20 },
          ],
          createdAt: T0,
        },
        createdAt: T0 + 30,
        updatedAt: T0 + 30,
        closedAt: T0 + 30,
      });
      expect(await model.beads.require(digest.id)).toEqual(digest);
      expect(ids(await model.beads.list({ rig: 'api', status: 'done' }))).toEqual([digest.id]);
      expect(await model.molecules.get(mol.id)).toBeUndefined();
      expect(await model.molecules.list({ status: 'done' })).toEqual([]);
      await expectRefused(
        town,
        () => model.molecules.squash(mol.id, { summary: 'again' }),
        'NOT_FOUND',
      );
    });

    it('squashes a failed molecule with its failure, in the first terminal status', async () => {
      const town = makeTown({
        statuses: ['open', 'hooked', 'merged', 'abandoned'],
        terminalStatuses: ['merged', 'abandoned'],
      });
      const run = await running(town);
      await town.model.molecules.completeStep(run.id, { step: 0, epoch: 1 });
      await town.model.molecules.fail(run.id, { epoch: 1, reason: 'tests red' });
      const digest = await town.model.molecules.squash(run.id, { summary: 'gave up' });
      expect(digest).toMatchObject({
        status: 'merged',
        labels: ['digest', 'molecule:patrol'],
        metadata: {
          outcome: 'failed',
          failure: 'tests red',
          summary: 'gave up',
          steps: [{ step: 0, name: 'one' }],
        },
      });
      expect(digest).not.toHaveProperty('rig');
      expect(await town.model.molecules.get(run.id)).toBeUndefined();
    });

    it('refuses a molecule that is not finished, keeping it, and an empty summary', async () => {
      const town = makeTown();
      const ready = await town.model.molecules.create({ name: 'm', steps: THREE_STEPS });
      const waiting = await town.model.molecules.create({
        name: 'w',
        steps: [{ name: 'a', gate: { type: 'human', spec: {} } }],
      });
      const run = await running(town);
      for (const mol of [ready, waiting, run]) {
        await expectRefused(
          town,
          () => town.model.molecules.squash(mol.id, { summary: 's' }),
          'INVALID_TRANSITION',
          `molecule ${mol.id} is ${mol.status}; only a done or failed molecule can be squashed`,
        );
      }
      await expectInvalid(
        town,
        () => town.model.molecules.squash(run.id, { summary: '' }),
        'options.summary',
      );
    });
  });

  describe('pruneDigests', () => {
    /** Runs a one-step molecule named `name` to its digest, `gapMs` after the previous one. */
    async function digestOf(town: TestTown, name: string, gapMs = 10) {
      town.clock.advanceSync(gapMs);
      const run = await running(town, [{ name: 'only' }], name);
      await town.model.molecules.completeStep(run.id, { step: 0, epoch: 1 });
      return town.model.molecules.squash(run.id, { summary: `${name} done` });
    }

    it('keeps the newest digests of that molecule name and deletes the older ones', async () => {
      const town = makeTown();
      const patrols: Bead[] = [];
      for (let i = 0; i < 5; i++) patrols.push(await digestOf(town, 'patrol'));
      const other = await digestOf(town, 'release');
      const plain = await town.model.beads.create({ title: 'not a digest', labels: ['digest'] });

      expect(await town.model.molecules.pruneDigests('patrol', { keep: 2 })).toBe(3);
      for (const [i, d] of patrols.entries())
        expect(await town.model.beads.get(d.id), `patrol digest ${i}`).toEqual(
          i < 3 ? undefined : d,
        );
      expect(await town.model.beads.get(other.id)).toEqual(other);
      expect(await town.model.beads.get(plain.id)).toEqual(plain);
      // Nothing more to prune: no write.
      expect(await town.model.molecules.pruneDigests('patrol', { keep: 2 })).toBe(0);
      expect(await town.model.molecules.pruneDigests('patrol', { keep: 0 })).toBe(2);
      expect(await town.model.beads.get(other.id)).toEqual(other);
    });

    it('deletes at most `limit` per call, oldest first, and keeps a digest a convoy tracks', async () => {
      const town = makeTown();
      const digests: Bead[] = [];
      for (let i = 0; i < 6; i++) digests.push(await digestOf(town, 'patrol'));
      await town.model.convoys.create({ title: 'audit', beadIds: [digests[0]?.id as string] });

      expect(await town.model.molecules.pruneDigests('patrol', { keep: 1, limit: 3 })).toBe(2);
      const left = async () =>
        (
          await Promise.all(
            digests.map(async (d) => (await town.model.beads.get(d.id)) !== undefined),
          )
        ).map((kept) => (kept ? 1 : 0));
      // The tracked one is kept, the next two go.
      expect(await left()).toEqual([1, 0, 0, 1, 1, 1]);
      expect(await town.model.molecules.pruneDigests('patrol', { keep: 1, limit: 3 })).toBe(2);
      expect(await left()).toEqual([1, 0, 0, 0, 0, 1]);
    });

    it('refuses a bad keep or limit, changing nothing', async () => {
      const town = makeTown();
      await digestOf(town, 'patrol');
      for (const keep of [-1, 1.5, Number.NaN, '3', undefined])
        await expectInvalid(
          town,
          () => town.model.molecules.pruneDigests('patrol', { keep: keep as number }),
          'options.keep',
        );
      for (const limit of [0, 2.5, '10'])
        await expectInvalid(
          town,
          () => town.model.molecules.pruneDigests('patrol', { keep: 0, limit: limit as number }),
          'options.limit',
        );
    });
  });
});
