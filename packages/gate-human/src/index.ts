import { check, GateError, StoreError } from '@belfry/core';
import {
  decideEach,
  type Gate,
  type GateDecision,
  type GateEvaluator,
  type GateHost,
  gateTypeName,
  humanGateType,
  type JsonObject,
} from '@belfry/core/gate';

/** Options of {@link humanGate}. */
export interface HumanGateOptions {
  /**
   * The gate type it evaluates.
   * @defaultValue `'human'`
   */
  type?: string;
}

/** Who decides, and why: the second argument of `approve` and `reject`. */
export interface HumanDecisionInput {
  /** Who decided: 1 to 100 characters; must be among the gate's `approvers` when it lists some. */
  by: string;
  /** Why, at most 2,000 characters. */
  comment?: string;
}

/** The result a human gate closes with. */
export interface HumanGateResult extends JsonObject {
  decision: 'approved' | 'rejected';
  by: string;
  /** When (the town's clock, ms). */
  at: number;
  comment?: string;
}

/** The `human` evaluator, with the two things a person can do to its gates. */
export interface HumanGateEvaluator extends GateEvaluator {
  /**
   * Approves an open human gate: it closes with `{ decision: 'approved', by, at, comment }`, and
   * the molecules waiting on it move on.
   *
   * @throws GateError `NOT_ATTACHED` (no started town has this evaluator), `NOT_FOUND`,
   * `WRONG_TYPE`, `CLOSED` (decided already: by whom, when), `NOT_ALLOWED` (not an approver);
   * ConfigError for a bad `by` or `comment`.
   */
  approve(gateId: string, input: HumanDecisionInput): Promise<Gate>;
  /**
   * Rejects an open human gate: it closes as failed with `{ decision: 'rejected', by, at,
   * comment }`, and the molecules waiting on it fail (`rejected by <by>: <comment>`).
   *
   * @throws the same errors as {@link HumanGateEvaluator.approve}.
   */
  reject(gateId: string, input: HumanDecisionInput): Promise<Gate>;
}

/** When a human gate's deadline passes, or a reason why its stored record is unusable. */
function deadlineOf(gate: Gate): number | undefined | string {
  const ms = gate.spec.deadlineMs;
  if (ms === undefined) return undefined;
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms <= 0)
    return `its stored spec.deadlineMs is ${JSON.stringify(ms)}, not a positive integer of milliseconds`;
  return gate.createdAt + ms;
}

function checkDecision(input: unknown): HumanDecisionInput {
  const o = check.object(input, 'input');
  check.keys(o, ['by', 'comment'], 'input');
  if (typeof o.by !== 'string' || o.by.trim() === '' || o.by.length > 100)
    check.fail(
      'INVALID_OPTION',
      'input.by',
      `must say who decides: 1 to 100 characters; got ${check.describe(o.by)}`,
    );
  if (o.comment !== undefined && (typeof o.comment !== 'string' || o.comment.length > 2_000))
    check.fail(
      'INVALID_OPTION',
      'input.comment',
      `must be a string of at most 2,000 characters; got ${check.describe(o.comment)}`,
    );
  return o.comment === undefined ? { by: o.by } : { by: o.by, comment: o.comment as string };
}

function describeClosed(gate: Gate): string {
  const r = gate.result as Partial<HumanGateResult> | undefined;
  const who = r && typeof r.by === 'string' ? ` (${r.decision ?? 'closed'} by ${r.by})` : '';
  return `gate ${gate.id} was closed already at ${new Date(gate.closedAt ?? 0).toISOString()}${who}; a gate closes once`;
}

/**
 * What a person's decision closes a human gate with: the result (who, when, why) and, for a
 * rejection, the failure its molecules fail with. It checks the gate may be decided this way: by
 * type, open, and `by` among its approvers when it lists some. The evaluator's `approve` and
 * `reject` use it, and so does anything that closes the gate in the store itself (the `belfry`
 * command, while no daemon runs).
 *
 * @param at - when (clock ms).
 * @param type - the human gate type's name. @defaultValue `'human'`
 * @throws GateError `WRONG_TYPE`, `CLOSED`, `NOT_ALLOWED`; ConfigError for a bad `by` or `comment`.
 * @example
 * ```ts
 * const outcome = humanOutcome(gate, 'approved', { by: 'ada' }, Date.now());
 * await model.gates.close(gate.id, outcome.result, outcome);
 * ```
 */
