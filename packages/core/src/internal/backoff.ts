import type { NormalizedBackoff } from './options';

/**
 * The delay before backoff step `attempt` (from 0): `minMs * factor^attempt`, capped at `maxMs`,
 * spread by `jitter` around that value and capped again.
 *
 * @param random - a source of numbers in [0, 1).
 */
export function backoffDelay(b: NormalizedBackoff, attempt: number, random: () => number): number {
  const base = Math.min(b.maxMs, b.minMs * b.factor ** attempt);
  if (b.jitter === 0 || base === 0) return base;
  const spread = base * b.jitter * (2 * random() - 1);
  return Math.max(0, Math.min(b.maxMs, Math.round(base + spread)));
}
