import type { Gate, GateDecision, GateEvaluator, JsonObject } from '@belfry/core/gate';
import { SimulatedClock } from '@belfry/testing';

export const START = 1_700_000_000_000;

/**
 * Gates held the way a town holds them between evaluations: each decision's memo is stored on
 * its gate and handed back next time, and closed gates leave the batch.
 */
export class GateBench {
  readonly clock: SimulatedClock;
  private readonly records = new Map<string, Gate>();
  private serial = 0;

  constructor(
    public evaluator: GateEvaluator,
    clock?: SimulatedClock,
  ) {
    this.clock = clock ?? new SimulatedClock(START);
  }

  /** Adds an open gate with this spec (validated by the evaluator). */
  add(spec: unknown): Gate {
    const gate: Gate = {
      id: `gt-${++this.serial}`,
      type: this.evaluator.type,
      spec: this.evaluator.validate(spec),
      status: 'open',
      createdAt: this.clock.now(),
      waiters: [],
      escalations: [],
    };
    this.records.set(gate.id, gate);
    return gate;
  }

  get(id: string): Gate {
    return this.records.get(id) as Gate;
  }

  open(): Gate[] {
    return [...this.records.values()].filter((g) => g.status === 'open');
  }

  /** Evaluates every open gate (or `only`), storing memos and closing what closes. */
  async round(
    only?: readonly Gate[],
    signal = new AbortController().signal,
  ): Promise<Map<string, GateDecision>> {
    const batch = (only ?? this.open()).map((g) => this.get(g.id));
    const decisions = await this.evaluator.evaluate(batch, {
      now: this.clock.now(),
      clock: this.clock,
      signal,
    });
    for (const [id, d] of decisions) {
      const gate = this.get(id);
      if (d.kind === 'close') {
        this.records.set(id, {
          ...gate,
          status: 'closed',
          ...(d.result === undefined ? {} : { result: d.result }),
          ...(d.failure === undefined ? {} : { failure: d.failure }),
        });
      } else if (d.memo) {
        this.records.set(id, { ...gate, memo: d.memo as JsonObject });
      }
    }
    return new Map(decisions);
  }

  /** The decision for one gate, evaluated alone. */
  async decide(gate: Gate): Promise<GateDecision> {
    return (await this.round([gate])).get(gate.id) as GateDecision;
  }
}
