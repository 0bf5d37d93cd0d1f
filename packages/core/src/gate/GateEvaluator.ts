import type { Clock } from '../Clock';
import type { GateType } from '../model/gateTypes';
import type { Gate } from '../model/types';
import type { JsonObject, JsonValue } from '../store/Store';

/**
 * What an evaluator decides for one gate.
 *
 * `nextCheckAt` says when to look again: a clock time, `null` for "only on demand" (nothing will
 * change by itself, as a human gate without a deadline), or absent for the Deacon's gate
 * interval. `memo` is stored on the gate (replacing the previous one) and handed back as
 * `gate.memo` on the next evaluation, after a restart too: a pinned run id, an ETag, a count.
 */
export type GateDecision =
  /** Not yet. */
  | {
      readonly kind: 'pending';
      readonly nextCheckAt?: number | null;
      readonly memo?: JsonObject;
    }
  /**
   * The wait is over: close the gate with this result. Without `failure` the waiting molecules
   * are released; with it (why the gate failed: a failed CI run, a rejection) they fail.
   */
  | { readonly kind: 'close'; readonly result?: JsonValue; readonly failure?: string }
  /** Something needs a person: record the reason, report it once, keep the gate open. */
  | {
      readonly kind: 'escalate';
      readonly reason: string;
      readonly nextCheckAt?: number | null;
      readonly memo?: JsonObject;
    };

/** What an evaluation receives besides the gates. */
export interface GateEvaluationContext {
  /** The time of this evaluation (clock ms). */
  readonly now: number;
  readonly clock: Clock;
  /** Aborted when the Deacon's time limit for this call runs out; pass it to I/O. */
  readonly signal: AbortSignal;
}

/**
 * Evaluates the open gates of one type, in batches. It is a {@link GateType} (type, spec
 * validation, first due time) plus `evaluate`.
 *
 * The Deacon calls `evaluate` with every due gate of the type at once, bounded by a timeout and
 * an abort signal. Gates missing from the returned map stay pending. An evaluator that throws,
 * rejects or hangs affects only its own gates: they stay open, and one escalation per incident
 * is reported once.
 *
 * @example
 * ```ts
 * import { existsSync } from 'node:fs';
 * import { ConfigError } from '@belfry/core';
 *
 * const fileGate: GateEvaluator = {
 *   type: 'file',
 *   validate(spec) {
 *     const path = (spec as { path?: unknown } | null)?.path;
 *     if (typeof path !== 'string' || path === '')
 *       throw new ConfigError({ code: 'INVALID_OPTION', path: 'spec.path', message: 'spec.path must be a non-empty string' });
 *     return { path };
 *   },
 *   async evaluate(gates) {
 *     const decisions = new Map<string, GateDecision>();
 *     for (const g of gates)
 *       decisions.set(g.id, existsSync(g.spec.path as string) ? { kind: 'close' } : { kind: 'pending' });
 *     return decisions;
 *   },
 * };
 * ```
 */
export interface GateEvaluator extends GateType {
  /**
   * Called by each town the evaluator is given to, with what the evaluator may do outside an
   * evaluation (close a gate when a person approves it). Returns the detach function the town
   * calls when it stops.
   */
  attach?(host: GateHost): () => void;
  evaluate(
    gates: readonly Gate[],
    context: GateEvaluationContext,
  ): Promise<ReadonlyMap<string, GateDecision>>;
}

/** What a town offers the evaluators given to it, between evaluations. */
export interface GateHost {
  /** The town's clock. */
  readonly clock: Clock;
  /** The gate, or undefined if this town's store has none with that id. */
  get(id: string): Promise<Gate | undefined>;
  /**
   * Closes an open gate as its evaluator would (releasing or failing its molecules, resolving its
   * incidents, emitting `gate.closed`) and wakes the town.
   *
   * @throws StoreError `INVALID_TRANSITION` when the gate is closed already.
   */
  close(id: string, outcome: { result?: JsonValue; failure?: string }): Promise<Gate>;
}

/**
 * Whether `value` is a well-formed {@link GateDecision}: a known kind, an escalation with a
 * reason, a `nextCheckAt` that is a time or null, a `memo` that is an object, a `failure` that is
 * a non-empty string. The Deacon escalates a gate whose evaluator answered anything else.
 */
export function isGateDecision(value: unknown): value is GateDecision {
  const d = value as Record<string, unknown> | undefined;
  if (d === undefined || d === null || typeof d !== 'object') return false;
  const when = d.nextCheckAt;
  const whenOk = when === undefined || when === null || Number.isFinite(when);
  const memoOk =
    d.memo === undefined ||
    (typeof d.memo === 'object' && d.memo !== null && !Array.isArray(d.memo));
  if (d.kind === 'pending') return whenOk && memoOk;
  if (d.kind === 'close')
    return d.failure === undefined || (typeof d.failure === 'string' && d.failure.length > 0);
  return (
    d.kind === 'escalate' && typeof d.reason === 'string' && d.reason.length > 0 && whenOk && memoOk
  );
}

/**
 * The shape of most evaluators that need no I/O: decides each gate on its own with `decide`,
 * after checking the signal (an aborted evaluation rejects). A gate whose `decide` throws (a
 * damaged record, say) is escalated with the error's message, alone: the rest of the batch is
 * decided as usual.
 *
 * @example
 * ```ts
 * const fileGate: GateEvaluator = {
 *   type: 'file',
 *   validate: (spec) => ({ path: String((spec as { path: string }).path) }),
 *   evaluate: async (gates, context) =>
 *     decideEach(gates, context, (gate) =>
 *       existsSync(gate.spec.path as string) ? { kind: 'close' } : { kind: 'pending' },
 *     ),
 * };
 * ```
 */
export function decideEach(
  gates: readonly Gate[],
  context: Pick<GateEvaluationContext, 'signal'>,
  decide: (gate: Gate) => GateDecision,
): Map<string, GateDecision> {
  context.signal.throwIfAborted();
  const decisions = new Map<string, GateDecision>();
  for (const gate of gates) {
    try {
      decisions.set(gate.id, decide(gate));
    } catch (error) {
      decisions.set(gate.id, {
        kind: 'escalate',
        reason: `its evaluator could not decide it: ${error instanceof Error ? error.message : String(error)}`,
        nextCheckAt: null,
      });
    }
  }
  return decisions;
}
