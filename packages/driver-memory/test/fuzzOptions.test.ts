import { ConfigError } from '@belfry/core';
import { createMemoryDriver } from '@belfry/driver-memory';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// The probe found `programs` of the wrong shape (a BigInt, an array holding a cycle) ending in a
// TypeError from the error message itself. Every refusal must be a ConfigError.

const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = {};
  o.self = o;
  return o;
};

const shape = fc.oneof(
  fc.anything({ maxDepth: 2, withBigInt: true, withMap: true, withSet: true }),
  fc.bigInt(),
  fc.constant(null),
  fc.constant(() => undefined),
  fc.constant(cyclic()),
  fc.constant([cyclic()]),
  fc.constant({ a: 10n }),
);

function onlyConfigErrors(call: () => unknown): void {
  try {
    call();
  } catch (error) {
    if (error instanceof ConfigError) return;
    throw new Error(`expected a ConfigError; got ${String(error)}`, { cause: error });
  }
}

describe('memory driver options: bad shapes are ConfigErrors', () => {
  it('refuses non-object programs, BigInt or cyclic ones included, with a ConfigError', () => {
    for (const programs of [5n, 'x', [cyclic()], null, 3, [() => undefined]])
      expect(() => createMemoryDriver({ programs } as never), String(programs)).toThrow(
        ConfigError,
      );
    expect(() => createMemoryDriver({ defaultProgram: 5n } as never)).toThrow(ConfigError);
    expect(() => createMemoryDriver({ programs: { a: 10n } } as never)).toThrow(ConfigError);
  });

  it('random option shapes give a driver or a ConfigError', () => {
    fc.assert(
      fc.property(
        shape,
        fc.record(
          {
            programs: fc.oneof(shape, fc.dictionary(fc.string(), shape)),
            defaultProgram: shape,
            defaultGraceMs: shape,
            maxOutputLines: shape,
          },
          { requiredKeys: [] },
        ),
        (whole, options) => {
          onlyConfigErrors(() => createMemoryDriver(whole as never));
          onlyConfigErrors(() => createMemoryDriver(options as never));
        },
      ),
      { numRuns: 500 },
    );
  });
});
