import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SortedList } from '../src/internal/SortedList';

type Op =
  | { op: 'add' | 'delete'; value: string }
  | { op: 'range'; from: string; to: string; reverse: boolean; limit: number };

const value = fc.string({ maxLength: 4, unit: fc.constantFrom('a', 'b', 'c', 'd', '.', ' ') });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('add' as const), value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), value }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('range' as const),
      from: value,
      to: value,
      reverse: fc.boolean(),
      limit: fc.integer({ min: 0, max: 20 }),
    }),
  },
);

describe('SortedList', () => {
  it('behaves like a sorted array under random adds, deletes and ranges', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const list = new SortedList();
        const model = new Set<string>();
        for (const o of ops) {
          if (o.op === 'add') expect(list.add(o.value)).toBe(!model.has(o.value));
          if (o.op === 'add') model.add(o.value);
          if (o.op === 'delete') expect(list.delete(o.value)).toBe(model.delete(o.value));
          if (o.op === 'range') {
            const sorted = [...model].sort();
            let expected = sorted.filter((v) => v >= o.from && v <= o.to);
            if (o.reverse) expected = expected.reverse();
            expect([...list.range(o.from, o.to, o.reverse, o.limit)]).toEqual(
              expected.slice(0, o.limit),
            );
          }
          expect(list.size).toBe(model.size);
        }
        expect([...list.range('', '\uffff')]).toEqual([...model].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('keeps order across many chunk splits and merges', () => {
    const list = new SortedList();
    const values = Array.from(
      { length: 5_000 },
      (_, i) => `k${String((i * 7919) % 5_000).padStart(5, '0')}`,
    );
    for (const v of values) list.add(v);
    const sorted = [...values].sort();
    expect([...list.range('', '~')]).toEqual(sorted);
    for (const v of values.filter((_, i) => i % 3 === 0)) expect(list.delete(v)).toBe(true);
    const left = sorted.filter((v) => values.indexOf(v) % 3 !== 0);
    expect([...list.range('', '~')]).toEqual(left);
    expect([...list.range('k01000', 'k01010', true)]).toEqual(
      left.filter((v) => v >= 'k01000' && v <= 'k01010').reverse(),
    );
    expect(list.has(left[0] as string)).toBe(true);
  });
});
