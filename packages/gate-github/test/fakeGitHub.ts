/**
 * A loopback fake of GitHub's REST API for Actions runs, for tests and benchmarks of code that
 * talks to GitHub through Node's global `fetch`. It mimics the parts such a client depends on:
 * run and list payloads in GitHub's snake_case shape, weak ETags with `304 Not Modified` replies
 * that cost no rate limit, primary rate-limit headers and refusals, `404` (never `403`) for a
 * private repository, `Link` pagination headers, and scripted faults (error statuses, truncated
 * JSON, held or delayed replies).
 *
 * @example
 * ```ts
 * const gh = await startFakeGitHub({ token: 't' });
 * const run = gh.addRun({ owner: 'o', repo: 'r', status: 'in_progress' });
 * await fetch(`${gh.baseUrl}/repos/o/r/actions/runs/${run.id}`, {
 *   headers: { authorization: 'Bearer t' },
 * });
 * await gh.close();
 * ```
 */

import { createHash } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';

const DOCS = 'https://docs.github.com/rest';
const JSON_TYPE = 'application/json; charset=utf-8';
const FAKE_EPOCH = Date.UTC(2024, 0, 1);
const NOT_FOUND = JSON.stringify({ message: 'Not Found' });
const BAD_CREDENTIALS = JSON.stringify({ message: 'Bad credentials', documentation_url: DOCS });
const OVER_LIMIT = JSON.stringify({
  message: 'API rate limit exceeded for user ID 1.',
  documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api`,
});

/** A run status GitHub reports; other strings are allowed, to test a client's robustness. */
export type RunStatus =
  | 'requested'
  | 'queued'
  | 'pending'
  | 'waiting'
  | 'in_progress'
  | 'completed'
  | (string & Record<never, never>);

/** A run conclusion GitHub reports (`null` until completed); other strings are allowed. */
export type RunConclusion =
  | 'success'
  | 'failure'
  | 'neutral'
  | 'cancelled'
  | 'skipped'
  | 'timed_out'
  | 'action_required'
  | 'stale'
  | 'startup_failure'
  | (string & Record<never, never>)
  | null;

/** Primary rate-limit settings; `resetInSeconds` is counted from when they are applied. */
export interface RateLimitOptions {
  limit?: number;
  remaining?: number;
  resetInSeconds?: number;
}

/** Options for {@link startFakeGitHub}. */
export interface FakeGitHubOptions {
  /** When set, every request needs `authorization: Bearer <token>` or `token <token>`, else 401. */
  token?: string;
  /** Path the API lives under, e.g. `/api/v3` for GitHub Enterprise Server; others get 404. */
  prefix?: string;
  /** Initial primary rate limit: default 5000 of 5000, resetting 3600 s after start. */
  rateLimit?: RateLimitOptions;
  /** Status for a request refused because the primary rate limit is spent. Default 403. */
  overLimitStatus?: 403 | 429;
  /** Clock (epoch ms) for rate-limit windows and `updated_at` stamps. Default `Date.now`. */
  now?: () => number;
}

/** A workflow run as the test sees it (camelCase); served in GitHub's snake_case shape. */
export interface FakeRun {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly status: RunStatus;
  readonly conclusion: RunConclusion;
  readonly runAttempt: number;
  readonly runNumber: number;
  readonly workflowId: number;
  readonly headSha: string;
  readonly headBranch: string;
  readonly event: string;
  readonly displayTitle: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly runStartedAt: string;
}

/** Input to {@link FakeGitHub.addRun}; everything but `owner` and `repo` has a default. */
export interface AddRunInput {
  owner: string;
  repo: string;
  /** Default: the next auto-increment id (from 1000, always above every id seen so far). */
  id?: number;
  /** Default `'queued'`. */
  status?: RunStatus;
  /** Default `null`. */
  conclusion?: RunConclusion;
  /** Default 1. */
  runAttempt?: number;
  /** Default: one more than the workflow's previous run in this repo. */
  runNumber?: number;
  /** Default 1. A workflow not yet added is created implicitly (`Workflow <id>`). */
  workflowId?: number;
  /** Default: a deterministic 40-hex sha derived from the run id. */
  headSha?: string;
  /** Default `'main'`. */
  headBranch?: string;
  /** Default `'push'`. */
  event?: string;
  /** Default `'Run <id>'`. */
  displayTitle?: string;
  /** ISO timestamp. Default: increasing fake times, one minute apart from 2024-01-01. */
  createdAt?: string;
}

/** Fields {@link FakeGitHub.updateRun} may change. */
export type RunPatch = Partial<Omit<FakeRun, 'id' | 'owner' | 'repo'>>;

/** A workflow definition; `path` is like `.github/workflows/ci.yml`. */
export interface FakeWorkflow {
  readonly id: number;
  readonly name: string;
  readonly path: string;
}

/** What a fault's `match` sees: the path without prefix or query, and the parsed query. */
export interface FaultRequest {
  method: string;
  path: string;
  query: URLSearchParams;
}

interface FaultBase {
  /** Which requests the fault applies to. Default: any request. */
  match?: (req: FaultRequest) => boolean;
  /** How many matching requests it applies to. Default 1. */
  times?: number;
}

/** Reply with this status (and body/headers) instead of the normal answer. */
export interface StatusFault extends FaultBase {
  status: number;
  /** Default `{"message":"<reason phrase>"}`. */
  body?: string;
  /** Added after the rate-limit headers, so they may override them. */
  headers?: Record<string, string>;
}

/** Reply 200 with `content-type: application/json` and a truncated JSON body. */
export interface MalformedFault extends FaultBase {
  malformed: true;
}

/** Hold the request unanswered until {@link FakeGitHub.releaseHeld}, a client abort, or close. */
export interface HoldFault extends FaultBase {
  hold: true;
}

/** Answer normally after a real delay (real timers: for manual use, not in fake-timer tests). */
export interface DelayFault extends FaultBase {
  delayMs: number;
}

/** A scripted one-shot (or `times`-shot) override of the next matching request. */
export type Fault = StatusFault | MalformedFault | HoldFault | DelayFault;

/** One request, recorded when answered (or with status 0 when the client went away first). */
export interface RecordedRequest {
  method: string;
  /** Path without the prefix and without the query (the raw path if outside the prefix). */
  path: string;
  /** Raw query string without the leading `?` (`''` if none). */
  query: string;
  ifNoneMatch?: string;
  authorization?: string;
  userAgent?: string;
  accept?: string;
  /** The `x-github-api-version` header. */
  apiVersion?: string;
  status: number;
  /** Whether it consumed one from the rate limit's `remaining`. */
  charged: boolean;
  /** When it was answered (`now()` of the fake's clock, epoch ms). */
  at: number;
}

/** A snapshot of the primary rate limit, as the headers report it. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  used: number;
  /** Epoch seconds. */
  reset: number;
}

/** A running fake GitHub API. */
export interface FakeGitHub {
  /** `http://127.0.0.1:<port>` plus the prefix, without a trailing slash. */
  readonly baseUrl: string;
  /** Answered requests, oldest first (cleared in place by {@link resetCounts}). */
  readonly requests: readonly RecordedRequest[];
  /** How many answered requests consumed rate limit. */
  readonly charged: number;
  /** How many requests are currently held by a `hold` fault. */
  readonly heldCount: number;
  /** The current primary rate limit. */
  readonly rateLimit: RateLimitState;
  /** Adds a run (its repo springs into existence). Throws on a duplicate id. */
  addRun(input: AddRunInput): FakeRun;
  /** Changes a run and bumps its `updated_at` (and `run_started_at` when the attempt changes). */
  updateRun(id: number, patch: RunPatch): FakeRun;
  /** The run with this id, if any. */
  getRun(id: number): FakeRun | undefined;
  /** Adds or replaces a workflow of a repo. */
  addWorkflow(owner: string, repo: string, workflow: FakeWorkflow): FakeWorkflow;
  /** From now on every request about this repo answers 404, as for a repo the token cannot see. */
  makePrivate(owner: string, repo: string): void;
  /** Changes the primary rate limit; omitted fields keep their value. */
  setRateLimit(options: RateLimitOptions): void;
  /** Queues a fault for the next matching request(s); earlier faults are tried first. */
  script(fault: Fault): void;
  /** Drops every queued fault (held requests stay held). */
  clearScript(): void;
  /** Answers every held request normally, oldest first; returns how many. */
  releaseHeld(): number;
  /** Clears `requests`, `charged` and the received count used by {@link waitForRequests}. */
  resetCounts(): void;
  /** Resolves once at least `n` requests have been received (held ones included). */
  waitForRequests(n: number): Promise<void>;
  /** Stops the server, destroying held and kept-alive connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * A secondary rate-limit reply as GitHub sends it: 403 (or 429) with `retry-after`.
 *
 * @example
 * ```ts
 * gh.script(secondaryRateLimitFault(30));
 * ```
 */
export function secondaryRateLimitFault(
  retryAfterSeconds = 30,
  status: 403 | 429 = 403,
): StatusFault {
  return {
    status,
    body: JSON.stringify({
      message:
        'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits`,
    }),
    headers: { 'retry-after': String(retryAfterSeconds) },
  };
}

/** Starts a fake GitHub API on 127.0.0.1 with an ephemeral port. */
export async function startFakeGitHub(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const fake = new FakeGitHubServer(options);
  await fake.listen();
  return fake;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface RepoState {
  owner: string;
  repo: string;
  isPrivate: boolean;
  /** Runs of this repo; sorted newest first (highest id first) when `sorted`. */
  runs: Mutable<FakeRun>[];
  sorted: boolean;
  workflows: Map<number, FakeWorkflow>;
  lastRunNumber: Map<number, number>;
}

interface RequestContext {
  method: string;
  /** Path without the prefix, or the raw path when outside it. */
  path: string;
  inPrefix: boolean;
  rawQuery: string;
  query: URLSearchParams;
  ifNoneMatch: string | undefined;
  authorization: string | undefined;
  userAgent: string | undefined;
  accept: string | undefined;
  apiVersion: string | undefined;
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
  /** Whether it counts against the rate limit (if any is left). */
  chargeable: boolean;
}

/** A route's outcome before credentials, rate limit and ETag are applied. */
interface Routed {
  status: number;
  body: string;
  headers: Record<string, string>;
}

interface Pending {
  ctx: RequestContext;
  res: ServerResponse;
}

interface QueuedFault {
  fault: Fault;
  left: number;
}

const repoKey = (owner: string, repo: string) => `${owner}/${repo}`.toLowerCase();

/** GitHub-style timestamp: ISO 8601 without milliseconds. */
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `decodeURIComponent`, or `undefined` for a missing or badly encoded segment. */
function safeDecode(segment: string | undefined): string | undefined {
  try {
    return segment === undefined ? undefined : decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** Weak comparison of an `if-none-match` header (possibly a list, or `*`) against an etag. */
function etagMatches(header: string, etag: string): boolean {
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === opaque;
  });
}

/** Truncates JSON so it cannot parse (every body served here is an object or array). */
const truncate = (body: string) => body.slice(0, Math.max(1, Math.floor(body.length / 2)));

const positiveInt = (value: string | null, fallback: number) => {
  const n = value === null ? Number.NaN : Number(value);
  return Number.isInteger(n) && n >= 1 ? n : fallback;
};

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

class FakeGitHubServer implements FakeGitHub {
  baseUrl = '';
  readonly requests: RecordedRequest[] = [];
  charged = 0;

  private readonly server: Server;
  private readonly prefix: string;
  private readonly token: string | undefined;
  private readonly overLimitStatus: 403 | 429;
  private readonly now: () => number;
  private limit: number;
  private remaining: number;
  private resetAt: number;

  private readonly runsById = new Map<number, Mutable<FakeRun>>();
  private readonly repos = new Map<string, RepoState>();
  private nextId = 1000;
  private fakeTimes = 0;

  private readonly faults: QueuedFault[] = [];
  private readonly held: Pending[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private received = 0;
  private waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private closing: Promise<void> | undefined;

  constructor(options: FakeGitHubOptions) {
    const prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.prefix = prefix === '' ? '' : `/${prefix}`;
    this.token = options.token;
    this.overLimitStatus = options.overLimitStatus ?? 403;
    this.now = options.now ?? (() => Date.now()); // looked up per call, so faked Dates apply
    this.limit = options.rateLimit?.limit ?? 5000;
    this.remaining = options.rateLimit?.remaining ?? this.limit;
    this.resetAt = this.nowSeconds() + (options.rateLimit?.resetInSeconds ?? 3600);
    this.server = createServer((req, res) => this.onRequest(req, res));
  }

  /** Binds to 127.0.0.1 on an ephemeral port and fills in `baseUrl`. */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        const { port } = this.server.address() as AddressInfo;
        this.baseUrl = `http://127.0.0.1:${port}${this.prefix}`;
        resolve();
      });
    });
  }

  get heldCount(): number {
    return this.held.length;
  }

  get rateLimit(): RateLimitState {
    this.refreshWindow();
    return {
      limit: this.limit,
      remaining: this.remaining,
      used: Math.max(0, this.limit - this.remaining),
      reset: this.resetAt,
    };
  }

  addRun(input: AddRunInput): FakeRun {
    const id = input.id ?? this.nextId;
    if (this.runsById.has(id)) throw new Error(`fake GitHub: run ${id} already exists`);
    this.nextId = Math.max(this.nextId, id + 1);
    const state = this.repoState(input.owner, input.repo);
    const workflowId = input.workflowId ?? 1;
    if (!state.workflows.has(workflowId)) {
      const path = `.github/workflows/workflow-${workflowId}.yml`;
      state.workflows.set(workflowId, { id: workflowId, name: `Workflow ${workflowId}`, path });
    }
    const runNumber = input.runNumber ?? (state.lastRunNumber.get(workflowId) ?? 0) + 1;
    state.lastRunNumber.set(
      workflowId,
      Math.max(runNumber, state.lastRunNumber.get(workflowId) ?? 0),
    );
    const createdAt = input.createdAt ?? isoSeconds(FAKE_EPOCH + this.fakeTimes++ * 60_000);
    const run: Mutable<FakeRun> = {
      id,
      owner: input.owner,
      repo: input.repo,
      status: input.status ?? 'queued',
      conclusion: input.conclusion ?? null,
      runAttempt: input.runAttempt ?? 1,
      runNumber,
      workflowId,
      headSha: input.headSha ?? createHash('sha1').update(`run:${id}`).digest('hex'),
      headBranch: input.headBranch ?? 'main',
      event: input.event ?? 'push',
      displayTitle: input.displayTitle ?? `Run ${id}`,
      createdAt,
      updatedAt: createdAt,
      runStartedAt: createdAt,
    };
    this.runsById.set(id, run);
    state.runs.push(run);
    state.sorted = false;
    return { ...run };
  }

  updateRun(id: number, patch: RunPatch): FakeRun {
    const run = this.runsById.get(id);
    if (!run) throw new Error(`fake GitHub: no run ${id}`);
    const attemptChanged = patch.runAttempt !== undefined && patch.runAttempt !== run.runAttempt;
    Object.assign(run, patch);
    if (patch.updatedAt === undefined) {
      // Strictly later than before, so clients comparing timestamps see the change.
      const previous = Date.parse(run.updatedAt);
      const now = Math.floor(this.now() / 1000) * 1000;
      run.updatedAt = isoSeconds(Math.max(now, Number.isNaN(previous) ? now : previous + 1000));
    }
    if (attemptChanged && patch.runStartedAt === undefined) run.runStartedAt = run.updatedAt;
    return { ...run };
  }

  getRun(id: number): FakeRun | undefined {
    const run = this.runsById.get(id);
    return run && { ...run };
  }

  addWorkflow(owner: string, repo: string, workflow: FakeWorkflow): FakeWorkflow {
    const copy = { id: workflow.id, name: workflow.name, path: workflow.path };
    this.repoState(owner, repo).workflows.set(workflow.id, copy);
    return { ...copy };
  }

  makePrivate(owner: string, repo: string): void {
    this.repoState(owner, repo).isPrivate = true;
  }

  setRateLimit(options: RateLimitOptions): void {
    if (options.limit !== undefined) this.limit = options.limit;
    if (options.remaining !== undefined) this.remaining = Math.max(0, options.remaining);
    if (options.resetInSeconds !== undefined) {
      this.resetAt = this.nowSeconds() + options.resetInSeconds;
    }
  }

  script(fault: Fault): void {
    const times = fault.times ?? 1;
    if (!(times >= 1)) throw new Error(`fake GitHub: fault times must be >= 1, got ${times}`);
    this.faults.push({ fault, left: times });
  }

  clearScript(): void {
    this.faults.length = 0;
  }

  releaseHeld(): number {
    const released = this.held.splice(0);
    for (const { ctx, res } of released) this.respond(ctx, res, undefined);
    return released.length;
  }

  resetCounts(): void {
    this.requests.length = 0;
    this.charged = 0;
    this.received = 0;
  }

  waitForRequests(n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve();
    if (this.closing) return Promise.reject(new Error('fake GitHub is closed'));
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const timer of this.timers) clearTimeout(timer);
      this.timers.clear();
      this.faults.length = 0;
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w.reject(new Error('fake GitHub closed before enough requests'));
      this.server.close(() => resolve());
      // Held, delayed and kept-alive connections would otherwise keep `close` waiting.
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  // --- request handling ------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    const ctx = this.parse(req);
    this.received++;
    if (this.waiters.length > 0) {
      this.waiters = this.waiters.filter((w) => {
        if (this.received < w.n) return true;
        w.resolve();
        return false;
      });
    }
    const fault = this.takeFault(ctx);
    if (fault && 'hold' in fault) {
      const pending = { ctx, res };
      this.held.push(pending);
      res.once('close', () => {
        const i = this.held.indexOf(pending);
        if (i >= 0) this.held.splice(i, 1);
        if (!res.writableEnded) this.record(ctx, 0, false);
      });
      return;
    }
    if (fault && 'delayMs' in fault) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.respond(ctx, res, undefined);
      }, fault.delayMs);
      this.timers.add(timer);
      res.once('close', () => {
        if (res.writableEnded) return;
        clearTimeout(timer);
        this.timers.delete(timer);
        this.record(ctx, 0, false);
      });
      return;
    }
    this.respond(ctx, res, fault);
  }

  private parse(req: IncomingMessage): RequestContext {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const p = this.prefix;
    const inPrefix = p === '' || rawPath === p || rawPath.startsWith(`${p}/`);
    return {
      method: req.method ?? 'GET',
      path: inPrefix && p !== '' ? rawPath.slice(p.length) || '/' : rawPath,
      inPrefix,
      rawQuery,
      query: new URLSearchParams(rawQuery),
      ifNoneMatch: header(req, 'if-none-match'),
      authorization: header(req, 'authorization'),
      userAgent: header(req, 'user-agent'),
      accept: header(req, 'accept'),
      apiVersion: header(req, 'x-github-api-version'),
    };
  }

  private takeFault(ctx: RequestContext): Fault | undefined {
    if (this.faults.length === 0) return undefined;
    const view: FaultRequest = { method: ctx.method, path: ctx.path, query: ctx.query };
    const i = this.faults.findIndex((f) => f.fault.match?.(view) ?? true);
    const queued = this.faults[i];
    if (!queued) return undefined;
    if (--queued.left <= 0) this.faults.splice(i, 1);
    return queued.fault;
  }

  /** Answers a request: a scripted status/malformed reply if given, else the normal answer. */
  private respond(ctx: RequestContext, res: ServerResponse, fault: Fault | undefined): void {
    if (res.writableEnded || res.destroyed) return;
    this.refreshWindow();
    let reply: Reply;
    if (fault && 'status' in fault) {
      reply = {
        status: fault.status,
        body: fault.body ?? JSON.stringify({ message: STATUS_CODES[fault.status] ?? 'Error' }),
        headers: { 'content-type': JSON_TYPE, ...fault.headers },
        chargeable: fault.status !== 304,
      };
    } else if (fault && 'malformed' in fault) {
      const body = this.route(ctx).body;
      const headers = { 'content-type': 'application/json' };
      reply = { status: 200, body: truncate(body), headers, chargeable: true };
    } else {
      reply = this.answer(ctx);
    }
    const charged = reply.chargeable && this.remaining > 0;
    if (charged) {
      this.remaining--;
      this.charged++;
    }
    const headers: Record<string, string> = {
      'x-ratelimit-limit': String(this.limit),
      'x-ratelimit-remaining': String(this.remaining),
      'x-ratelimit-used': String(Math.max(0, this.limit - this.remaining)),
      'x-ratelimit-reset': String(this.resetAt),
      'x-ratelimit-resource': 'core',
      ...reply.headers,
    };
    if (reply.body !== '') headers['content-length'] = String(Buffer.byteLength(reply.body));
    res.writeHead(reply.status, headers);
    res.end(reply.body);
    this.record(ctx, reply.status, charged);
  }

  /** The normal answer: credentials, then the rate limit, then the route and its ETag. */
  private answer(ctx: RequestContext): Reply {
    const json = { 'content-type': JSON_TYPE };
    if (this.token !== undefined && !this.authorized(ctx.authorization)) {
      return { status: 401, body: BAD_CREDENTIALS, headers: json, chargeable: true };
    }
    if (this.remaining <= 0) {
      return { status: this.overLimitStatus, body: OVER_LIMIT, headers: json, chargeable: false };
    }
    const routed = this.route(ctx);
    if (routed.status !== 200) return { ...routed, headers: json, chargeable: true };
    const etag = `W/"${createHash('sha1').update(routed.body).digest('hex')}"`;
    if (ctx.ifNoneMatch !== undefined && etagMatches(ctx.ifNoneMatch, etag)) {
      return { status: 304, body: '', headers: { etag, ...routed.headers }, chargeable: false };
    }
    return { ...routed, headers: { ...json, etag, ...routed.headers }, chargeable: true };
  }

  private authorized(authorization: string | undefined): boolean {
    const m = authorization === undefined ? null : /^(?:bearer|token)\s+(.+)$/i.exec(authorization);
    return m?.[1] === this.token;
  }

  /** Resolves a path to a 200 with its JSON body (and `link` header for lists), or a 404. */
  private route(ctx: RequestContext): Routed {
    const notFound = { status: 404, body: NOT_FOUND, headers: {} };
    if (!ctx.inPrefix || ctx.method !== 'GET') return notFound;
    const seg = ctx.path.split('/');
    if (seg[0] !== '' || seg[1] !== 'repos' || seg[4] !== 'actions') return notFound;
    const owner = safeDecode(seg[2]);
    const repo = safeDecode(seg[3]);
    if (!owner || !repo) return notFound;
    const state = this.repos.get(repoKey(owner, repo));
    if (state?.isPrivate) return notFound;
    const [kind, arg, tail, extra] = seg.slice(5);
    if (extra !== undefined) return notFound;

    if (kind === 'runs' && tail === undefined) {
      if (arg === undefined) return this.listRuns(ctx, state, undefined);
      if (!/^\d+$/.test(arg)) return notFound;
      const run = this.runsById.get(Number(arg));
      if (!run || repoKey(run.owner, run.repo) !== repoKey(owner, repo)) return notFound;
      return { status: 200, body: JSON.stringify(this.runJson(run)), headers: {} };
    }
    if (kind === 'workflows' && arg === undefined) {
      const all = [...(state?.workflows.values() ?? [])].sort((a, b) => a.id - b.id);
      const { items, headers } = this.paginate(ctx, all);
      const workflows = items.map((w) => this.workflowJson(w, owner, repo));
      return { status: 200, body: JSON.stringify({ total_count: all.length, workflows }), headers };
    }
    if (kind === 'workflows' && arg !== undefined && tail === 'runs') {
      const workflow = this.findWorkflow(state, safeDecode(arg));
      if (!workflow) return notFound;
      return this.listRuns(ctx, state, workflow.id);
    }
    return notFound;
  }

  private listRuns(
    ctx: RequestContext,
    state: RepoState | undefined,
    workflowId: number | undefined,
  ): Routed {
    const q = ctx.query;
    const branch = q.get('branch');
    const event = q.get('event');
    const status = q.get('status'); // GitHub matches a status or a conclusion here
    const headSha = q.get('head_sha');
    let runs: Mutable<FakeRun>[] = [];
    if (state) {
      if (!state.sorted) {
        state.runs.sort((a, b) => b.id - a.id);
        state.sorted = true;
      }
      runs = state.runs.filter(
        (r) =>
          (workflowId === undefined || r.workflowId === workflowId) &&
          (branch === null || r.headBranch === branch) &&
          (event === null || r.event === event) &&
          (status === null || r.status === status || r.conclusion === status) &&
          (headSha === null || r.headSha === headSha),
      );
    }
    const { items, headers } = this.paginate(ctx, runs);
    const body = JSON.stringify({
      total_count: runs.length,
      workflow_runs: items.map((r) => this.runJson(r)),
    });
    return { status: 200, body, headers };
  }

  /** Applies `per_page` (default 30, max 100) and `page`, with a GitHub-style `link` header. */
  private paginate<T>(
    ctx: RequestContext,
    all: T[],
  ): { items: T[]; headers: Record<string, string> } {
    const perPage = Math.min(100, positiveInt(ctx.query.get('per_page'), 30));
    const page = positiveInt(ctx.query.get('page'), 1);
    const items = all.slice((page - 1) * perPage, page * perPage);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const link = (p: number, rel: string) => {
      const params = new URLSearchParams(ctx.query);
      params.set('page', String(p));
      return `<${this.baseUrl}${ctx.path}?${params}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(Math.min(page - 1, last), 'prev'));
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'));
    return { items, headers: links.length > 0 ? { link: links.join(', ') } : {} };
  }

  private findWorkflow(
    state: RepoState | undefined,
    idOrFile: string | undefined,
  ): FakeWorkflow | undefined {
    if (!state || !idOrFile) return undefined;
    if (/^\d+$/.test(idOrFile)) return state.workflows.get(Number(idOrFile));
    for (const w of state.workflows.values()) if (basename(w.path) === idOrFile) return w;
    return undefined;
  }

  private runJson(run: FakeRun) {
    const workflow = this.repos.get(repoKey(run.owner, run.repo))?.workflows.get(run.workflowId);
    const api = `${this.baseUrl}/repos/${run.owner}/${run.repo}`;
    return {
      id: run.id,
      name: workflow?.name ?? `Workflow ${run.workflowId}`,
      head_branch: run.headBranch,
      head_sha: run.headSha,
      path: workflow?.path ?? '',
      display_title: run.displayTitle,
      run_number: run.runNumber,
      event: run.event,
      status: run.status,
      conclusion: run.conclusion,
      workflow_id: run.workflowId,
      url: `${api}/actions/runs/${run.id}`,
      html_url: `https://github.com/${run.owner}/${run.repo}/actions/runs/${run.id}`,
      created_at: run.createdAt,
      updated_at: run.updatedAt,
      run_attempt: run.runAttempt,
      run_started_at: run.runStartedAt,
      workflow_url: `${api}/actions/workflows/${run.workflowId}`,
      repository: {
        name: run.repo,
        full_name: `${run.owner}/${run.repo}`,
        owner: { login: run.owner },
      },
    };
  }

  private workflowJson(w: FakeWorkflow, owner: string, repo: string) {
    const stamp = isoSeconds(FAKE_EPOCH);
    return {
      id: w.id,
      name: w.name,
      path: w.path,
      state: 'active',
      created_at: stamp,
      updated_at: stamp,
      url: `${this.baseUrl}/repos/${owner}/${repo}/actions/workflows/${w.id}`,
      html_url: `https://github.com/${owner}/${repo}/blob/main/${w.path}`,
    };
  }

  // --- state helpers -----------------------------------------------------------------------

  private repoState(owner: string, repo: string): RepoState {
    const key = repoKey(owner, repo);
    let state = this.repos.get(key);
    if (!state) {
      state = {
        owner,
        repo,
        isPrivate: false,
        runs: [],
        sorted: true,
        workflows: new Map(),
        lastRunNumber: new Map(),
      };
      this.repos.set(key, state);
    }
    return state;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Starts a fresh window, as GitHub does, once the reset time has passed. */
  private refreshWindow(): void {
    if (this.now() >= this.resetAt * 1000) {
      this.remaining = this.limit;
      this.resetAt = this.nowSeconds() + 3600;
    }
  }

  private record(ctx: RequestContext, status: number, charged: boolean): void {
    const entry: RecordedRequest = {
      method: ctx.method,
      path: ctx.path,
      query: ctx.rawQuery,
      status,
      charged,
      at: this.now(),
    };
    if (ctx.ifNoneMatch !== undefined) entry.ifNoneMatch = ctx.ifNoneMatch;
    if (ctx.authorization !== undefined) entry.authorization = ctx.authorization;
    if (ctx.userAgent !== undefined) entry.userAgent = ctx.userAgent;
    if (ctx.accept !== undefined) entry.accept = ctx.accept;
    if (ctx.apiVersion !== undefined) entry.apiVersion = ctx.apiVersion;
    this.requests.push(entry);
  }
}
