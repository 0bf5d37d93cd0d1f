import { ConfigError, type ConfigErrorCode } from '../errors';

// Checks for options and arguments. Each failure is a ConfigError whose path names the value
// (e.g. `options.children[2].restart`) and whose message says what was given and what is allowed.

/** Shows a bad value in an error message without dumping whole objects. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}

export function fail(code: ConfigErrorCode, path: string, message: string): never {
  throw new ConfigError({ code, path, message: `${path}: ${message}` });
}

export function requireObject(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('INVALID_OPTION', path, `must be an object; got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

export function rejectUnknownKeys(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  path: string,
) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(
        'UNKNOWN_OPTION',
        `${path}.${key}`,
        `is not an option here; allowed: ${allowed.join(', ')}`,
      );
    }
  }
}

export function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: string,
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    fail(
      'INVALID_OPTION',
      path,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}; got ${describe(value)}`,
    );
  }
  return value as T;
}

/** What {@link number} accepts: bounds, integers only, Infinity. */
export interface NumberRule {
  min?: number;
  minExclusive?: boolean;
  max?: number;
  integer?: boolean;
  allowInfinity?: boolean;
}

export function number(value: unknown, path: string, fallback: number, rule: NumberRule): number {
  if (value === undefined) return fallback;
  const infinite = value === Number.POSITIVE_INFINITY;
  const ok =
    typeof value === 'number' &&
    !Number.isNaN(value) &&
    (Number.isFinite(value) || (infinite && rule.allowInfinity === true)) &&
    (!rule.integer || infinite || Number.isInteger(value)) &&
    (rule.min === undefined || (rule.minExclusive ? value > rule.min : value >= rule.min)) &&
    (rule.max === undefined || value <= rule.max);
  if (!ok) {
    const parts: string[] = [];
    parts.push(rule.integer ? 'an integer' : 'a finite number');
    if (rule.min !== undefined) parts.push(`${rule.minExclusive ? '>' : '>='} ${rule.min}`);
    if (rule.max !== undefined) parts.push(`<= ${rule.max}`);
    if (rule.allowInfinity) parts.push('or Infinity');
    fail('INVALID_OPTION', path, `must be ${parts.join(' ')}; got ${describe(value)}`);
  }
  return value as number;
}

export function optionalString(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    fail('INVALID_OPTION', path, `must be a non-empty string; got ${describe(value)}`);
  }
  return value;
}

/**
 * Runs a check written for a value at the top level (paths like `spec.durationMs`) on a value
 * nested at `prefix`, so its ConfigError names the full path (`molecule.steps[1].gate.spec.durationMs`).
 */
export function withPath<T>(check: () => T, prefix: string): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const path = `${prefix}.${error.path}`;
    const message = error.message.startsWith(`${error.path}: `)
      ? `${path}: ${error.message.slice(error.path.length + 2)}`
      : `${path}: ${error.message}`;
    throw new ConfigError({ code: error.code, path, message, cause: error.cause });
  }
}
