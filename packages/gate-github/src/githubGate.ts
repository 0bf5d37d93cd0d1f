import { check, GateError } from '@belfry/core';
import {
  type Gate,
  type GateDecision,
  type GateEvaluator,
  gateTypeName,
  githubRunGateType,
  type JsonObject,
} from '@belfry/core/gate';
import { GitHubClient, type Reply } from './client';

/** What to do with a run that ended in a conclusion other than success. */
export type FailurePolicy =
  /** Keep the gate open and report it once (a re-run that succeeds still closes it). */
  | 'escalate'
  /** Close the gate as failed: the molecules waiting on it fail. */
  | 'close';

/** Options of {@link githubGate}. */
export interface GitHubGateOptions {
  /** The gate type it evaluates. @defaultValue `'gh:run'` */
  type?: string;
  /**
   * The token sent as `Authorization: Bearer`; needs Actions read access (fine-grained PAT:
   * "Actions: read"; classic: `repo` for private repositories). `null`: anonymous (60 requests an
   * hour). Never logged, never in an error message.
   * @defaultValue `process.env.GITHUB_TOKEN`, else anonymous
   */
  token?: string | null;
  /** The API's base URL; for GitHub Enterprise Server `https://HOST/api/v3`. @defaultValue `'https://api.github.com'` */
  baseUrl?: string;
  /** The fetch to use. @defaultValue the global fetch */
  fetch?: typeof fetch;
  /** @defaultValue `'belfry-gate-github'` */
  userAgent?: string;
  /** How long one request may take (on the town's clock). @defaultValue 10_000 */
  requestTimeoutMs?: number;
  /** When a pending gate is looked at again. @defaultValue the Deacon's gate interval */
  pollIntervalMs?: number;
  /** failure, timed_out, startup_failure, action_required, cancelled, stale, and any unknown conclusion. @defaultValue `'escalate'` */
  onFailure?: FailurePolicy;
  /** Whether a `neutral` run passes (`'pass'`) or counts as a failure. @defaultValue `'fail'` */
  neutral?: 'pass' | 'fail';
  /** Whether a `skipped` run passes (`'pass'`) or counts as a failure. @defaultValue `'fail'` */
  skipped?: 'pass' | 'fail';
  /**
   * Read a repository's runs with one list request (its latest 100) when at least this many of
   * its runs are waited on; runs not among them are asked for one by one. `0` turns it off.
   * @defaultValue 2
   */
  batchMinRuns?: number;
  /** At most this many requests per evaluation; the rest wait for the next one. @defaultValue 100 */
  maxRequestsPerEvaluation?: number;
  /** Requests in flight at once. @defaultValue 4 */
  concurrency?: number;
  /** Requests of the rate-limit window kept unused (for other tools on the token). @defaultValue 10 */
  reserve?: number;
  /** The first back-off after a 5xx, network error or timeout; it doubles per failure. @defaultValue 1_000 */
  backoffBaseMs?: number;
  /** @defaultValue 300_000 */
  backoffMaxMs?: number;
  /** After failing this long, an evaluation fails with `UNAVAILABLE` (one town incident). @defaultValue 600_000 */
  unavailableAfterMs?: number;
}

/** The result a `gh:run` gate closes with. */
export interface GitHubRunResult extends JsonObject {
  runId: number;
  /** A re-run keeps the id and counts up the attempt. */
  runAttempt: number;
  conclusion: string;
  url: string;
  headSha: string | null;
}

/** The run fields the evaluator reads. */
interface Run {
  id: number;
  status: string;
  conclusion: string | null;
  attempt: number;
  url: string;
  headSha: string | null;
}

interface Workflow {
  id: number;
  name: string;
  path: string;
}

/** What a gate's memo keeps: the run it waits on and what it last saw of it. */
interface Memo {
  runId?: number;
  etag?: string;
  status?: string;
  conclusion?: string | null;
  runAttempt?: number;
  url?: string;
  headSha?: string | null;
}

interface Spec {
  owner: string;
  repo: string;
  runId?: number;
  workflow?: string;
  branch?: string;
  headSha?: string;
  event?: string;
}

/** How long a repository whose list request failed has its runs asked for one by one. */
const LIST_OFF_MS = 600_000;
/** The most pages of workflows read to find one by name (100 each). */
const MAX_WORKFLOW_PAGES = 10;

