import { StoreError } from '../errors';
import { describe, fail, rejectUnknownKeys, requireObject, withPath } from '../internal/validate';
import { toFrozenJson } from '../store/json';
import type { JsonObject, JsonValue, StoreTx } from '../store/Store';
import { limited, onMoleculeChanged } from './Convoys';
import {
  type Ctx,
  checkJsonObject,
  checkMs,
  checkName,
  checkText,
  load,
  type TownEnv,
} from './env';
import { insertGate } from './Gates';
import { validateGateSpec } from './gateTypes';
import { requireRig } from './Rigs';
import type { Bead, CompletedStep, Molecule, MoleculeStatus, MoleculeStep } from './types';

const COLLECTION = 'molecules';

function conflict(message: string): StoreError {
  return new StoreError({ code: 'CONFLICT', message });
}

function checkSteps(env: TownEnv, value: unknown): MoleculeStep[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail(
      'INVALID_OPTION',
      'molecule.steps',
      `must be a non-empty array of steps; got ${describe(value)}`,
    );
  }
  return value.map((raw, i) => {
    const path = `molecule.steps[${i}]`;
    if (typeof raw !== 'object' || raw === null)
      fail('INVALID_OPTION', path, `must be { name, gate? }; got ${describe(raw)}`);
    const step = raw as { name?: unknown; gate?: unknown };
    for (const key of Object.keys(step)) {
      if (key !== 'name' && key !== 'gate')
        fail('UNKNOWN_OPTION', `${path}.${key}`, 'is not a step field; allowed: name, gate');
    }
    const name = checkText(step.name, `${path}.name`, 200);
    if (step.gate === undefined) return { name };
    const g = requireObject(step.gate, `${path}.gate`) as {
      type?: unknown;
      spec?: unknown;
      timeoutMs?: unknown;
    };
    rejectUnknownKeys(g, ['type', 'spec', 'timeoutMs'], `${path}.gate`);
    const type = env.gateTypes.get(String(g.type));
    if (!type) {
      fail(
        'INVALID_OPTION',
        `${path}.gate.type`,
        `no gate type ${describe(g?.type)}; registered: ${[...env.gateTypes.keys()].join(', ')}`,
      );
    }
    // Checked now, so a bad spec fails at creation rather than when the step is reached.
    const spec = withPath(() => validateGateSpec(type, g.spec), `${path}.gate`);
    const timeoutMs =
      g.timeoutMs === undefined ? undefined : checkMs(g.timeoutMs, `${path}.gate.timeoutMs`, true);
    return {
      name,
      gate: { type: type.type, spec, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
    };
  });
}

/**
 * Moves a molecule to its step `cursor`: done past the last step, waiting on a new gate when the
 * step has one, otherwise `whenFree`.
 */
async function enterStep(
  tx: StoreTx,
  env: TownEnv,
  now: number,
  molecule: Molecule,
  cursor: number,
  whenFree: MoleculeStatus,
): Promise<Molecule> {
  const { waitingOn: _waitingOn, releasedBy: _releasedBy, ...base } = molecule;
  if (cursor >= molecule.steps.length) return { ...base, cursor, status: 'done', updatedAt: now };
  const step = molecule.steps[cursor] as MoleculeStep;
  if (!step.gate) return { ...base, cursor, status: whenFree, updatedAt: now };
  const gate = await insertGate(tx, env, now, {
    type: step.gate.type,
    spec: step.gate.spec,
    ...(step.gate.timeoutMs === undefined ? {} : { timeoutMs: step.gate.timeoutMs }),
    waiters: [molecule.id],
  });
  return { ...base, cursor, status: 'waiting', waitingOn: gate.id, updatedAt: now };
}

/** Input of {@link Molecules.create}. */
export interface CreateMoleculeInput {
  /** The workflow's name (its formula), e.g. `deacon-patrol`. */
  name: string;
  steps: ReadonlyArray<{
    name: string;
    gate?: { type: string; spec: unknown; timeoutMs?: number };
  }>;
  /** A rig that exists. */
  rig?: string;
  metadata?: JsonObject;
}

/**
 * Molecules: workflows of ordered steps, run exactly once each. A molecule is dispatched
 * (`ready` → `running`, with a new epoch), and its runner completes steps one by one, each
 * completion recorded with the current epoch and step index. A crash between steps resumes at
 * `cursor`; a duplicate or stale completion is refused with `CONFLICT`. A step with a gate makes
 * the molecule wait until the gate closes, then it is `ready` to be dispatched again.
 */