export function humanOutcome(
  gate: Gate,
  decision: HumanGateResult['decision'],
  input: HumanDecisionInput,
  at: number,
  type: string = humanGateType.type,
): { result: HumanGateResult; failure?: string } {
  const { by, comment } = checkDecision(input);
  if (gate.type !== type)
    throw new GateError({
      code: 'WRONG_TYPE',
      message: `gate ${gate.id} is a ${gate.type} gate; only ${type} gates are decided by a person`,
    });
  if (gate.status !== 'open')
    throw new GateError({ code: 'CLOSED', message: describeClosed(gate) });
  const approvers = gate.spec.approvers;
  if (Array.isArray(approvers) && !approvers.includes(by))
    throw new GateError({
      code: 'NOT_ALLOWED',
      message: `${by} may not decide gate ${gate.id}; its approvers are ${approvers.join(', ')}`,
    });
  const result: HumanGateResult = {
    decision,
    by,
    at,
    ...(comment === undefined ? {} : { comment }),
  };
  return decision === 'rejected'
    ? { result, failure: `rejected by ${by}${comment ? `: ${comment}` : ''}` }
    : { result };
}

/**
 * The `human` gate evaluator. A human gate (`{ prompt?, approvers?, deadlineMs? }`) stays open
 * until a person calls {@link HumanGateEvaluator.approve} or {@link HumanGateEvaluator.reject};
 * the evaluator never approves by itself. With `deadlineMs`, once that long has passed since the
 * gate was created with no decision, the gate is escalated (one report) and stays open: a late
 * decision still counts.
 *
 * Approvals act through the towns the evaluator is given to (it attaches when a town starts and
 * detaches when it stops), and take effect at once: the gate closes in one store transaction
 * with its molecules, and the town is woken.
 *
 * @example
 * ```ts
 * import { humanGate } from '@belfry/gate-human';
 *
 * const human = humanGate();
 * const town = await createTown({ driver, gates: [human] }).start();
 * const gate = await town.gates.create({ type: 'human', spec: { prompt: 'ship 1.4?', approvers: ['ada'] } });
 * await human.approve(gate.id, { by: 'ada', comment: 'changelog reviewed' });
 * ```
 */
export function humanGate(options: HumanGateOptions = {}): HumanGateEvaluator {
  const o = check.object(options, 'options');
  check.keys(o, ['type'], 'options');
  const type = gateTypeName(o.type, humanGateType.type);
  const hosts = new Set<GateHost>();

  /** The host holding the gate, and the gate; or the error saying why there is none. */
  async function find(gateId: string): Promise<{ host: GateHost; gate: Gate }> {
    if (typeof gateId !== 'string' || gateId === '')
      check.fail('INVALID_OPTION', 'gateId', `must be a gate id; got ${check.describe(gateId)}`);
    if (hosts.size === 0)
      throw new GateError({
        code: 'NOT_ATTACHED',
        message: `cannot decide gate ${gateId}: this ${type} evaluator is not part of a started town (give it to createTown and start the town)`,
      });
    for (const host of hosts) {
      const gate = await host.get(gateId);
      if (gate) return { host, gate };
    }
    throw new GateError({ code: 'NOT_FOUND', message: `no gate ${gateId} in the town` });
  }

  async function decide(
    decision: HumanGateResult['decision'],
    gateId: string,
    input: HumanDecisionInput,
  ): Promise<Gate> {
    const { host, gate } = await find(gateId);
    const outcome = humanOutcome(gate, decision, input, host.clock.now(), type);
    try {
      return await host.close(gateId, outcome);
    } catch (error) {
      // Two people deciding at once: the store lets one close it; the other hears who won.
      if (error instanceof StoreError && error.code === 'INVALID_TRANSITION') {
        const now = await host.get(gateId);
        if (now && now.status !== 'open')
          throw new GateError({ code: 'CLOSED', message: describeClosed(now), cause: error });
      }
      throw error;
    }
  }

  return {
    type,
    validate: (spec) => humanGateType.validate(spec),
    firstDueAt: (spec, createdAt) => humanGateType.firstDueAt?.(spec, createdAt),
    attach(host) {
      hosts.add(host);
      return () => {
        hosts.delete(host);
      };
    },
    approve: (gateId, input) => decide('approved', gateId, input),
    reject: (gateId, input) => decide('rejected', gateId, input),
    evaluate: async (gates, context) =>
      decideEach(gates, context, (gate): GateDecision => {
        const deadline = deadlineOf(gate);
        if (typeof deadline === 'string') throw new Error(deadline);
        // Without a deadline nothing changes by itself: look again only when asked.
        if (deadline === undefined) return { kind: 'pending', nextCheckAt: null };
        if (deadline > context.now) return { kind: 'pending', nextCheckAt: deadline };
        const prompt = typeof gate.spec.prompt === 'string' ? ` (${gate.spec.prompt})` : '';
        return {
          kind: 'escalate',
          reason: `no decision by its deadline, ${new Date(deadline).toISOString()}${prompt}; it stays open for a person to approve or reject`,
          nextCheckAt: null,
        };
      }),
  };
}