const WAITING = new Set(['requested', 'queued', 'pending', 'waiting', 'in_progress']);
const FAILED = new Set([
  'failure',
  'timed_out',
  'startup_failure',
  'action_required',
  'cancelled',
  'stale',
]);

function toRun(raw: unknown): Run {
  const r = raw as Record<string, unknown> | null;
  if (!r || typeof r !== 'object') throw new Error('a run must be an object');
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id))
    throw new Error('run.id is not an integer');
  if (typeof r.status !== 'string') throw new Error(`run ${r.id}: status is not a string`);
  if (r.conclusion !== null && r.conclusion !== undefined && typeof r.conclusion !== 'string')
    throw new Error(`run ${r.id}: conclusion is neither a string nor null`);
  const attempt = typeof r.run_attempt === 'number' ? r.run_attempt : 1;
  return {
    id: r.id,
    status: r.status,
    conclusion: (r.conclusion as string | null | undefined) ?? null,
    attempt,
    url: typeof r.html_url === 'string' ? r.html_url : '',
    headSha: typeof r.head_sha === 'string' ? r.head_sha : null,
  };
}

/**
 * The runs of a list reply. A malformed entry is left out (its run, if waited on, is asked for on
 * its own), so one odd run does not spoil the rest of the list.
 */
function toRunList(raw: unknown): Run[] {
  const list = (raw as { workflow_runs?: unknown } | null)?.workflow_runs;
  if (!Array.isArray(list)) throw new Error('workflow_runs is not an array');
  const runs: Run[] = [];
  for (const entry of list) {
    try {
      runs.push(toRun(entry));
    } catch {
      // left out: see above
    }
  }
  return runs;
}

/** A single-run reply, which must be the run asked for. */
const runNumbered = (id: number) => (raw: unknown) => {
  const run = toRun(raw);
  if (run.id !== id) throw new Error(`the reply is about run ${run.id}, not run ${id}`);
  return run;
};

function toWorkflows(raw: unknown): Workflow[] {
  const list = (raw as { workflows?: unknown } | null)?.workflows;
  if (!Array.isArray(list)) throw new Error('workflows is not an array');
  return list.map((w) => {
    const o = w as Record<string, unknown>;
    if (typeof o?.id !== 'number' || typeof o.name !== 'string')
      throw new Error('a workflow lacks its id or name');
    return { id: o.id, name: o.name, path: typeof o.path === 'string' ? o.path : '' };
  });
}

function readSpec(gate: Gate): Spec {
  // The stored spec went through validate once; a damaged record is caught here, not trusted.
  return githubRunGateType.validate(gate.spec) as unknown as Spec;
}

function readMemo(gate: Gate): Memo {
  return (gate.memo ?? {}) as Memo;
}

const repoPath = (s: Spec) => `/repos/${s.owner}/${s.repo}`;
const runPath = (s: Spec, id: number) => `${repoPath(s)}/actions/runs/${id}`;

/** What a run or workflow came to in one evaluation. */
type Outcome =
  | Reply
  | { kind: 'run'; run: Run; etag: string | undefined }
  /** A workflow with no run (matching its filters) yet. */
  | { kind: 'no-run' }
  /** Not asked: over this evaluation's budget, or after a 401. */
  | { kind: 'skipped' };

/** A run and the gates waiting on it. */
interface RunTarget {
  spec: Spec;
  runId: number;
  gates: Gate[];
  reply?: Outcome;
}

/** A workflow whose newest run is not pinned yet, and the gates waiting on it. */
interface FlowTarget {
  spec: Spec;
  gates: Gate[];
  reply?: Outcome;
}