export class Molecules {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Creates a molecule at step 0: `ready`, or `waiting` when step 0 has a gate. */
  async create(input: CreateMoleculeInput): Promise<Molecule> {
    const env = this.ctx.env;
    const name = checkName(input?.name, 'molecule.name');
    const steps = checkSteps(env, input.steps);
    const metadata = checkJsonObject(input.metadata, 'molecule.metadata');
    return this.ctx.run(async (tx) => {
      if (input.rig !== undefined) await requireRig(tx, checkName(input.rig, 'molecule.rig'));
      const now = this.ctx.now();
      const draft: Molecule = {
        id: this.ctx.env.newId('mol'),
        name,
        steps,
        status: 'ready',
        cursor: 0,
        completed: [],
        epoch: 0,
        ...(input.rig === undefined ? {} : { rig: input.rig }),
        metadata,
        createdAt: now,
        updatedAt: now,
      };
      const molecule = await enterStep(tx, env, now, draft, 0, 'ready');
      await tx.insert(COLLECTION, molecule);
      return molecule;
    });
  }

  /**
   * Claims a `ready` molecule for a runner: `running`, with a new epoch the runner must pass to
   * `completeStep`. Of two dispatchers, one wins; the other gets `CONFLICT`.
   */
  async dispatch(id: string, options: { by: string }): Promise<Molecule> {
    const by = checkName(options?.by, 'options.by');
    return this.ctx.run(async (tx) => {
      const molecule = await load<Molecule>(tx, COLLECTION, 'molecule', id);
      if (molecule.status !== 'ready') {
        throw conflict(`molecule ${id} is ${molecule.status}, not ready; it cannot be dispatched`);
      }
      const now = this.ctx.now();
      const next: Molecule = {
        ...molecule,
        status: 'running',
        epoch: molecule.epoch + 1,
        dispatchedBy: by,
        dispatchedAt: now,
        updatedAt: now,
      };
      await tx.update(COLLECTION, next);
      return next;
    });
  }

  /**
   * Records that step `step` is done. It must be the molecule's current step and `epoch` its
   * current epoch; otherwise `CONFLICT` (a duplicate completion, or a runner that lost its
   * claim). Then the molecule moves on: done after the last step, waiting when the next step has
   * a gate, else still running.
   */
  async completeStep(
    id: string,
    options: { step: number; epoch: number; result?: JsonValue },
  ): Promise<Molecule> {
    const result =
      options.result === undefined ? undefined : toFrozenJson(options.result, 'result');
    return this.ctx.run(async (tx) => {
      const molecule = await this.requireRunning(tx, id, options.epoch, 'complete a step of');
      if (options.step !== molecule.cursor) {
        throw conflict(
          options.step < molecule.cursor
            ? `molecule ${id}: step ${options.step} was already completed; the next step is ${molecule.cursor}`
            : `molecule ${id}: step ${options.step} is not reached yet; the current step is ${molecule.cursor}`,
        );
      }
      const now = this.ctx.now();
      const done: CompletedStep = {
        step: molecule.cursor,
        name: (molecule.steps[molecule.cursor] as MoleculeStep).name,
        at: now,
        ...(result === undefined ? {} : { result }),
      };
      const recorded: Molecule = { ...molecule, completed: [...molecule.completed, done] };
      const next = await enterStep(tx, this.ctx.env, now, recorded, molecule.cursor + 1, 'running');
      await tx.update(COLLECTION, next);
      await onMoleculeChanged(tx, now, id, next.status === 'done');
      return next;
    });
  }

  /** Marks a running molecule failed (at its current step). */
  async fail(id: string, options: { epoch: number; reason: string }): Promise<Molecule> {
    const reason = checkText(options?.reason, 'options.reason', 1_000);
    return this.ctx.run(async (tx) => {
      const molecule = await this.requireRunning(tx, id, options.epoch, 'fail');
      const next: Molecule = {
        ...molecule,
        status: 'failed',
        failure: reason,
        updatedAt: this.ctx.now(),
      };
      await tx.update(COLLECTION, next);
      await onMoleculeChanged(tx, next.updatedAt, id, true);
      return next;
    });
  }

  /** The molecule, or undefined. */
  async get(id: string): Promise<Molecule | undefined> {
    return this.ctx.run((tx) => tx.get<Molecule>(COLLECTION, id));
  }

