import {
  ConfigError,
  createSupervisor,
  createTownModel,
  MemoryStore,
  StoreError,
  supervisor,
} from '@belfry/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// Bad input to a public entry point must come back as a ConfigError (or a StoreError for a
// record that is not there), never as a TypeError from deep inside: the probe found
// `createSupervisor(null)`, a non-array gate `waiters`, and a BigInt or cyclic gate `type`.

const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = { type: 'timer' };
  o.self = o;
  return o;
};

/** Random shapes: JSON-ish values plus what JSON cannot hold (BigInt, functions, cycles, symbols). */
const shape = fc.oneof(
  fc.anything({ maxDepth: 2, withBigInt: true, withMap: true, withSet: true, withDate: true }),
  fc.bigInt().map((b) => b),
  fc.constant(null),
  fc.constant(undefined),
  fc.constant(Number.NaN),
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  fc.constant(cyclic()),
  fc.constant([cyclic()]),
);

/** Runs `call` and passes only when it succeeds or throws a ConfigError/StoreError. */
async function onlyBelfryErrors(call: () => unknown): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StoreError) return;
    throw new Error(`expected a ConfigError or StoreError; got ${String(error)}`, { cause: error });
  }
}

describe('fuzzed input gives a ConfigError, never a TypeError', () => {
  it('createSupervisor(null) and other non-objects are refused with a ConfigError', () => {
    for (const bad of [null, 5, 'x', [], true, 10n]) {
      expect(() => createSupervisor(bad as never), String(bad)).toThrow(ConfigError);
      expect(() => supervisor(bad as never), String(bad)).toThrow(ConfigError);
    }
  });

  it('createSupervisor and supervisor take random option shapes', async () => {
    await fc.assert(
      fc.asyncProperty(
        shape,
        fc.record({ children: shape, id: shape, clock: shape }),
        async (a, b) => {
          await onlyBelfryErrors(() => createSupervisor(a as never));
          await onlyBelfryErrors(() => supervisor(b as never));
          await onlyBelfryErrors(() => createSupervisor({ children: [a] } as never));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a gate with a non-array waiters, or a BigInt or cyclic type, is a ConfigError', async () => {
    const model = createTownModel({ store: new MemoryStore() });
    for (const waiters of ['mol-1', {}, 5, 10n, cyclic()])
      await expect(
        model.gates.create({ type: 'timer', spec: { durationMs: 5 }, waiters } as never),
      ).rejects.toThrow(ConfigError);
    for (const type of [10n, cyclic(), Symbol('t'), {}])
      await expect(model.gates.create({ type, spec: {} } as never)).rejects.toThrow(ConfigError);
  });

  it('gates.create, gates.get and gates.close take random shapes', async () => {
    const model = createTownModel({ store: new MemoryStore() });
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            type: fc.oneof(fc.constantFrom('timer', 'human', 'gh:run'), shape),
            spec: shape,
            waiters: shape,
            timeoutMs: shape,
            dueAt: shape,
          },
          { requiredKeys: ['type'] },
        ),
        shape,
        async (input, other) => {
          await onlyBelfryErrors(() => model.gates.create(input as never));
          await onlyBelfryErrors(() => model.gates.create(other as never));
          await onlyBelfryErrors(() => model.gates.require(other as never));
          await onlyBelfryErrors(() => model.gates.close(other as never, other as never));
        },
      ),
      { numRuns: 300 },
    );
  });
});