/**
 * The `gh:run` gate evaluator: waits on a GitHub Actions run, asked for with Node's fetch at
 * `GET /repos/{owner}/{repo}/actions/runs/{run_id}`.
 *
 * - Until the run is `completed` the gate is pending; `success` closes it with
 *   {@link GitHubRunResult}; `neutral` and `skipped` pass only if configured to; `failure`,
 *   `timed_out`, `startup_failure`, `action_required`, `cancelled`, `stale`, and any conclusion it
 *   does not know, escalate (or close the gate as failed, with `onFailure: 'close'`). An unknown
 *   status escalates too. Every verdict records the run attempt: a re-run keeps the id.
 * - A `workflow` gate (file, id or name) waits on that workflow's newest run (narrowed by
 *   `branch`, `headSha`, `event`); the run it finds is pinned in the gate's memo.
 * - One request per distinct run per evaluation, however many gates wait on it; with
 *   `batchMinRuns`, one list request per repository. Requests are conditional on the ETag kept in
 *   memory and in the gate's memo (a 304 costs no rate limit); `retry-after` and
 *   `x-ratelimit-remaining`/`-reset` are honoured, 5xx and network errors back off, each request
 *   is bounded by `requestTimeoutMs`.
 * - A 404 (a private repository the token cannot see, or no such run) escalates the gate; a 401
 *   fails the evaluation with `UNAUTHORIZED`, and an outage longer than `unavailableAfterMs`
 *   with `UNAVAILABLE`: one town incident each, not one per gate.
 *
 * @example
 * ```ts
 * import { githubGate } from '@belfry/gate-github';
 *
 * const town = createTown({ driver, gates: [githubGate({ onFailure: 'close' })] });
 * await town.gates.create({ type: 'gh:run', spec: { owner: 'acme', repo: 'api', runId: 9_876_543_210 } });
 * await town.gates.create({ type: 'gh:run', spec: { owner: 'acme', repo: 'api', workflow: 'ci.yml', headSha } });
 * ```
 */