  /** The molecule; `NOT_FOUND` if there is none. */
  async require(id: string): Promise<Molecule> {
    return this.ctx.run((tx) => load<Molecule>(tx, COLLECTION, 'molecule', id));
  }

  /** Molecules in a status, least recently changed first; of one name when `name` is given. */
  async list(options: {
    status: MoleculeStatus;
    name?: string;
    limit?: number;
  }): Promise<Molecule[]> {
    return this.ctx.run((tx) =>
      options.name === undefined
        ? tx.find<Molecule>(COLLECTION, 'byStatus', {
            prefix: [options.status],
            ...limited(options),
          })
        : tx.find<Molecule>(COLLECTION, 'byName', {
            prefix: [options.name, options.status],
            ...limited(options),
          }),
    );
  }

  /** Molecules ready to dispatch (their gate closed, or never gated), least recently changed first. */
  async ready(options: { limit?: number } = {}): Promise<Molecule[]> {
    return this.list({ status: 'ready', ...options });
  }

  /**
   * Squashes a finished (done or failed) molecule into one digest bead carrying its steps and a
   * summary, and removes the molecule.
   */
  async squash(id: string, options: { summary: string }): Promise<Bead> {
    const summary = checkText(options?.summary, 'options.summary', 10_000);
    const env = this.ctx.env;
    return this.ctx.run(async (tx) => {
      const molecule = await load<Molecule>(tx, COLLECTION, 'molecule', id);
      if (molecule.status !== 'done' && molecule.status !== 'failed') {
        throw new StoreError({
          code: 'INVALID_TRANSITION',
          message: `molecule ${id} is ${molecule.status}; only a done or failed molecule can be squashed`,
        });
      }
      const now = this.ctx.now();
      const status = [...env.terminal][0] as string;
      const digest: Bead = {
        id: env.newId(env.beadPrefix),
        title: `digest: ${molecule.name}`,
        status,
        ...(molecule.rig === undefined ? {} : { rig: molecule.rig }),
        labels: ['digest', `molecule:${molecule.name}`],
        metadata: {
          molecule: molecule.id,
          name: molecule.name,
          outcome: molecule.status,
          summary,
          steps: molecule.completed.map((c) => ({ ...c })) as unknown as JsonValue,
          ...(molecule.failure === undefined ? {} : { failure: molecule.failure }),
          createdAt: molecule.createdAt,
        },
        createdAt: now,
        updatedAt: now,
        closedAt: now,
      };
      await tx.insert('beads', digest);
      await tx.delete(COLLECTION, id);
      return digest;
    });
  }

  /**
   * Deletes the oldest digests of molecules named `name` beyond the newest `keep`, at most
   * `limit` per call (so one call stays a small transaction). A digest a convoy tracks is kept.
   *
   * @returns how many digests were deleted.
   */
  async pruneDigests(name: string, options: { keep: number; limit?: number }): Promise<number> {
    const keep = options?.keep;
    if (!Number.isSafeInteger(keep) || keep < 0)
      fail('INVALID_OPTION', 'options.keep', `must be an integer >= 0; got ${describe(keep)}`);
    const limit = options.limit ?? 1_000;
    if (!Number.isSafeInteger(limit) || limit < 1)
      fail('INVALID_OPTION', 'options.limit', `must be an integer >= 1; got ${describe(limit)}`);
    return this.ctx.run(async (tx) => {
      const stored = await tx.count('beads', 'digests', { prefix: [name] });
      if (stored <= keep) return 0;
      const oldest = await tx.find<Bead>('beads', 'digests', {
        prefix: [name],
        limit: Math.min(stored - keep, limit),
      });
      let deleted = 0;
      for (const digest of oldest) {
        if ((await tx.count('convoys', 'byBead', { prefix: [digest.id] })) > 0) continue;
        if (await tx.delete('beads', digest.id)) deleted++;
      }
      return deleted;
    });
  }

  private async requireRunning(
    tx: StoreTx,
    id: string,
    epoch: number,
    what: string,
  ): Promise<Molecule> {
    const molecule = await load<Molecule>(tx, COLLECTION, 'molecule', id);
    if (molecule.status !== 'running')
      throw conflict(`cannot ${what} molecule ${id}: it is ${molecule.status}`);
    if (epoch !== molecule.epoch) {
      throw conflict(
        `cannot ${what} molecule ${id}: epoch ${epoch} is stale; it was dispatched again (epoch ${molecule.epoch})`,
      );
    }
    return molecule;
  }
}
