import { ConfigError } from '../errors';
import { describe, fail, requireObject } from '../internal/validate';
import { toFrozenJson } from '../store/json';
import type { JsonObject, JsonValue, StoreTx } from '../store/Store';
import { limited } from './Convoys';
import { badTransition, type Ctx, checkMs, checkName, checkText, load, type TownEnv } from './env';
import { validateGateSpec } from './gateTypes';
import { NEVER } from './schema';
import type { Gate, GateEscalation, Molecule } from './types';

const COLLECTION = 'gates';
/** The most distinct escalation reasons a gate keeps (the least recent goes first). */
export const MAX_ESCALATIONS = 20;
/** The largest memo an evaluator may keep on a gate, as JSON bytes. */
export const MAX_MEMO_BYTES = 16_384;

/**
 * Checks what a gate's reschedule stores (`dueAt`: a time or null; `memo`: a JSON object within
 * the size limit) and returns it frozen. The one rule `reschedule` and a patrol checking an
 * evaluator's decision before applying it share. @throws ConfigError saying what is wrong.
 * @internal
 */
export function checkReschedule(
  dueAt: unknown,
  memo: unknown,
): { next: number | null; kept: JsonObject | undefined } {
  const next = dueAt === null ? null : checkMs(dueAt as number, 'dueAt');
  const kept = memo === undefined ? undefined : checkMemo(memo as JsonObject);
  return { next, kept };
}

/**
 * Checks what a gate's close stores (`result`: JSON; `failure`: a text of at most 1,000
 * characters) and returns it frozen: the one rule `close` and a patrol share.
 * @throws ConfigError saying what is wrong. @internal
 */
export function checkClose(
  result: unknown,
  failure: unknown,
): { value: JsonValue | undefined; failure: string | undefined } {
  return {
    value: result === undefined ? undefined : toFrozenJson(result as JsonValue, 'result'),
    failure: failure === undefined ? undefined : checkText(failure, 'failure', 1_000),
  };
}

function checkMemo(memo: JsonObject): JsonObject {
  if (memo === null || typeof memo !== 'object' || Array.isArray(memo)) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'memo',
      message: `memo: must be a JSON object; got ${Array.isArray(memo) ? 'an array' : typeof memo}`,
    });
  }
  const frozen = toFrozenJson(memo, 'memo') as JsonObject;
  const bytes = new TextEncoder().encode(JSON.stringify(frozen)).length;
  if (bytes > MAX_MEMO_BYTES) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'memo',
      message: `memo: ${bytes} bytes as JSON; at most ${MAX_MEMO_BYTES} are kept per gate`,
    });
  }
  return frozen;
}

/** Input of {@link Gates.create}. */
export interface CreateGateInput {
  /** A registered gate type (`timer`, `human`, `gh:run`, or one given in the model's options). */
  type: string;
  /** Checked by the gate type's `validate`. */
  spec: unknown;
  /** An open gate older than this counts as overdue (`timeoutAt`). */
  timeoutMs?: number;
  /** When it is first due; by default the gate type decides (a timer: when it expires). */
  dueAt?: number;
  /** Molecule ids (released when the gate closes) or other names waiting on it. */
  waiters?: readonly string[];
}

/** Creates a gate inside the caller's transaction (molecules create the gates of their steps). */
export async function insertGate(
  tx: StoreTx,
  env: TownEnv,
  now: number,
  given: CreateGateInput,
): Promise<Gate> {
  const input = requireObject(given, 'gate') as unknown as CreateGateInput;
  const gateType = env.gateTypes.get(input.type);
  if (!gateType) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'gate.type',
      message: `gate.type: no gate type ${describe(input.type)}; registered: ${[...env.gateTypes.keys()].join(', ')}`,
    });
  }
  const spec = toFrozenJson(validateGateSpec(gateType, input.spec), 'gate.spec');
  const timeoutMs =
    input.timeoutMs === undefined ? undefined : checkMs(input.timeoutMs, 'gate.timeoutMs', true);
  const dueAt =
    input.dueAt !== undefined
      ? checkMs(input.dueAt, 'gate.dueAt')
      : gateType.firstDueAt
        ? gateType.firstDueAt(spec, now)
        : now;
  if (input.waiters !== undefined && !Array.isArray(input.waiters))
    fail(
      'INVALID_OPTION',
      'gate.waiters',
      `must be an array of names (molecule ids or others waiting); got ${describe(input.waiters)}`,
    );
  const waiters = (input.waiters ?? []).map((w, i) => checkName(w, `gate.waiters[${i}]`));
  const gate: Gate = {
    id: env.newId('gt'),
    type: gateType.type,
    spec,
    status: 'open',
    createdAt: now,
    ...(dueAt === undefined ? {} : { dueAt }),
    ...(timeoutMs === undefined ? {} : { timeoutAt: now + timeoutMs }),
    waiters,
    escalations: [],
  };
  await tx.insert(COLLECTION, gate);
  return gate;
}