export function githubGate(options: GitHubGateOptions = {}): GateEvaluator {
  const o = check.object(options, 'options');
  check.keys(
    o,
    [
      'type',
      'token',
      'baseUrl',
      'fetch',
      'userAgent',
      'requestTimeoutMs',
      'pollIntervalMs',
      'onFailure',
      'neutral',
      'skipped',
      'batchMinRuns',
      'maxRequestsPerEvaluation',
      'concurrency',
      'reserve',
      'backoffBaseMs',
      'backoffMaxMs',
      'unavailableAfterMs',
    ],
    'options',
  );
  const type = gateTypeName(o.type, githubRunGateType.type);
  const token =
    o.token === undefined
      ? checkToken(process.env.GITHUB_TOKEN, 'GITHUB_TOKEN (the environment)')
      : checkToken(o.token, 'options.token');
  const baseUrl = checkBaseUrl(o.baseUrl ?? 'https://api.github.com');
  if (o.fetch !== undefined && typeof o.fetch !== 'function')
    check.fail(
      'INVALID_OPTION',
      'options.fetch',
      `must be a function; got ${check.describe(o.fetch)}`,
    );
  const fetchFn = (o.fetch as typeof fetch | undefined) ?? globalThis.fetch;
  const userAgent = check.optionalString(o.userAgent, 'options.userAgent') ?? 'belfry-gate-github';
  if (!/^[\x20-\x7e]{1,200}$/.test(userAgent))
    check.fail(
      'INVALID_OPTION',
      'options.userAgent',
      `must be 1 to 200 printable ASCII characters (it is a header); got ${check.describe(userAgent)}`,
    );
  const ms = (key: string, fallback: number, min = 1) =>
    check.number(o[key], `options.${key}`, fallback, { integer: true, min });
  const requestTimeoutMs = ms('requestTimeoutMs', 10_000);
  const pollIntervalMs = o.pollIntervalMs === undefined ? undefined : ms('pollIntervalMs', 0);
  const onFailure = check.oneOf(
    o.onFailure,
    ['escalate', 'close'] as const,
    'options.onFailure',
    'escalate',
  );
  const neutral = check.oneOf(o.neutral, ['pass', 'fail'] as const, 'options.neutral', 'fail');
  const skipped = check.oneOf(o.skipped, ['pass', 'fail'] as const, 'options.skipped', 'fail');
  const batchMinRuns = ms('batchMinRuns', 2, 0);
  const maxRequests = ms('maxRequestsPerEvaluation', 100);
  const concurrency = ms('concurrency', 4);
  const unavailableAfterMs = ms('unavailableAfterMs', 600_000, 0);
  const client = new GitHubClient({
    baseUrl,
    token,
    userAgent,
    fetch: fetchFn,
    requestTimeoutMs,
    reserve: ms('reserve', 10, 0),
    backoffBaseMs: ms('backoffBaseMs', 1_000),
    backoffMaxMs: ms('backoffMaxMs', 300_000),
  });
  /** Per repository: the oldest run id of its last list of 100 (runs older are not in it). */
  const listWindow = new Map<string, number>();
  /** Per repository whose list request failed: until when its runs are asked for one by one. */
  const listOff = new Map<string, number>();

  /** The verdict on a run, the same for every gate waiting on it. */
  function judge(run: Run, now: number): GateDecision {
    const memo: JsonObject = {
      runId: run.id,
      runAttempt: run.attempt,
      status: run.status,
      conclusion: run.conclusion,
      url: run.url,
      headSha: run.headSha,
    };
    const attempt = `run ${run.id} (attempt ${run.attempt})`;
    if (run.status !== 'completed') {
      if (WAITING.has(run.status)) return pending(now, memo);
      // An unknown status fails closed: not passed, and a person is told.
      return {
        kind: 'escalate',
        reason: `${attempt} has a status this evaluator does not know: ${JSON.stringify(run.status)}`,
        memo,
      };
    }
    const c = run.conclusion;
    const result: GitHubRunResult = {
      runId: run.id,
      runAttempt: run.attempt,
      conclusion: c ?? 'none',
      url: run.url,
      headSha: run.headSha,
    };
    if (
      c === 'success' ||
      (c === 'neutral' && neutral === 'pass') ||
      (c === 'skipped' && skipped === 'pass')
    )
      return { kind: 'close', result };
    const why =
      c === null
        ? `${attempt} completed without a conclusion (treated as a failure)`
        : FAILED.has(c) || c === 'neutral' || c === 'skipped'
          ? `${attempt} concluded ${c}`
          : `${attempt} concluded ${JSON.stringify(c)}, a conclusion this evaluator does not know (treated as a failure)`;
    if (onFailure === 'close') return { kind: 'close', result, failure: `${why}: ${run.url}` };
    return { kind: 'escalate', reason: `${why}: ${run.url}`, memo };
  }

  function pending(now: number, memo?: JsonObject): GateDecision {
    return {
      kind: 'pending',
      ...(pollIntervalMs === undefined ? {} : { nextCheckAt: now + pollIntervalMs }),
      ...(memo ? { memo } : {}),
    };
  }

  /** The decision for a gate from what its target came to. */
  function decide(gate: Gate, outcome: Outcome, now: number, etag?: string): GateDecision {
    switch (outcome.kind) {
      case 'run': {
        const decision = judge(outcome.run, now);
        if (decision.kind === 'close') return decision;
        const memo = { ...(decision.memo ?? {}), ...(etag ? { etag } : {}) };
        return { ...decision, memo };
      }
      case 'no-run':
        return pending(now);
      case 'not-found':
        return {
          kind: 'escalate',
          reason: `GitHub answered ${outcome.message} for ${describeTarget(gate)}: the repository is private to this token, or there is no such run or workflow`,
        };
      case 'refused':
        return {
          kind: 'escalate',
          reason: `GitHub refused the request for ${describeTarget(gate)}: ${outcome.message}`,
        };
      case 'wait':
        return { kind: 'pending', nextCheckAt: outcome.until };
      case 'transient':
        return { kind: 'pending', nextCheckAt: client.waiting(now)?.until ?? now };
      case 'skipped':
        // Over this evaluation's request budget: first in line at the next one.
        return { kind: 'pending', nextCheckAt: now };
      case 'unauthorized':
      case 'ok':
        return { kind: 'pending', nextCheckAt: now };
    }
  }

  return {
    type,
    validate: (spec) => githubRunGateType.validate(spec),
    async evaluate(gates, { now, clock, signal }) {
      signal.throwIfAborted();
      const decisions = new Map<string, GateDecision>();
      const runs = new Map<string, RunTarget>();
      const flows = new Map<string, FlowTarget>();
      for (const gate of gates) {
        let spec: Spec;
        try {
          spec = readSpec(gate);
        } catch (error) {
          decisions.set(gate.id, {
            kind: 'escalate',
            reason: `its stored spec is damaged: ${(error as Error).message}`,
            nextCheckAt: null,
          });
          continue;
        }
        const memo = readMemo(gate);
        const runId = spec.runId ?? memo.runId;
        if (runId !== undefined) {
          const key = `${spec.owner}/${spec.repo}#${runId}`.toLowerCase();
          const target = runs.get(key) ?? { spec, runId, gates: [] };
          target.gates.push(gate);
          runs.set(key, target);
          // A validator kept in the memo survives a restart: the first request is conditional too.
          if (memo.runId === runId && memo.etag && memo.status !== undefined)
            client.seed(runPath(spec, runId), {
              etag: memo.etag,
              data: {
                id: runId,
                status: memo.status,
                conclusion: memo.conclusion ?? null,
                attempt: memo.runAttempt ?? 1,
                url: memo.url ?? '',
                headSha: memo.headSha ?? null,
              } satisfies Run,
            });
        } else {
          const key = JSON.stringify([
            spec.owner.toLowerCase(),
            spec.repo.toLowerCase(),
            spec.workflow,
            spec.branch,
            spec.headSha,
            spec.event,
          ]);
          const target = flows.get(key) ?? { spec, gates: [] };
          target.gates.push(gate);
          flows.set(key, target);
        }
      }

      let budget = maxRequests;
      let unauthorized: string | undefined;
      const ask = async (
        path: string,
        shrink: (data: unknown) => unknown,
      ): Promise<Reply | { kind: 'skipped' }> => {
        if (unauthorized !== undefined || budget <= 0) return { kind: 'skipped' };
        const wait = client.waiting(clock.now());
        if (wait) return { kind: 'wait', ...wait };
        budget--;
        const reply = await client.get(path, clock, signal, shrink);
        if (reply.kind === 'unauthorized') unauthorized = reply.message;
        return reply;
      };

      // 1. One list request per repository with enough runs waited on, when they can be in it.
      const byRepo = new Map<string, RunTarget[]>();
      for (const target of runs.values()) {
        const repo = `${target.spec.owner}/${target.spec.repo}`.toLowerCase();
        byRepo.set(repo, [...(byRepo.get(repo) ?? []), target]);
      }
      if (batchMinRuns > 0) {
        await pool(
          [...byRepo].filter(([repo, targets]) => {
            if (targets.length < batchMinRuns || (listOff.get(repo) ?? 0) > now) return false;
            const oldest = listWindow.get(repo);
            return oldest === undefined || targets.some((t) => t.runId >= oldest);
          }),
          concurrency,
          async ([repo, targets]) => {
            const spec = (targets[0] as RunTarget).spec;
            const reply = await ask(`${repoPath(spec)}/actions/runs?per_page=100`, toRunList);
            if (reply.kind === 'not-found') {
              // A private repository (or none): each of its runs would say the same.
              for (const target of targets) target.reply = reply;
              return;
            }
            if (reply.kind === 'transient' || reply.kind === 'refused') {
              // The list fails where single runs may not: ask for them one by one for a while.
              listOff.set(repo, now + LIST_OFF_MS);
              return;
            }
            if (reply.kind !== 'ok') return;
            const list = reply.data as Run[];
            listWindow.set(repo, list.length < 100 ? 0 : Math.min(...list.map((r) => r.id)));
            const byId = new Map(list.map((r) => [r.id, r]));
            for (const target of targets) {
              const run = byId.get(target.runId);
              if (run) target.reply = { kind: 'run', run, etag: undefined };
            }
          },
        );
      }

      // 2. Each remaining run and each unpinned workflow: one request (two for a workflow by name).
      const work: Array<() => Promise<void>> = [];
      for (const target of runs.values()) {
        if (target.reply) continue;
        work.push(async () => {
          const reply = await ask(runPath(target.spec, target.runId), runNumbered(target.runId));
          target.reply =
            reply.kind === 'ok' ? { kind: 'run', run: reply.data as Run, etag: reply.etag } : reply;
        });
      }
      const workflowLists = new Map<string, Promise<Outcome | Workflow[]>>();
      const lookUp = (spec: Spec) => {
        const repo = `${spec.owner}/${spec.repo}`.toLowerCase();
        let listed = workflowLists.get(repo);
        if (!listed) {
          listed = listWorkflows(spec, ask);
          workflowLists.set(repo, listed);
        }
        return listed;
      };
      for (const target of flows.values()) {
        work.push(async () => {
          target.reply = await resolveWorkflow(target.spec, ask, lookUp);
        });
      }
      await pool(work, concurrency, (job) => job());
      signal.throwIfAborted();

      if (unauthorized !== undefined)
        throw new GateError({
          code: 'UNAUTHORIZED',
          message: `GitHub refused the credentials at ${baseUrl} (${unauthorized}); check the token given to githubGate (or GITHUB_TOKEN)`,
        });
      const outage = client.outage();
      if (outage && clock.now() - outage.since >= unavailableAfterMs)
        throw new GateError({
          code: 'UNAVAILABLE',
          message: `GitHub at ${baseUrl} has been failing since ${new Date(outage.since).toISOString()}: ${outage.last}`,
        });

      for (const target of [...runs.values(), ...flows.values()]) {
        const outcome: Outcome = target.reply ?? { kind: 'skipped' };
        for (const gate of target.gates) {
          // A run read from a list has no ETag of its own: keep the one the memo has.
          const memo = readMemo(gate);
          const etag =
            outcome.kind !== 'run'
              ? undefined
              : (outcome.etag ?? (memo.runId === outcome.run.id ? memo.etag : undefined));
          decisions.set(gate.id, decide(gate, outcome, now, etag));
        }
      }
      return decisions;
    },
  };
}

