import type { Clock } from '../Clock';
import type { TownTimings } from './types';

/*
 * Bounded waits: every call the town makes to something it does not control (a user hook, an
 * evaluator, the Mayor sink, a poller) is raced with a timer on the town's clock; and how what
 * such a call answered or threw is put into a report (cut to size, never lost).
 */

/**
 * Races `work` with a timer on the clock: when `ms` pass first, `abort` is aborted and the
 * result rejects with `onTimeout()`. The timer is cleared either way.
 */
export function withDeadline<T>(
  clock: Clock,
  work: Promise<T>,
  ms: number,
  abort: AbortController,
  onTimeout: () => Error,
): Promise<T> {
  let timer: unknown;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => {
        abort.abort();
        reject(onTimeout());
      }, ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}

/**
 * Calls a user hook that has no time limit of its own (an agent's `launch` or `prime`) within
 * `timings.callTimeoutMs`: past it, the hook's signal is aborted and the call rejects, naming
 * `what`. A hook that throws rejects the same way.
 */
export function callHook<T>(
  ctx: { readonly clock: Clock; readonly timings: Pick<TownTimings, 'callTimeoutMs'> },
  what: string,
  hook: (signal: AbortSignal) => T | Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const ms = ctx.timings.callTimeoutMs;
  return withDeadline(
    ctx.clock,
    Promise.resolve().then(() => hook(abort.signal)),
    ms,
    abort,
    () => new Error(`${what} did not answer within ${ms} ms`),
  );
}

/** Cuts `text` to at most `max` characters, marking the cut with `…`. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A value as a short text for a report (JSON, cut to 200 characters). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return clip(JSON.stringify(value), 200);
  } catch {
    return String(value);
  }
}
