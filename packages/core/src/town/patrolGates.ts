import { GateError, StoreError } from '../errors';
import { type GateDecision, isGateDecision } from '../gate/GateEvaluator';
import { checkClose, checkReschedule } from '../model/Gates';
import type { Gate } from '../model/types';
import type { JsonObject, JsonValue } from '../store/Store';
import { clip, describeValue, errorMessage, withDeadline } from './boundedWait';
import type { TownContext } from './context';
import { incidentKey } from './incidents';

/*
 * The patrol's `gates` step: due gates evaluated in batches per type, each evaluator bounded;
 * decisions applied; overdue gates escalated once. `closeGate` is also the facade's way to close
 * a gate by hand.
 */

/** Bounds an evaluator call: aborts `abort` and rejects with a `TIMEOUT` GateError after `ms`. */
function withTimeout<T>(
  ctx: TownContext,
  work: Promise<T>,
  ms: number,
  abort: AbortController,
  what: string,
): Promise<T> {
  return withDeadline(
    ctx.clock,
    work,
    ms,
    abort,
    () => new GateError({ code: 'TIMEOUT', message: `${what} did not answer within ${ms} ms` }),
  );
}

async function escalateGate(ctx: TownContext, gate: Gate, said: string): Promise<boolean> {
  const reason = clip(said, 1_000);
  const { isNew } = await ctx.model.gates.escalate(gate.id, reason);
  if (isNew) {
    ctx.emit({ type: 'gate.escalated', gateId: gate.id, gateType: gate.type, reason });
  }
  // One incident per gate while its evaluator keeps escalating, whatever the wording of each
  // reason (it may carry an attempt number or a time); the report shows the latest.
  const { created } = await ctx.report({
    incidentKey: incidentKey({ kind: 'gate-escalated', gateId: gate.id }),
    severity: 'medium',
    title: `gate ${gate.id} (${gate.type}): ${reason}`,
    details: { gateId: gate.id, type: gate.type, waiters: [...gate.waiters] },
    source: 'deacon',
  });
  return created;
}

/** Resolves the incidents of a gate that closed. */
export async function resolveGateIncidents(ctx: TownContext, gateId: string): Promise<void> {
  await ctx.model.reports.resolve(incidentKey({ kind: 'gate-escalated', gateId }));
  await ctx.model.reports.resolve(incidentKey({ kind: 'gate-timeout', gateId }));
}

/** Reschedules a gate unless it closed meanwhile (by hand, during its evaluation). */
async function rescheduleIfOpen(ctx: TownContext, id: string, at: number): Promise<void> {
  try {
    await ctx.model.gates.reschedule(id, at);
  } catch (error) {
    if (!(error instanceof StoreError && error.code === 'INVALID_TRANSITION')) throw error;
    if ((await ctx.model.gates.get(id))?.status === 'open') throw error;
  }
}

/** Closes a gate as its evaluator (or a person, through a GateHost) decided, with what follows. */
export async function closeGate(
  ctx: TownContext,
  gate: Pick<Gate, 'id' | 'type'>,
  outcome: { result?: JsonValue; failure?: string },
): Promise<Gate> {
  const closed = await ctx.model.gates.close(
    gate.id,
    outcome.result,
    outcome.failure === undefined ? {} : { failure: outcome.failure },
  );
  ctx.emit({
    type: 'gate.closed',
    gateId: gate.id,
    gateType: gate.type,
    ...(outcome.failure === undefined ? {} : { failure: closed.gate.failure as string }),
  });
  await resolveGateIncidents(ctx, gate.id);
  return closed.gate;
}

/**
 * Keeps an open gate open until `nextCheckAt` (null: on demand; absent: the gate interval) with
 * the evaluator's memo (checked as storable before: see storableDecision).
 */
async function keepOpen(
  ctx: TownContext,
  gate: Gate,
  decision: { nextCheckAt?: number | null; memo?: JsonObject },
  next: number,
): Promise<void> {
  // The decision was checked as storable (storableDecision): its memo and time fit.
  const at = decision.nextCheckAt === undefined ? next : decision.nextCheckAt;
  await ctx.model.gates.reschedule(gate.id, at, decision.memo);
}

/**
 * Applies one evaluator decision to a gate. The gate may have been closed by hand while its
 * evaluator ran: then there is nothing left to apply, and the patrol carries on.
 */