type Ask = (
  path: string,
  shrink: (data: unknown) => unknown,
) => Promise<Reply | { kind: 'skipped' }>;

/** Every workflow of a repository, page by page (up to {@link MAX_WORKFLOW_PAGES}). */
async function listWorkflows(spec: Spec, ask: Ask): Promise<Outcome | Workflow[]> {
  const all: Workflow[] = [];
  for (let page = 1; page <= MAX_WORKFLOW_PAGES; page++) {
    const reply = await ask(
      `${repoPath(spec)}/actions/workflows?per_page=100&page=${page}`,
      toWorkflows,
    );
    if (reply.kind !== 'ok') return reply;
    const workflows = reply.data as Workflow[];
    all.push(...workflows);
    if (workflows.length < 100) break;
  }
  return all;
}

/**
 * The newest run of a spec's workflow (by file, id or name), narrowed by its filters. `lookUp`
 * lists a repository's workflows once per evaluation, however many gates name one.
 */
async function resolveWorkflow(
  spec: Spec,
  ask: Ask,
  lookUp: (spec: Spec) => Promise<Outcome | Workflow[]>,
): Promise<Outcome> {
  const workflow = spec.workflow as string;
  let id: string;
  if (/^\d+$/.test(workflow) || /\.ya?ml$/i.test(workflow)) {
    id = encodeURIComponent(workflow.split('/').pop() as string);
  } else {
    const workflows = await lookUp(spec);
    if (!Array.isArray(workflows)) return workflows;
    const named = workflows.filter((w) => w.name === workflow);
    if (named.length !== 1) {
      const known = workflows.map((w) => `${w.name} (${w.path})`).join(', ');
      return {
        kind: 'refused',
        status: 0,
        message:
          named.length === 0
            ? `no workflow named ${JSON.stringify(workflow)}; its workflows: ${known || 'none'}`
            : `${named.length} workflows are named ${JSON.stringify(workflow)}: ${named.map((w) => w.path).join(', ')}; give the file name instead`,
      };
    }
    id = String((named[0] as Workflow).id);
  }
  const query = new URLSearchParams({ per_page: '1' });
  if (spec.branch) query.set('branch', spec.branch);
  if (spec.headSha) query.set('head_sha', spec.headSha);
  if (spec.event) query.set('event', spec.event);
  const reply = await ask(`${repoPath(spec)}/actions/workflows/${id}/runs?${query}`, toRunList);
  if (reply.kind !== 'ok') return reply;
  const newest = (reply.data as Run[])[0];
  return newest ? { kind: 'run', run: newest, etag: undefined } : { kind: 'no-run' };
}

