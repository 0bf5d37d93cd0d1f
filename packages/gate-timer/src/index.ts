import { check } from '@belfry/core';
import {
  decideEach,
  type Gate,
  type GateDecision,
  type GateEvaluator,
  gateTypeName,
  type JsonObject,
  timerGateType,
} from '@belfry/core/gate';

/** Options of {@link timerGate}. */
export interface TimerGateOptions {
  /**
   * The gate type it evaluates.
   * @defaultValue `'timer'`
   */
  type?: string;
}

/** What a closed timer gate's result says. */
export interface TimerGateResult extends JsonObject {
  /** The deadline it closed for: `createdAt + durationMs` (clock ms). */
  expiredAt: number;
}

/** The deadline of a timer gate, or a reason why its stored record has none. */
function deadlineOf(gate: Gate): number | string {
  const duration = gate.spec.durationMs;
  if (typeof duration !== 'number' || !Number.isSafeInteger(duration) || duration <= 0)
    return `its stored spec.durationMs is ${JSON.stringify(duration) ?? 'missing'}, not a positive integer of milliseconds`;
  if (!Number.isSafeInteger(gate.createdAt))
    return `its stored createdAt is ${JSON.stringify(gate.createdAt)}, not a clock time`;
  return gate.createdAt + duration;
}

/**
 * The `timer` gate evaluator: a gate `{ durationMs }` closes once `createdAt + durationMs` is at
 * or before the clock's now, with the result `{ expiredAt }`.
 *
 * The deadline is computed from the stored creation time, never from when the daemon started, so
 * after a restart the remaining time holds: a 30-minute timer that had 10 minutes left when the
 * daemon died has 10 minutes left (less the downtime) when it comes back. The model marks the gate
 * due at its deadline, so it is not evaluated before then.
 *
 * @example
 * ```ts
 * import { timerGate } from '@belfry/gate-timer';
 *
 * const town = createTown({ driver, gates: [timerGate()] });
 * await town.gates.create({ type: 'timer', spec: { durationMs: 30 * 60_000 } });
 * ```
 */
export function timerGate(options: TimerGateOptions = {}): GateEvaluator {
  const o = check.object(options, 'options');
  check.keys(o, ['type'], 'options');
  const type = gateTypeName(o.type, timerGateType.type);
  return {
    type,
    validate: (spec) => timerGateType.validate(spec),
    firstDueAt: (spec, createdAt) => timerGateType.firstDueAt?.(spec, createdAt),
    evaluate: async (gates, context) =>
      decideEach(gates, context, (gate): GateDecision => {
        const deadline = deadlineOf(gate);
        // A damaged record is this gate's problem alone: the rest of the batch is decided.
        if (typeof deadline === 'string') throw new Error(deadline);
        if (deadline > context.now) return { kind: 'pending', nextCheckAt: deadline };
        const result: TimerGateResult = { expiredAt: deadline };
        return { kind: 'close', result };
      }),
  };
}