/**
 * Gates: waits on external conditions. A gate is `open` until closed with a result, once.
 * Evaluation is driven by `dueAt` (when to look next) and `timeoutAt` (when an open gate is
 * overdue); both are absolute times, so they keep their meaning across restarts. Escalations are
 * recorded on the gate, a repeat of the same reason counted rather than added.
 */
export class Gates {
  /** @internal */
  constructor(private readonly ctx: Ctx) {}

  /** Creates an open gate. */
  async create(input: CreateGateInput): Promise<Gate> {
    return this.ctx.run((tx) => insertGate(tx, this.ctx.env, this.ctx.now(), input));
  }

  /** The gate, or undefined. */
  async get(id: string): Promise<Gate | undefined> {
    return this.ctx.run((tx) => tx.get<Gate>(COLLECTION, id));
  }

  /** The gate; `NOT_FOUND` if there is none. */
  async require(id: string): Promise<Gate> {
    return this.ctx.run((tx) => load<Gate>(tx, COLLECTION, 'gate', id));
  }

  /**
   * Open gates due at `now` (default: the clock's now), earliest first, optionally of one type.
   * This is what a patrol evaluates; its cost grows with the gates due, not the gates stored.
   */
  async due(options: { now?: number; type?: string; limit?: number } = {}): Promise<Gate[]> {
    const now = options.now ?? this.ctx.now();
    return this.ctx.run((tx) =>
      options.type === undefined
        ? tx.find<Gate>(COLLECTION, 'openDue', { lte: [now], ...limited(options) })
        : tx.find<Gate>(COLLECTION, 'openByType', {
            prefix: [options.type],
            // Gates never due sit at NEVER in this index; stop below it whatever `now` is.
            lte: [Math.min(now, NEVER - 1)],
            ...limited(options),
          }),
    );
  }

  /** Open gates (of one type: by due time; of any type: oldest first). */
  async open(options: { type?: string; limit?: number } = {}): Promise<Gate[]> {
    return this.ctx.run((tx) =>
      options.type === undefined
        ? tx.find<Gate>(COLLECTION, 'byStatus', { prefix: ['open'], ...limited(options) })
        : tx.find<Gate>(COLLECTION, 'openByType', { prefix: [options.type], ...limited(options) }),
    );
  }

  /** Open gates past their `timeoutAt` at `now`, most overdue first. */
  async overdue(options: { now?: number; limit?: number } = {}): Promise<Gate[]> {
    const now = options.now ?? this.ctx.now();
    return this.ctx.run((tx) =>
      tx.find<Gate>(COLLECTION, 'openTimeout', { lte: [now], ...limited(options) }),
    );
  }

  /**
   * Records an evaluation that left the gate open and sets when it is next due (`null`: only on
   * demand). `memo` (the evaluator's state, at most {@link MAX_MEMO_BYTES} as JSON) replaces the
   * stored one; absent, the stored memo stays.
   */
  async reschedule(id: string, dueAt: number | null, memo?: JsonObject): Promise<Gate> {
    const { next, kept } = checkReschedule(dueAt, memo);
    return this.ctx.run(async (tx) => {
      const gate = await this.requireOpen(tx, id, 'reschedule');
      const { dueAt: _dueAt, ...rest } = gate;
      const updated: Gate = {
        ...rest,
        ...(next === null ? {} : { dueAt: next }),
        ...(kept === undefined ? {} : { memo: kept }),
        lastEvaluatedAt: this.ctx.now(),
      };
      await tx.update(COLLECTION, updated);
      return updated;
    });
  }

