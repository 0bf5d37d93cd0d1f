import { StoreError } from '../errors';
import type { IndexKey, IndexQuery, KeyPart } from './Store';

// Index keys are encoded into ASCII strings whose plain comparison gives the key order, so that a
// JavaScript sort and SQLite's BINARY collation agree byte for byte:
//   number  → "m" + 14 hex digits of (2^53 + value) when negative, else "p" + 14 hex digits of
//             the value (safe integers only, so both stay exact)
//   boolean → "b0" | "b1"
//   string  → "s" + hex of its UTF-8 bytes
// Parts are joined with "." (below every digit and tag letter), so a key sorts right after its
// prefixes. An index entry is the key, a space (below "."), and the record id.
const PART = '.';
const ENTRY = ' ';
const TOP = '~'; // above every character an encoding uses
const OFFSET = 2 ** 53;

function encodePart(part: KeyPart): string {
  if (typeof part === 'number') {
    if (!Number.isSafeInteger(part)) {
      throw new StoreError({
        code: 'INVALID_RECORD',
        message: `an index key number must be a safe integer; got ${part}`,
      });
    }
    // Split by sign so every value stays exact: 2^53 + v is exact for negative v, v itself for
    // the rest. 'm' (minus) sorts before 'p' (plus), and both between 'b' and 's'.
    return part < 0
      ? `m${(OFFSET + part).toString(16).padStart(14, '0')}`
      : `p${part.toString(16).padStart(14, '0')}`;
  }
  if (typeof part === 'boolean') return part ? 'b1' : 'b0';
  if (typeof part === 'string') return `s${Buffer.from(part, 'utf8').toString('hex')}`;
  throw new StoreError({
    code: 'INVALID_RECORD',
    message: `an index key part must be a string, a safe integer or a boolean; got ${typeof part}`,
  });
}

/**
 * Encodes an index key as a string whose ordering (plain comparison, or SQLite BINARY collation)
 * is the key's ordering. For store implementations.
 *
 * @param key - the key parts.
 * @returns the encoded key.
 * @example
 * ```ts
 * encodeKey(['open', 1_700_000_000_000]) < encodeKey(['open', 1_700_000_000_001]); // true
 * ```
 */
export function encodeKey(key: IndexKey): string {
  return key.map(encodePart).join(PART);
}

/** The index entry for a record: its encoded key, a space, and its id. */
export function encodeEntry(key: IndexKey, id: string): string {
  return `${encodeKey(key)}${ENTRY}${id}`;
}

/** The record id inside an index entry. */
export function entryId(entry: string): string {
  return entry.slice(entry.indexOf(ENTRY) + 1);
}

/**
 * The inclusive range of encoded entries an {@link IndexQuery} covers: `from <= entry <= to`.
 *
 * @param query - the query.
 * @returns the bounds, to compare against entries made by `encodeEntry`.
 * @example
 * ```ts
 * const { from, to } = queryBounds({ lte: [Date.now()] });
 * ```
 */
export function queryBounds(query: IndexQuery = {}): { from: string; to: string } {
  const prefix = query.prefix ?? [];
  const lower = query.gte ? [...prefix, ...query.gte] : prefix;
  const upper = query.lte ? [...prefix, ...query.lte] : prefix;
  // The lower bound sits just below the first entry whose key starts with `lower`; the upper
  // bound just above the last entry whose key starts with `upper`.
  const from = lower.length === 0 ? '' : encodeKey(lower);
  const to = upper.length === 0 ? TOP : `${encodeKey(upper)}${PART}${TOP}`;
  return { from, to };
}
