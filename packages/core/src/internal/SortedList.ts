/**
 * A sorted set of strings in chunks (a "sorted list of sorted arrays"): O(log n) search, insert
 * and delete cost a binary search plus a move within one chunk of at most 2 × CHUNK entries, and
 * a range is read in order without touching the entries outside it. Enough for indexes of
 * millions of entries without the pointer-chasing of a tree.
 */
const CHUNK = 512;

export class SortedList {
  private chunks: string[][] = [];
  /** The last (largest) entry of each chunk, for the binary search over chunks. */
  private maxes: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `value`; returns false when it was already present. */
  add(value: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([value]);
      this.maxes.push(value);
      this.count = 1;
      return true;
    }
    let c = this.chunkFor(value);
    if (c === this.chunks.length) c--; // larger than everything: append to the last chunk
    const chunk = this.chunks[c] as string[];
    const i = lowerBound(chunk, value);
    if (chunk[i] === value) return false;
    chunk.splice(i, 0, value);
    this.maxes[c] = chunk[chunk.length - 1] as string;
    this.count++;
    if (chunk.length > 2 * CHUNK) {
      const tail = chunk.splice(CHUNK);
      this.chunks.splice(c + 1, 0, tail);
      this.maxes.splice(c, 1, chunk[chunk.length - 1] as string, tail[tail.length - 1] as string);
    }
    return true;
  }

  /** Removes `value`; returns false when it was not present. */
  delete(value: string): boolean {
    const c = this.chunkFor(value);
    const chunk = this.chunks[c];
    if (!chunk) return false;
    const i = lowerBound(chunk, value);
    if (chunk[i] !== value) return false;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) {
      this.chunks.splice(c, 1);
      this.maxes.splice(c, 1);
    } else {
      this.maxes[c] = chunk[chunk.length - 1] as string;
    }
    return true;
  }

  has(value: string): boolean {
    const chunk = this.chunks[this.chunkFor(value)];
    return chunk !== undefined && chunk[lowerBound(chunk, value)] === value;
  }

  /** The entries `from <= entry <= to`, in order (or reverse order), at most `limit`. */
  *range(
    from: string,
    to: string,
    reverse = false,
    limit = Number.POSITIVE_INFINITY,
  ): Generator<string> {
    if (limit <= 0 || from > to) return;
    let yielded = 0;
    if (!reverse) {
      const first = this.chunkFor(from);
      for (let c = first; c < this.chunks.length; c++) {
        const chunk = this.chunks[c] as string[];
        for (let i = c === first ? lowerBound(chunk, from) : 0; i < chunk.length; i++) {
          const v = chunk[i] as string;
          if (v > to) return;
          yield v;
          if (++yielded >= limit) return;
        }
      }
      return;
    }
    let c = this.chunkFor(to);
    if (c === this.chunks.length) c--;
    for (; c >= 0; c--) {
      const chunk = this.chunks[c] as string[];
      let i = upperBound(chunk, to) - 1;
      for (; i >= 0; i--) {
        const v = chunk[i] as string;
        if (v < from) return;
        yield v;
        if (++yielded >= limit) return;
      }
    }
  }

  /** The index of the first chunk whose largest entry is >= value (chunks.length if none). */
  private chunkFor(value: string): number {
    return lowerBound(this.maxes, value);
  }
}

/** The first index i with a[i] >= value. */
function lowerBound(a: string[], value: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as string) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index i with a[i] > value. */
function upperBound(a: string[], value: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as string) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