function describeTarget(gate: Gate): string {
  const s = gate.spec as Partial<Spec>;
  const what = s.runId !== undefined ? `run ${s.runId}` : `workflow ${JSON.stringify(s.workflow)}`;
  return `${what} of ${s.owner}/${s.repo}`;
}

/** Runs `job` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, job: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await job(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function checkToken(value: unknown, path: string): string | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  // The message never shows the value: it may be a real token with a typo.
  if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value))
    check.fail(
      'INVALID_OPTION',
      path,
      'must be a token of printable characters without spaces or line breaks (its value is not shown)',
    );
  return value;
}

function checkBaseUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    return check.fail(
      'INVALID_OPTION',
      'options.baseUrl',
      `must be an http(s) URL; got ${check.describe(value)}`,
    );
  }
  if (typeof value !== 'string' || (url.protocol !== 'https:' && url.protocol !== 'http:'))
    check.fail(
      'INVALID_OPTION',
      'options.baseUrl',
      `must be an http(s) URL; got ${check.describe(value)}`,
    );
  if (url.username || url.password || /[?#]/.test(value))
    check.fail(
      'INVALID_OPTION',
      'options.baseUrl',
      'must not carry credentials, a query or a fragment (give the token as options.token)',
    );
  return url.href.replace(/\/+$/, '');
}
