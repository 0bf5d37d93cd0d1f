import type { Clock } from '@belfry/core';

/** How the client reaches GitHub. */
export interface ClientOptions {
  baseUrl: string;
  token: string | undefined;
  userAgent: string;
  fetch: typeof fetch;
  requestTimeoutMs: number;
  /** Requests left in the window below which the client waits for the reset instead. */
  reserve: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** What one GET came to. */
export type Reply =
  /** 200 (or 304 answered from the cache: `fresh` false). */
  | { kind: 'ok'; data: unknown; etag: string | undefined; fresh: boolean }
  /** 404: a private repo the token cannot see, or no such run. */
  | { kind: 'not-found'; message: string }
  /** 403 that is not a rate limit, or 422: the token may not, or the request is wrong. */
  | { kind: 'refused'; status: number; message: string }
  /** 401: the credentials are bad. Nothing else will work either. */
  | { kind: 'unauthorized'; message: string }
  /** A 5xx, a network error, a timeout, a malformed reply: try again later. */
  | { kind: 'transient'; message: string }
  /** Not sent, or refused for a rate limit: wait until `until` (clock ms). */
  | { kind: 'wait'; until: number; message: string };

interface CacheEntry {
  etag: string;
  data: unknown;
}

const CACHE_LIMIT = 5_000;
const SECONDARY_MIN_MS = 60_000;
/** The longest wait a rate-limit header can impose (GitHub's windows are one hour). */
const MAX_WAIT_MS = 3_660_000;

/**
 * When `retry-after` says to try again (clock ms): delay-seconds, or an HTTP date read against
 * the reply's own Date. Undefined when absent or unreadable.
 */
function retryAfter(response: Response, now: number): number | undefined {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return now + Math.min(Number(value) * 1_000, MAX_WAIT_MS);
  const at = Date.parse(value);
  if (!Number.isFinite(at)) return undefined;
  const date = Date.parse(response.headers.get('date') ?? '');
  const serverNow = Number.isFinite(date) ? date : Date.now();
  return now + Math.min(Math.max(0, at - serverNow), MAX_WAIT_MS);
}

/** A conditional-request cache and GitHub's rate-limit and back-off rules around fetch. */
export class GitHubClient {
  private readonly cache = new Map<string, CacheEntry>();
  /** Nothing is sent before this (clock ms): a rate limit's reset, a retry-after, a back-off. */
  private blockedUntil = 0;
  private blockedBecause = '';
  private remaining: number | undefined;
  private resetAt: number | undefined;
  private secondaryHits = 0;
  /** Consecutive transient failures, and since when (clock ms). */
  private failures = 0;
  private failingSince: number | undefined;
  private lastFailure = '';
  /** Requests sent (not answered from a wait), for the evaluator's budget and the bench. */
  sent = 0;

  constructor(private readonly options: ClientOptions) {}

  /** Since when every request has failed (clock ms), and the last failure; undefined if not. */
  outage(): { since: number; last: string } | undefined {
    return this.failingSince === undefined
      ? undefined
      : { since: this.failingSince, last: this.lastFailure };
  }

  /** When the client may send again, if it is waiting at `now`. */
  waiting(now: number): { until: number; message: string } | undefined {
    if (this.blockedUntil > now) return { until: this.blockedUntil, message: this.blockedBecause };
    if (
      this.remaining !== undefined &&
      this.remaining <= this.options.reserve &&
      this.resetAt !== undefined &&
      this.resetAt > now
    )
      return {
        until: this.resetAt,
        message: `${this.remaining} requests left in GitHub's rate-limit window (keeping ${this.options.reserve} in reserve); waiting for its reset`,
      };
    return undefined;
  }

  /** The ETag and data kept for `path`, if any (from this process; see `seed`). */
  cached(path: string): CacheEntry | undefined {
    return this.cache.get(path);
  }

  /** Offers a validator stored elsewhere (a gate's memo) for a path with nothing cached. */
  seed(path: string, entry: CacheEntry): void {
    if (!this.cache.has(path)) this.remember(path, entry);
  }