async function applyDecision(
  ctx: TownContext,
  gate: Gate,
  decision: GateDecision | undefined,
  next: number,
): Promise<'closed' | 'escalated' | 'pending' | 'gone'> {
  try {
    if (decision === undefined || !isGateDecision(decision)) {
      const escalated = await escalateGate(
        ctx,
        gate,
        `its evaluator answered ${describeValue(decision)}, not a decision`,
      );
      await ctx.model.gates.reschedule(gate.id, next);
      return escalated ? 'escalated' : 'pending';
    }
    if (decision.kind === 'close') {
      await closeGate(ctx, gate, decision);
      return 'closed';
    }
    if (decision.kind === 'escalate') {
      const escalated = await escalateGate(ctx, gate, decision.reason);
      await keepOpen(ctx, gate, decision, next);
      return escalated ? 'escalated' : 'pending';
    }
    // Pending again: an escalation the evaluator made is over (a re-run, say).
    await ctx.model.reports.resolve(incidentKey({ kind: 'gate-escalated', gateId: gate.id }));
    await keepOpen(ctx, gate, decision, next);
    return 'pending';
  } catch (error) {
    if (error instanceof StoreError && error.code === 'INVALID_TRANSITION') {
      const now = await ctx.model.gates.get(gate.id);
      if (now && now.status !== 'open') return 'gone';
    }
    throw error;
  }
}

/**
 * The `gates` step: the due gates, batched by type, each batch through its evaluator within
 * `gateTimeoutMs`; each decision applied. An evaluator that fails affects only its own gates
 * (reported per type and code). Open gates past their timeout are escalated once.
 */
/** The incident code of an evaluator whose decisions cannot be stored. */
const UNSTORABLE = 'UNSTORABLE_DECISION';

/**
 * An evaluator's answer for one gate as it will be stored: a decision whose parts pass the
 * checks the model applies when it stores them (`checkClose`, `checkReschedule`), copied and
 * frozen, so nothing the evaluator holds (a getter, a Map it changes later) is read again.
 *
 * @returns the decision, or undefined when the answer is no decision at all.
 * @throws whatever reading or checking it threw (a BigInt or a cycle in a result, a function in
 *   a memo, a fractional or negative `nextCheckAt`, a `failure` over 1,000 characters, a getter
 *   that throws): the answer cannot be stored.
 */
function storableDecision(answer: unknown): GateDecision | undefined {
  if (!isGateDecision(answer)) return undefined;
  const d = answer as GateDecision & {
    result?: unknown;
    failure?: unknown;
    reason?: unknown;
    nextCheckAt?: unknown;
    memo?: unknown;
  };
  const kind = d.kind;
  if (kind === 'close') {
    const { value, failure } = checkClose(d.result, d.failure);
    return {
      kind,
      ...(value === undefined ? {} : { result: value }),
      ...(failure === undefined ? {} : { failure }),
    } as GateDecision;
  }
  const nextCheckAt = d.nextCheckAt;
  const { next, kept } = checkReschedule(nextCheckAt === undefined ? null : nextCheckAt, d.memo);
  const timing = nextCheckAt === undefined ? {} : { nextCheckAt: next as number | null };
  const memo = kept === undefined ? {} : { memo: kept };
  if (kind === 'escalate') {
    const reason = d.reason;
    if (typeof reason !== 'string') throw new Error(`its reason is ${typeof reason}, not text`);
    return { kind, reason, ...timing, ...memo } as GateDecision;
  }
  return { kind: 'pending', ...timing, ...memo } as GateDecision;
}

/**
 * An evaluator's decision for a gate that cannot be stored: that gate's escalation (it stays
 * open and is looked at again later), reported once per evaluator while it lasts.
 */
async function escalateUnstorable(
  ctx: TownContext,
  gate: Gate,
  problem: string,
  next: number,
): Promise<void> {
  const reason = clip(`its evaluator's decision cannot be stored: ${problem}`, 1_000);
  const { isNew } = await ctx.model.gates.escalate(gate.id, reason);
  if (isNew) ctx.emit({ type: 'gate.escalated', gateId: gate.id, gateType: gate.type, reason });
  await ctx.report({
    incidentKey: incidentKey({ kind: 'gate-evaluator', type: gate.type, code: UNSTORABLE }),
    severity: 'medium',
    title: `the ${gate.type} gate evaluator answered a decision that cannot be stored (gate ${gate.id}: ${problem})`,
    details: { type: gate.type, gateId: gate.id },
    source: 'deacon',
  });
  await rescheduleIfOpen(ctx, gate.id, next);
}

