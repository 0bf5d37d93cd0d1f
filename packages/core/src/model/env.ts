import { customAlphabet } from 'nanoid';
import type { Clock } from '../Clock';
import { ConfigError, StoreError } from '../errors';
import { describe, fail } from '../internal/validate';
import { toFrozenJson } from '../store/json';
import type { JsonObject, Store, StoreTx } from '../store/Store';
import type { GateType } from './gateTypes';

const ID_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz';
const ID_LENGTH = 10;
const TOKEN_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const TOKEN_LENGTH = 20;

/** Names (rigs, agents, targets): letters, digits, `_`, `-`, `.`, `/`, `:`, 1 to 100 characters. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$/;

/** What every part of the model shares. */
export interface TownEnv {
  readonly store: Store;
  readonly clock: Clock;
  readonly statuses: ReadonlySet<string>;
  readonly terminal: ReadonlySet<string>;
  readonly gateTypes: ReadonlyMap<string, GateType>;
  readonly beadPrefix: string;
  /** A new id: the prefix, a dash, ten characters of [0-9a-z]. */
  newId(prefix: string): string;
  /** A claim token: 20 characters of [0-9A-Za-z]. */
  newToken(): string;
}

/**
 * How a part of the model reaches the store: inside a caller's transaction when it has one,
 * otherwise in a transaction of its own, so every operation is atomic.
 */
export class Ctx {
  constructor(
    readonly env: TownEnv,
    readonly tx: StoreTx | undefined,
  ) {}

  run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.tx ? fn(this.tx) : this.env.store.transaction(fn);
  }

  now(): number {
    return this.env.clock.now();
  }
}

/**
 * A model's source of ids and claim tokens. Without `random` they are cryptographically random
 * (nanoid); with it, each character is drawn from `random`, so a seeded source gives the same ids
 * in the same order on every run. Each model has its own, so two towns in one process never share
 * a sequence.
 *
 * @param random - numbers in [0, 1), already checked (see `checkRandom`).
 */
export function idSource(random: (() => number) | undefined): Pick<TownEnv, 'newId' | 'newToken'> {
  if (random === undefined) {
    const suffix = customAlphabet(ID_CHARS, ID_LENGTH);
    const token = customAlphabet(TOKEN_CHARS, TOKEN_LENGTH);
    return { newId: (prefix) => `${prefix}-${suffix()}`, newToken: () => token() };
  }
  const draw = (chars: string, length: number): string => {
    let out = '';
    for (let i = 0; i < length; i++) out += chars[Math.floor(random() * chars.length)];
    return out;
  };
  return {
    newId: (prefix) => `${prefix}-${draw(ID_CHARS, ID_LENGTH)}`,
    newToken: () => draw(TOKEN_CHARS, TOKEN_LENGTH),
  };
}

/** Checks a name used as an id or a reference. */
export function checkName(value: unknown, path: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    fail(
      'INVALID_OPTION',
      path,
      `must be 1 to 100 characters: letters, digits, '_', '-', '.', '/', ':' (starting with a letter or digit); got ${describe(value)}`,
    );
  }
  return value;
}

/** Checks a required, non-empty text. */
export function checkText(value: unknown, path: string, max = 1_000): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > max) {
    fail(
      'INVALID_OPTION',
      path,
      `must be a non-empty string of at most ${max} characters; got ${describe(value)}`,
    );
  }
  return value;
}

/** Checks a JSON object argument (metadata, args, details) and copies it. */
export function checkJsonObject(value: unknown, path: string): JsonObject {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('INVALID_OPTION', path, `must be a JSON object; got ${describe(value)}`);
  }
  try {
    return toFrozenJson(value as JsonObject, path);
  } catch (error) {
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path,
      message: error instanceof Error ? error.message : String(error),
      cause: error,
    });
  }
}

/** Checks a non-negative safe integer of milliseconds. */
export function checkMs(value: unknown, path: string, positive = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (positive ? 1 : 0)) {
    fail(
      'INVALID_OPTION',
      path,
      `must be an integer number of ms ${positive ? '> 0' : '>= 0'}; got ${describe(value)}`,
    );
  }
  return value;
}

/** The error for a missing record, listing a few that do exist when that helps. */
export function notFound(kind: string, id: string, known?: readonly string[]): StoreError {
  const hint =
    known === undefined
      ? ''
      : known.length === 0
        ? `; there are none`
        : `; known: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', …' : ''}`;
  return new StoreError({
    code: 'NOT_FOUND',
    message: `unknown ${kind} ${describe(id)}${hint}`,
  });
}

/** The error for a change the record's state does not allow. */
export function badTransition(message: string): StoreError {
  return new StoreError({ code: 'INVALID_TRANSITION', message });
}

/** Loads a record or fails with NOT_FOUND. */
export async function load<T extends { id: string }>(
  tx: StoreTx,
  collection: string,
  kind: string,
  id: string,
): Promise<T> {
  const record = await tx.get<T>(collection, id);
  if (!record) throw notFound(kind, id);
  return record;
}