  /**
   * GETs `path` (below the base URL), conditionally when an ETag is cached. Bounded by the
   * request timeout on `clock`; `signal` (the Deacon's) aborts it and rejects. `shrink` turns a
   * fresh reply's JSON into what is kept and returned (the fields the caller reads); it throws
   * for a reply of the wrong shape, which counts as a malformed reply.
   */
  async get(
    path: string,
    clock: Clock,
    signal: AbortSignal,
    shrink: (data: unknown) => unknown = (data) => data,
  ): Promise<Reply> {
    signal.throwIfAborted();
    const now = clock.now();
    const wait = this.waiting(now);
    if (wait) return { kind: 'wait', ...wait };
    const cached = this.cache.get(path);
    const headers: Record<string, string> = {
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': this.options.userAgent,
    };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (cached) headers['if-none-match'] = cached.etag;

    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, this.options.requestTimeoutMs);
    this.sent++;
    try {
      const response = await this.options.fetch(`${this.options.baseUrl}${path}`, {
        headers,
        signal: controller.signal,
        redirect: 'follow',
      });
      const text = await response.text();
      return this.interpret(path, response, text, cached, clock.now(), shrink);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const message = timedOut
        ? `no reply within ${this.options.requestTimeoutMs} ms`
        : `the request failed: ${this.redact(describeError(error))}`;
      return this.transient(message, clock.now());
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private interpret(
    path: string,
    response: Response,
    text: string,
    cached: CacheEntry | undefined,
    now: number,
    shrink: (data: unknown) => unknown,
  ): Reply {
    this.readRateLimit(response, now);
    const status = response.status;
    const etag = response.headers.get('etag') ?? undefined;
    if (status === 304) {
      if (!cached) return this.transient('a 304 reply to a request that had no ETag', now);
      // A 304 without an ETag keeps the old one.
      this.succeeded();
      this.remember(path, { etag: etag ?? cached.etag, data: cached.data });
      return { kind: 'ok', data: cached.data, etag: etag ?? cached.etag, fresh: false };
    }
    if (status >= 200 && status < 300) {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        return this.transient(
          `a malformed JSON reply (${status}, ${text.length} bytes: ${JSON.stringify(this.redact(text).slice(0, 40))})`,
          now,
        );
      }
      try {
        data = shrink(data);
      } catch (error) {
        return this.transient(`a reply of the wrong shape: ${describeError(error)}`, now);
      }
      this.succeeded();
      if (etag) this.remember(path, { etag, data });
      else this.cache.delete(path);
      return { kind: 'ok', data, etag, fresh: true };
    }
    const message = `${status} ${this.redact(githubMessage(text) ?? response.statusText).slice(0, 300)}`;
    if (status === 401) {
      this.succeeded();
      return { kind: 'unauthorized', message };
    }
    if (status === 403 || status === 429) {
      const wait = this.rateLimited(response, status, text, now);
      if (wait) return { kind: 'wait', until: wait, message: `rate limited (${message})` };
      this.succeeded();
      return { kind: 'refused', status, message };
    }
    if (status === 404 || status === 410) {
      this.succeeded();
      return { kind: 'not-found', message };
    }
    if (status >= 500) return this.transient(message, now, retryAfter(response, now));
    this.succeeded();
    return { kind: 'refused', status, message };
  }

  /** For a 403 or 429: when to try again if it is a rate limit (undefined: it is not). */
  private rateLimited(response: Response, status: number, text: string, now: number) {
    const secondary = /secondary rate limit|abuse/i.test(text);
    let until = retryAfter(response, now);
    if (until === undefined && this.remaining === 0 && this.resetAt !== undefined) {
      until = Math.max(this.resetAt, now + 1_000);
    } else if (until === undefined && (status === 429 || secondary || /rate limit/i.test(text))) {
      // A secondary limit without retry-after: at least a minute, longer each time it repeats.
      this.secondaryHits++;
      until = now + SECONDARY_MIN_MS * 2 ** Math.min(this.secondaryHits - 1, 6);
    }
    if (until === undefined) return undefined;
    this.answered();
    // GitHub's windows are an hour: a wait beyond that is a broken header, not a plan.
    until = Math.min(until, now + MAX_WAIT_MS);
    this.block(until, `GitHub's rate limit: waiting until ${new Date(until).toISOString()}`);
    return until;
  }

  /** Reads x-ratelimit-remaining and -reset; the reset is placed on the clock by the reply's Date. */
  private readRateLimit(response: Response, now: number): void {
    const remaining = response.headers.get('x-ratelimit-remaining');
    const reset = response.headers.get('x-ratelimit-reset');
    if (remaining !== null && /^\d+$/.test(remaining)) this.remaining = Number(remaining);
    if (reset !== null && /^\d+$/.test(reset)) {
      // Both the reset and the Date header are the server's time, so their difference does not
      // depend on this machine's clock (or on a simulated one).
      const date = Date.parse(response.headers.get('date') ?? '');
      const serverNow = Number.isFinite(date) ? date : Date.now();
      this.resetAt = now + Math.min(MAX_WAIT_MS, Math.max(0, Number(reset) * 1_000 - serverNow));
    }
  }

  /**
   * A failed request: back off, doubling per failure. Requests that were already in flight when
   * the back-off began do not double it again. A `retry-after` the server sent wins if longer.
   */
  private transient(message: string, now: number, serverSays?: number): Reply {
    if (this.blockedUntil <= now || this.failures === 0) this.failures++;
    this.failingSince ??= now;
    this.lastFailure = message;
    const backoff = Math.min(
      this.options.backoffBaseMs * 2 ** (this.failures - 1),
      this.options.backoffMaxMs,
    );
    this.block(
      Math.max(now + backoff, serverSays ?? 0),
      `backing off after ${this.failures} failed requests: ${message}`,
    );
    return { kind: 'transient', message };
  }

  /** GitHub answered (even if to refuse): whatever outage there was is over. */
  private answered(): void {
    this.failures = 0;
    this.failingSince = undefined;
  }

  private succeeded(): void {
    this.answered();
    this.secondaryHits = 0;
  }

  private block(until: number, because: string): void {
    if (until >= this.blockedUntil) {
      this.blockedUntil = until;
      this.blockedBecause = because;
    }
  }

  private remember(path: string, entry: CacheEntry): void {
    this.cache.delete(path);
    this.cache.set(path, entry);
    if (this.cache.size > CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  /** Removes the token from text that may be shown (an error's message). */
  redact(text: string): string {
    const token = this.options.token;
    return token ? text.split(token).join('[token]') : text;
  }
}

function githubMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { message?: unknown };
    return typeof body?.message === 'string' ? body.message : undefined;
  } catch {
    return undefined;
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail =
    cause && typeof cause.code === 'string'
      ? cause.code
      : cause && typeof cause.message === 'string'
        ? cause.message
        : undefined;
  return detail ? `${error.message} (${detail})` : error.message;
}