export async function evaluateGates(ctx: TownContext): Promise<JsonObject> {
  const now = ctx.clock.now();
  const next = now + ctx.timings.gateIntervalMs;
  const byType = new Map<string, Gate[]>();
  for (const gate of await ctx.model.gates.due({ now })) {
    const list = byType.get(gate.type) ?? [];
    list.push(gate);
    byType.set(gate.type, list);
  }
  let evaluated = 0;
  let closed = 0;
  let escalated = 0;
  const failed: string[] = [];
  for (const [type, gates] of byType) {
    evaluated += gates.length;
    const evaluator = ctx.evaluators.get(type);
    let decisions: ReadonlyMap<string, GateDecision>;
    try {
      if (!evaluator)
        throw new GateError({
          code: 'NO_EVALUATOR',
          message: `no gate evaluator is registered for type ${type}`,
        });
      const abort = new AbortController();
      decisions = await withTimeout(
        ctx,
        Promise.resolve().then(() =>
          evaluator.evaluate(gates, { now, clock: ctx.clock, signal: abort.signal }),
        ),
        ctx.timings.gateTimeoutMs,
        abort,
        `the ${type} gate evaluator`,
      );
      if (!(decisions instanceof Map))
        throw new GateError({
          code: 'EVALUATOR_FAILED',
          message: `the ${type} gate evaluator did not return a Map of decisions`,
        });
      // It answers again: its earlier outage is over, and a later one is a new incident.
      for (const code of ['TIMEOUT', 'EVALUATOR_FAILED', 'NO_EVALUATOR']) {
        await ctx.model.reports.resolve(incidentKey({ kind: 'gate-evaluator', type, code }));
      }
    } catch (cause) {
      // Only this evaluator's gates are affected: they stay open and are looked at again later.
      const error =
        cause instanceof GateError
          ? cause
          : new GateError({
              code: 'EVALUATOR_FAILED',
              message: `the ${type} gate evaluator failed: ${errorMessage(cause)}`,
              cause,
            });
      failed.push(type);
      ctx.emit({ type: 'gate.evaluatorFailed', gateType: type, error, gates: gates.length });
      await ctx.report({
        incidentKey: incidentKey({ kind: 'gate-evaluator', type, code: error.code }),
        severity: 'medium',
        title: error.message,
        details: { type, gates: gates.length },
        source: 'deacon',
      });
      for (const gate of gates) await rescheduleIfOpen(ctx, gate.id, next);
      continue;
    }
    let unstorable = 0;
    for (const gate of gates) {
      let decision: GateDecision | undefined;
      try {
        decision = storableDecision(
          decisions.has(gate.id) ? decisions.get(gate.id) : { kind: 'pending' },
        );
      } catch (error) {
        // Only this gate: the rest of the batch and the patrol go on.
        unstorable++;
        await escalateUnstorable(ctx, gate, errorMessage(error), next);
        escalated++;
        continue;
      }
      const outcome = await applyDecision(ctx, gate, decision, next);
      if (outcome === 'closed') closed++;
      else if (outcome === 'escalated') escalated++;
    }
    if (unstorable === 0)
      await ctx.model.reports.resolve(
        incidentKey({ kind: 'gate-evaluator', type, code: UNSTORABLE }),
      );
  }
  // Open gates past their timeout with no result are escalated once (and stay open).
  let overdue = 0;
  for (const gate of await ctx.model.gates.overdue({ now })) {
    const reason = 'past its timeout with no result';
    // The open incident (not the gate's bounded list of reasons) says it was escalated already.
    if (await ctx.model.reports.byIncident(incidentKey({ kind: 'gate-timeout', gateId: gate.id })))
      continue;
    overdue++;
    await ctx.model.gates.escalate(gate.id, reason);
    ctx.emit({ type: 'gate.escalated', gateId: gate.id, gateType: gate.type, reason });
    await ctx.report({
      incidentKey: incidentKey({ kind: 'gate-timeout', gateId: gate.id }),
      severity: 'medium',
      title: `gate ${gate.id} (${gate.type}) is past its timeout with no result`,
      details: { gateId: gate.id, type: gate.type, timeoutAt: gate.timeoutAt ?? null },
      source: 'deacon',
    });
  }
  return { evaluated, closed, escalated, overdue, failed };
}
