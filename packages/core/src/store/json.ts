import { StoreError } from '../errors';
import type { JsonValue } from './Store';

/**
 * Copies a value into plain, frozen JSON: object properties whose value is `undefined` are
 * dropped (as JSON would drop them), and anything JSON cannot carry (functions, symbols,
 * `NaN`/`Infinity`, class instances, `Date`, `Map`, cycles, `undefined` in arrays) is refused
 * with a `StoreError` that says where it is, instead of being silently changed.
 *
 * @param value - the value to copy.
 * @param where - a description of the value for error messages.
 * @returns a deep-frozen copy.
 * @example
 * ```ts
 * const record = toFrozenJson({ id: 'x', note: undefined, tags: ['a'] }, 'beads/x'); // { id: 'x', tags: ['a'] }
 * ```
 */
export function toFrozenJson<T>(value: T, where: string): T {
  return copy(value, where, new Set()) as T;
}

function copy(value: unknown, path: string, seen: Set<unknown>): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) refuse(path, `${value} (JSON has no NaN or Infinity)`);
    return value;
  }
  if (typeof value !== 'object') refuse(path, `a ${typeof value}`);
  if (seen.has(value)) refuse(path, 'a cycle');
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      const out: JsonValue[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (item === undefined)
          refuse(`${path}[${i}]`, 'undefined (an array cannot hold it in JSON)');
        out.push(copy(item, `${path}[${i}]`, seen));
      }
      return Object.freeze(out) as JsonValue;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      refuse(
        path,
        `an instance of ${(value as object).constructor?.name ?? 'a class'} (only plain objects)`,
      );
    }
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(value)) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined) continue;
      // Defined, not assigned: a "__proto__" key (JSON.parse makes one) stays a plain property.
      Object.defineProperty(out, key, {
        value: copy(item, `${path}.${key}`, seen),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return Object.freeze(out);
  } finally {
    seen.delete(value);
  }
}

function refuse(path: string, what: string): never {
  throw new StoreError({
    code: 'INVALID_RECORD',
    message: `${path}: cannot be stored as JSON: it is ${what}`,
  });
}
