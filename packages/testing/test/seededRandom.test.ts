import { ConfigError } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../src';

const TWO_32 = 4_294_967_296;

describe('seededRandom', () => {
  it('is mulberry32: the reference sequence for a few seeds, so a seed replays everywhere', () => {
    // From the reference JavaScript mulberry32 (bryc), as 32-bit integers.
    const expected: Record<number, number[]> = {
      0: [1_144_304_738, 1_416_247, 958_946_056],
      1: [2_693_262_067, 11_749_833, 2_265_367_787],
      12345: [4_207_900_869, 1_317_490_944, 2_079_646_450],
      4294967295: [3_850_105_811, 813_802_916, 3_073_704_848],
    };
    for (const [seed, values] of Object.entries(expected)) {
      const random = seededRandom(Number(seed));
      expect([random(), random(), random()].map((x) => x * TWO_32)).toEqual(values);
    }
  });

  it('gives the same sequence for the same seed, and each source its own state', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const fromA = Array.from({ length: 100 }, () => a());
    const fromB = Array.from({ length: 100 }, () => b());
    expect(fromB).toEqual(fromA);
    expect(seededRandom(8)()).not.toBe(fromA[0]);
  });

  it('draws uniformly from [0, 1)', () => {
    const random = seededRandom(2026);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = random();
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
      buckets[Math.floor(x * 10)] = (buckets[Math.floor(x * 10)] ?? 0) + 1;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.01);
    // Each tenth holds 10,000 ± 3% (about 10 standard deviations: never by chance).
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(300);
  });

  it('refuses a seed that is not an integer from 0 to 2^32 - 1, saying what is allowed', () => {
    for (const bad of [-1, 1.5, 4_294_967_296, Number.NaN, '12' as unknown as number]) {
      expect(() => seededRandom(bad)).toThrow(ConfigError);
      expect(() => seededRandom(bad)).toThrow(/seed: must be an integer from 0 to 4294967295/);
    }
  });
});
