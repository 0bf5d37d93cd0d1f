import { encodeEntry, encodeKey, queryBounds } from '@belfry/core/store';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

type Part = string | number | boolean;

/** The order keys must have: part by part; booleans < numbers < strings; a prefix first. */
function compareKeys(a: readonly Part[], b: readonly Part[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as Part;
    const y = b[i] as Part;
    const rank = (v: Part) => (typeof v === 'boolean' ? 0 : typeof v === 'number' ? 1 : 2);
    if (rank(x) !== rank(y)) return rank(x) - rank(y);
    if (typeof x === 'string' && typeof y === 'string') {
      const c = Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
      if (c !== 0) return c;
    } else if (x !== y) {
      return (x as number) < (y as number) ? -1 : 1;
    }
  }
  return a.length - b.length;
}

const part: fc.Arbitrary<Part> = fc.oneof(
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.integer({ min: -5, max: 5 }),
  fc.boolean(),
  fc.string({ maxLength: 6 }),
  fc.string({ maxLength: 3, unit: 'grapheme' }),
);
const key = fc.array(part, { maxLength: 4 });
const sign = (n: number) => Math.sign(n);

describe('index key encoding', () => {
  it('orders encoded keys exactly as the keys, in JavaScript and as UTF-8 bytes (SQLite BINARY)', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        const ea = encodeKey(a);
        const eb = encodeKey(b);
        const expected = sign(compareKeys(a, b));
        expect(sign(ea < eb ? -1 : ea > eb ? 1 : 0)).toBe(expected);
        expect(sign(Buffer.compare(Buffer.from(ea), Buffer.from(eb)))).toBe(expected);
      }),
      { numRuns: 2_000 },
    );
  });

  it('puts exactly the entries a query covers inside its bounds', () => {
    fc.assert(
      fc.property(
        key,
        key,
        fc.option(key, { nil: undefined }),
        fc.option(key, { nil: undefined }),
        (k, prefix, gte, lte) => {
          const { from, to } = queryBounds({
            prefix,
            ...(gte ? { gte } : {}),
            ...(lte ? { lte } : {}),
          });
          const entry = encodeEntry(k, 'some-id');
          const inside = entry >= from && entry <= to;
          const startsWith = (full: readonly Part[], p: readonly Part[]) =>
            p.length <= full.length && p.every((x, i) => x === full[i]);
          const rest = k.slice(prefix.length);
          // A bound covers every key that starts with it: compare on the bound's own length.
          const atLeast = !gte || compareKeys(rest.slice(0, gte.length), gte) >= 0;
          const atMost = !lte || compareKeys(rest.slice(0, lte.length), lte) <= 0;
          expect(inside).toBe(startsWith(k, prefix) && atLeast && atMost);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('refuses parts that cannot be ordered reliably', () => {
    expect(() => encodeKey([1.5])).toThrow(/safe integer/);
    expect(() => encodeKey([2 ** 60])).toThrow(/safe integer/);
    expect(() => encodeKey([null as never])).toThrow(/string, a safe integer or a boolean/);
  });
});
