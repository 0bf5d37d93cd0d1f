import type { Clock } from '../Clock';
import type { GateType } from '../model/gateTypes';
import type { Gate } from '../model/types';
import type { JsonValue } from '../store/Store';

/** What an evaluator decides for one gate. */
export type GateDecision =
  /** Not yet; look again at `nextCheckAt` (default: the Deacon's gate interval from now). */
  | { readonly kind: 'pending'; readonly nextCheckAt?: number }
  /** The condition holds: close the gate with this result (waiting molecules are released). */
  | { readonly kind: 'close'; readonly result?: JsonValue }
  /** Something needs a person: record the reason, report it once, keep the gate open. */
  | { readonly kind: 'escalate'; readonly reason: string; readonly nextCheckAt?: number };

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
  evaluate(
    gates: readonly Gate[],
    context: GateEvaluationContext,
  ): Promise<ReadonlyMap<string, GateDecision>>;
}