  /**
   * Closes an open gate with its result, in one transaction with what follows from it: the
   * molecules waiting on it become `ready`, or, when `failure` says why the gate failed (a failed
   * CI run, a rejection), they become `failed` with that reason. Closing a closed gate fails with
   * `INVALID_TRANSITION`: a gate closes once.
   */
  async close(
    id: string,
    result?: JsonValue,
    options: { failure?: string } = {},
  ): Promise<{ gate: Gate; released: Molecule[] }> {
    const { value, failure } = checkClose(result, options.failure);
    return this.ctx.run(async (tx) => {
      const gate = await this.requireOpen(tx, id, 'close');
      const now = this.ctx.now();
      const { dueAt: _dueAt, ...rest } = gate;
      const closed: Gate = {
        ...rest,
        status: 'closed',
        closedAt: now,
        lastEvaluatedAt: now,
        ...(value === undefined ? {} : { result: value }),
        ...(failure === undefined ? {} : { failure }),
      };
      await tx.update(COLLECTION, closed);
      const released: Molecule[] = [];
      for (const molecule of await tx.find<Molecule>('molecules', 'byGate', { prefix: [id] })) {
        if (molecule.status !== 'waiting') continue;
        const { waitingOn: _waitingOn, ...m } = molecule;
        const next: Molecule =
          failure === undefined
            ? { ...m, status: 'ready', releasedBy: id, updatedAt: now }
            : {
                ...m,
                status: 'failed',
                failure: `gate ${id} (${gate.type}) failed: ${failure}`,
                updatedAt: now,
              };
        await tx.update('molecules', next);
        released.push(next);
      }
      return { gate: closed, released };
    });
  }

  /**
   * Records an escalation on an open gate (it stays open). Each reason is recorded once: a
   * reason already on the gate only bumps its count and `lastAt`. One incident, one record. At
   * most {@link MAX_ESCALATIONS} reasons are kept: past that, the least recent one is dropped.
   *
   * @returns the gate, and whether this reason is new on it.
   */
  async escalate(
    id: string,
    reason: string,
  ): Promise<{ gate: Gate; escalation: GateEscalation; isNew: boolean }> {
    const why = checkText(reason, 'reason', 1_000);
    return this.ctx.run(async (tx) => {
      const gate = await this.requireOpen(tx, id, 'escalate');
      const now = this.ctx.now();
      // One entry per reason: a reason already recorded (not only the last) is counted, so the
      // list stays bounded however often conditions alternate. Past MAX_ESCALATIONS distinct
      // reasons (an evaluator whose reasons carry a time, say), the least recent one goes.
      const index = gate.escalations.findIndex((e) => e.reason === why);
      const isNew = index < 0;
      const before = isNew ? undefined : (gate.escalations[index] as GateEscalation);
      const escalation: GateEscalation = before
        ? { ...before, lastAt: now, count: before.count + 1 }
        : { reason: why, firstAt: now, lastAt: now, count: 1 };
      let escalations = isNew
        ? [...gate.escalations, escalation]
        : gate.escalations.map((e, i) => (i === index ? escalation : e));
      if (escalations.length > MAX_ESCALATIONS) {
        const oldest = escalations.reduce((a, e) => (e.lastAt < a.lastAt ? e : a));
        escalations = escalations.filter((e) => e !== oldest);
      }
      const updated: Gate = { ...gate, escalations };
      await tx.update(COLLECTION, updated);
      return { gate: updated, escalation, isNew };
    });
  }

  /** Adds a waiter to an open gate (no-op if present). */
  async addWaiter(id: string, waiter: string): Promise<Gate> {
    const name = checkName(waiter, 'waiter');
    return this.ctx.run(async (tx) => {
      const gate = await this.requireOpen(tx, id, 'add a waiter to');
      if (gate.waiters.includes(name)) return gate;
      const updated: Gate = { ...gate, waiters: [...gate.waiters, name] };
      await tx.update(COLLECTION, updated);
      return updated;
    });
  }

  private async requireOpen(tx: StoreTx, id: string, what: string): Promise<Gate> {
    const gate = await load<Gate>(tx, COLLECTION, 'gate', id);
    if (gate.status !== 'open') {
      throw badTransition(`cannot ${what} gate ${id}: it closed at ${gate.closedAt}`);
    }
    return gate;
  }
}
