/**
 * Adversarial review tests for the gh:run evaluator: what the other test files do not pin down.
 * The review found seven bugs (token fragments in messages, retry-after on 5xx, rate limits after
 * an outage, failing lists starving runs, workflows past page one, base URLs ending in ? or #);
 * their tests pass now.
 */
import { ConfigError, type GateError } from '@belfry/core';
import {
  type GateDecision,
  type GateEvaluator,
  isGateDecision,
  type JsonObject,
} from '@belfry/core/gate';
import { type GitHubGateOptions, githubGate } from '@belfry/gate-github';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type FakeGitHub,
  type FaultRequest,
  secondaryRateLimitFault,
  startFakeGitHub,
} from './fakeGitHub';
import { GateBench, START } from './harness';

const TOKEN = 'ghp_s3cretTokenValue0123456789abcdefABCD'; // 40 characters
let gh: FakeGitHub;

beforeEach(async () => {
  gh = await startFakeGitHub({ token: TOKEN });
});
afterEach(async () => {
  await gh.close();
});

function bench(options: GitHubGateOptions = {}): GateBench {
  return new GateBench(githubGate({ token: TOKEN, baseUrl: gh.baseUrl, ...options }));
}

const runSpec = (runId: number, repo = 'api', owner = 'acme') => ({ owner, repo, runId });
const listPath = (repo = 'api') => `/repos/acme/${repo}/actions/runs`;
const runPath = (id: number, repo = 'api') => `/repos/acme/${repo}/actions/runs/${id}`;
const isList =
  (repo = 'api') =>
  (r: FaultRequest) =>
    r.path === listPath(repo);
const isRun = (id: number) => (r: FaultRequest) => r.path.endsWith(`/actions/runs/${id}`);

type Escalation = Extract<GateDecision, { kind: 'escalate' }>;
type Pending = Extract<GateDecision, { kind: 'pending' }>;

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** A fetch that rewrites the headers of every reply (after the fake answered). */
function tamperingFetch(edit: () => (headers: Headers) => void): typeof fetch {
  return async (input, init) => {
    const res = await globalThis.fetch(input, init);
    const headers = new Headers(res.headers);
    edit()(headers);
    const body = res.status === 304 ? null : await res.text();
    return new Response(body, { status: res.status, statusText: res.statusText, headers });
  };
}

/** A fetch that counts the requests awaiting their reply. */
function countingFetch() {
  const state = { inFlight: 0, max: 0 };
  const fetchFn: typeof fetch = async (input, init) => {
    state.inFlight++;
    state.max = Math.max(state.max, state.inFlight);
    try {
      return await globalThis.fetch(input, init);
    } finally {
      state.inFlight--;
    }
  };
  return { state, fetchFn };
}

describe('review: ETags across list and single-run requests', () => {
  it('the list and a single run keep separate validators; a run read through the list keeps its own for later', async () => {
    const x = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const b = bench(); // batchMinRuns: 2
    const gx = b.add(runSpec(x.id));
    await b.round();
    const etagX = b.get(gx.id).memo?.etag as string;
    expect(etagX).toMatch(/^W\/".+"$/);

    const y = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const gy = b.add(runSpec(y.id));
    await b.round(); // two runs waited on: one list request
    expect(gh.requests[1]).toMatchObject({ path: listPath(), status: 200 });
    expect(gh.requests[1]?.ifNoneMatch).toBeUndefined();
    expect(b.get(gx.id).memo).toMatchObject({ etag: etagX, status: 'queued' });

    await b.round(); // the list again: conditional on the list's validator, not on run x's
    expect(gh.requests[2]).toMatchObject({ path: listPath(), status: 304 });
    expect(gh.requests[2]?.ifNoneMatch).toMatch(/^W\/".+"$/);
    expect(gh.requests[2]?.ifNoneMatch).not.toBe(etagX);

    gh.updateRun(y.id, { status: 'completed', conclusion: 'success' });
    expect((await b.round()).get(gy.id)?.kind).toBe('close');
    expect(gh.requests[3]).toMatchObject({ path: listPath(), status: 200 });

    // x alone again: asked by itself, conditional on its own validator, and unchanged
    expect((await b.round()).get(gx.id)).toMatchObject({ kind: 'pending', memo: { etag: etagX } });
    expect(gh.requests[4]).toMatchObject({ path: runPath(x.id), status: 304, ifNoneMatch: etagX });
    expect(gh.charged).toBe(3);
  });

  it('a run that changed while read through the list is not rolled back by the stale single-run validator, across a restart too', async () => {
    const x = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const b = bench();
    const gx = b.add(runSpec(x.id));
    await b.round();
    const etagX = b.get(gx.id).memo?.etag as string;

    const y = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    b.add(runSpec(y.id));
    gh.updateRun(x.id, { status: 'in_progress' });
    await b.round(); // via the list
    expect(b.get(gx.id).memo).toMatchObject({ status: 'in_progress', etag: etagX });

    gh.updateRun(y.id, { status: 'completed', conclusion: 'success' });
    await b.round();
    b.evaluator = githubGate({ token: TOKEN, baseUrl: gh.baseUrl }); // a restart
    const decision = await b.round();
    expect(gh.requests.at(-1)).toMatchObject({
      path: runPath(x.id),
      ifNoneMatch: etagX,
      status: 200,
    });
    expect(decision.get(gx.id)).toMatchObject({ kind: 'pending', memo: { status: 'in_progress' } });
    const fresh = b.get(gx.id).memo?.etag;
    expect(fresh).not.toBe(etagX);
    await b.round();
    expect(gh.requests.at(-1)).toMatchObject({ status: 304, ifNoneMatch: fresh });
  });

  it('a 304 without an ETag keeps the old validator; a 304 with a new one adopts it', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    await b.decide(gate);
    const first = b.get(gate.id).memo?.etag as string;

    gh.script({ status: 304, body: '', match: isRun(run.id) }); // no etag header
    expect(await b.decide(gate)).toMatchObject({
      kind: 'pending',
      memo: { etag: first, status: 'queued' },
    });
    await b.decide(gate);
    expect(gh.requests[2]).toMatchObject({ ifNoneMatch: first, status: 304 });

    gh.script({ status: 304, body: '', headers: { etag: 'W/"rotated"' }, match: isRun(run.id) });
    expect(await b.decide(gate)).toMatchObject({ kind: 'pending', memo: { etag: 'W/"rotated"' } });
    await b.decide(gate);
    expect(gh.requests[4]?.ifNoneMatch).toBe('W/"rotated"');
  });

  it('a 304 to an unconditional request is a failed request (back-off), never a verdict', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({ status: 304, body: '' });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
    await b.clock.advance(1_000);
    expect((await b.decide(gate)).kind).toBe('close');
  });

  it('after a restart, a memo whose run was re-run meanwhile gets a 200 and the new attempt', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'failure',
    });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toMatchObject({ kind: 'escalate', memo: { runAttempt: 1 } });
    const etag = b.get(gate.id).memo?.etag as string;

    gh.updateRun(run.id, { status: 'in_progress', conclusion: null, runAttempt: 2 });
    b.evaluator = githubGate({ token: TOKEN, baseUrl: gh.baseUrl });
    expect(await b.decide(gate)).toMatchObject({
      kind: 'pending',
      memo: { runAttempt: 2, status: 'in_progress', conclusion: null },
    });
    expect(gh.requests[1]).toMatchObject({ ifNoneMatch: etag, status: 200 });

    gh.updateRun(run.id, { status: 'completed', conclusion: 'success' });
    b.evaluator = githubGate({ token: TOKEN, baseUrl: gh.baseUrl });
    expect(await b.decide(gate)).toMatchObject({
      kind: 'close',
      result: { runId: run.id, runAttempt: 2, conclusion: 'success' },
    });
  });
});

describe('review: which run, which repository', () => {
  it('the same run id in two repositories is two targets: the wrong one 404s alone, batched or not', async () => {
    const x = gh.addRun({ owner: 'acme', repo: 'api', status: 'in_progress' });
    const w = gh.addRun({ owner: 'acme', repo: 'web', status: 'queued' });
    const y = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });

    const single = bench({ batchMinRuns: 0 });
    const a = single.add(runSpec(x.id, 'api'));
    const wrong = single.add(runSpec(x.id, 'web'));
    let decisions = await single.round();
    expect(decisions.get(a.id)).toMatchObject({ kind: 'pending', memo: { runId: x.id } });
    const d = decisions.get(wrong.id) as Escalation;
    expect(d.kind).toBe('escalate');
    expect(d.reason).toContain(`run ${x.id} of acme/web`);
    expect(d.reason).toContain('404');
    expect(gh.requests).toHaveLength(2);

    gh.resetCounts();
    const batched = bench();
    const gates = [
      batched.add(runSpec(x.id, 'api')),
      batched.add(runSpec(y.id, 'api')),
      batched.add(runSpec(x.id, 'web')),
      batched.add(runSpec(w.id, 'web')),
    ];
    decisions = await batched.round();
    expect(gh.requests.map((r) => r.path).sort()).toEqual(
      [listPath('api'), listPath('web'), runPath(x.id, 'web')].sort(),
    );
    expect(gates.map((g) => decisions.get(g.id)?.kind)).toEqual([
      'pending',
      'pending',
      'escalate',
      'pending',
    ]);
    expect(decisions.get(gates[0]?.id as string)).toMatchObject({
      memo: { runId: x.id, status: 'in_progress' },
    });
  });

  it('owner/repo case differences share one request per run and one list per repository', async () => {
    const x = gh.addRun({ owner: 'acme', repo: 'api', status: 'in_progress' });
    const y = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const single = bench({ batchMinRuns: 0 });
    const g1 = single.add({ owner: 'Acme', repo: 'API', runId: x.id });
    const g2 = single.add({ owner: 'acme', repo: 'api', runId: x.id });
    const decisions = await single.round();
    expect(gh.requests).toHaveLength(1);
    for (const g of [g1, g2])
      expect(decisions.get(g.id)).toMatchObject({ kind: 'pending', memo: { runId: x.id } });

    gh.resetCounts();
    const batched = bench();
    const h1 = batched.add({ owner: 'ACME', repo: 'Api', runId: x.id });
    const h2 = batched.add({ owner: 'acme', repo: 'api', runId: y.id });
    const again = await batched.round();
    expect(gh.requests).toHaveLength(1);
    expect(gh.requests[0]?.path.toLowerCase()).toBe(listPath());
    expect(again.get(h1.id)).toMatchObject({ memo: { status: 'in_progress' } });
    expect(again.get(h2.id)).toMatchObject({ memo: { status: 'queued' } });
  });

  it('a run gate and a workflow gate pinned to the same run share one request', async () => {
    gh.addWorkflow('acme', 'api', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    const run = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 7, status: 'queued' });
    const b = bench({ batchMinRuns: 0 });
    const flow = b.add({ owner: 'acme', repo: 'api', workflow: 'ci.yml' });
    await b.round();
    expect(b.get(flow.id).memo).toMatchObject({ runId: run.id });
    b.add(runSpec(run.id));
    gh.resetCounts();
    await b.round();
    expect(gh.requests.map((r) => r.path)).toEqual([runPath(run.id)]);
  });
});

describe('review: rate limits and retry-after', () => {
  it('without rate-limit headers requests carry on; a rate-limit 403 without them still waits a minute', async () => {
    const runs = Array.from({ length: 5 }, () => gh.addRun({ owner: 'acme', repo: 'api' }));
    gh.setRateLimit({ remaining: 3, resetInSeconds: 600 });
    const strip = (h: Headers) => {
      for (const key of [...h.keys()]) if (key.startsWith('x-ratelimit')) h.delete(key);
    };
    const b = bench({ fetch: tamperingFetch(() => strip), batchMinRuns: 0, concurrency: 1 });
    const gates = runs.map((r) => b.add(runSpec(r.id)));
    const decisions = await b.round();
    expect(gh.requests.map((r) => r.status)).toEqual([200, 200, 200, 403]);
    expect(gates.slice(3).map((g) => decisions.get(g.id))).toEqual([
      { kind: 'pending', nextCheckAt: START + 60_000 },
      { kind: 'pending', nextCheckAt: START + 60_000 },
    ]);
    await b.clock.advance(59_999);
    await b.round();
    expect(gh.requests).toHaveLength(4);
    await b.clock.advance(1);
    await b.round();
    expect(gh.requests).toHaveLength(5);
  });

  it('garbage rate-limit headers are ignored: no NaN times, no endless waits, requests carry on', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'in_progress' });
    const garbage: Array<Record<string, string>> = [
      { 'x-ratelimit-remaining': 'lots', 'x-ratelimit-reset': 'tomorrow' },
      { 'x-ratelimit-remaining': '-1', 'x-ratelimit-reset': '1e3' },
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': 'soon', date: 'not a date' },
      { 'x-ratelimit-remaining': '4999, 4999', 'x-ratelimit-reset': '' },
    ];
    let round = 0;
    const b = bench({
      fetch: tamperingFetch(() => (h) => {
        for (const [k, v] of Object.entries(garbage[round] ?? {})) h.set(k, v);
      }),
    });
    const gate = b.add(runSpec(run.id));
    for (round = 0; round < garbage.length + 1; round++) {
      const decision = await b.decide(gate);
      expect(isGateDecision(decision)).toBe(true);
      expect(decision.kind).toBe('pending');
      const at = (decision as Pending).nextCheckAt;
      if (at !== undefined && at !== null) expect(at).toBeLessThanOrEqual(START + 3_600_000);
    }
    expect(gh.requests).toHaveLength(garbage.length + 1);
  });

  it('retry-after as an HTTP date is not read as 0 or NaN: it waits a finite time of at least that long', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({
      ...secondaryRateLimitFault(30),
      headers: { 'retry-after': new Date(Date.now() + 30_000).toUTCString() },
    });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    const decision = (await b.decide(gate)) as Pending;
    expect(decision.kind).toBe('pending');
    const at = decision.nextCheckAt as number;
    expect(Number.isFinite(at)).toBe(true);
    expect(at).toBeGreaterThanOrEqual(START + 30_000);
    expect(at).toBeLessThanOrEqual(START + 3_600_000);
    await b.clock.advance(at - START - 1);
    await b.decide(gate);
    expect(gh.requests).toHaveLength(1);
    await b.clock.advance(1);
    await b.decide(gate);
    expect(gh.requests).toHaveLength(2);
  });

  it('a 403 permission error escalates its gate and blocks neither the other requests nor the next evaluation', async () => {
    const locked = gh.addRun({ owner: 'acme', repo: 'locked' });
    const open = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({
      status: 403,
      body: JSON.stringify({
        message: 'Resource not accessible by personal access token',
        documentation_url: 'https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run',
      }),
      match: (r) => r.path.includes('/locked/'),
      times: 2,
    });
    const b = bench({ concurrency: 1, batchMinRuns: 0 });
    const gl = b.add(runSpec(locked.id, 'locked'));
    const go = b.add(runSpec(open.id));
    for (const expected of [2, 4]) {
      const decisions = await b.round();
      const d = decisions.get(gl.id) as Escalation;
      expect(d.kind).toBe('escalate');
      expect(d.reason).toContain('403');
      expect(d.reason).toContain('Resource not accessible');
      expect(decisions.get(go.id)).toMatchObject({ kind: 'pending', memo: { status: 'queued' } });
      expect(gh.requests).toHaveLength(expected);
    }
  });

  it('a 503 with retry-after is not asked again before retry-after has passed', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({ status: 503, headers: { 'retry-after': '120' } });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    const decision = (await b.decide(gate)) as Pending;
    expect(decision.kind).toBe('pending');
    expect(decision.nextCheckAt).toBeGreaterThanOrEqual(START + 120_000);
    await b.clock.advance(60_000);
    await b.decide(gate);
    expect(gh.requests).toHaveLength(1);
  });
});

describe('review: refusals and outages', () => {
  it('410 and 422 escalate their gates, are no outage (even with unavailableAfterMs: 0) and cause no back-off', async () => {
    const fine = gh.addRun({ owner: 'acme', repo: 'api' });
    const gone = gh.addRun({ owner: 'acme', repo: 'api' });
    const bad = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({ status: 410, match: isRun(gone.id), times: 2 });
    gh.script({
      status: 422,
      body: JSON.stringify({ message: 'Validation Failed' }),
      match: isRun(bad.id),
      times: 2,
    });
    const b = bench({ batchMinRuns: 0, concurrency: 1, unavailableAfterMs: 0 });
    const gf = b.add(runSpec(fine.id));
    const gg = b.add(runSpec(gone.id));
    const gb = b.add(runSpec(bad.id));
    for (const expected of [3, 6]) {
      const decisions = await b.round();
      expect(decisions.get(gf.id)?.kind).toBe('pending');
      expect((decisions.get(gg.id) as Escalation).reason).toContain('410');
      expect((decisions.get(gb.id) as Escalation).reason).toContain('422 Validation Failed');
      expect(gh.requests).toHaveLength(expected);
    }
  });

  it('the outage clock restarts after a success', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench({ backoffBaseMs: 1_000, backoffMaxMs: 1_000, unavailableAfterMs: 10_000 });
    const gate = b.add(runSpec(run.id));
    gh.script({ status: 503 });
    await b.decide(gate); // failing since START
    await b.clock.advance(5_000);
    expect((await b.decide(gate)).kind).toBe('pending'); // 200: the outage is over
    await b.clock.advance(3_000);
    gh.script({ status: 503 });
    await b.decide(gate); // failing since START + 8 s
    await b.clock.advance(4_000);
    gh.script({ status: 503 });
    expect((await b.decide(gate)).kind).toBe('pending'); // 4 s of outage, not 12
    await b.clock.advance(6_000);
    gh.script({ status: 503 });
    const error = await failureOf(b.decide(gate));
    expect((error as GateError).code).toBe('UNAVAILABLE');
    expect(error.message).toContain(new Date(START + 8_000).toISOString());
    expect(gh.requests.map((r) => r.status)).toEqual([503, 200, 503, 503, 503]);
  });

  it('a rate-limit reply after a 5xx ends the outage: waiting for the reset is not UNAVAILABLE', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench({ unavailableAfterMs: 60_000 });
    const gate = b.add(runSpec(run.id));
    gh.script({ status: 502 });
    expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
    await b.clock.advance(1_000);
    gh.setRateLimit({ remaining: 0, resetInSeconds: 600 });
    const limited = (await b.decide(gate)) as Pending;
    expect(gh.requests[1]?.status).toBe(403); // GitHub answered: it is up, and says wait
    expect(limited.nextCheckAt).toBeGreaterThan(START + 590_000);
    await b.clock.advance(119_000);
    await expect(b.decide(gate)).resolves.toEqual({
      kind: 'pending',
      nextCheckAt: limited.nextCheckAt,
    });
    expect(gh.requests).toHaveLength(2);
  });

  it('a list endpoint that keeps failing does not starve runs the single-run endpoint answers', async () => {
    const runs = [1, 2].map(() =>
      gh.addRun({ owner: 'acme', repo: 'api', status: 'completed', conclusion: 'success' }),
    );
    gh.script({ status: 502, times: 1_000, match: isList() });
    const b = bench({ backoffBaseMs: 1_000, backoffMaxMs: 4_000, unavailableAfterMs: 3_600_000 });
    for (const run of runs) b.add(runSpec(run.id));
    for (let i = 0; i < 10 && b.open().length > 0; i++) {
      await b.round();
      await b.clock.advance(5_000);
    }
    // Every evaluation asks the list first; its 502 backs the whole client off, so the runs
    // themselves are never asked.
    expect(gh.requests.some((r) => r.path.startsWith(`${listPath()}/`))).toBe(true);
    expect(b.open()).toHaveLength(0);
  });
});

describe('review: concurrency, budget, abort', () => {
  it('never more than `concurrency` single-run requests in flight', async () => {
    const runs = Array.from({ length: 7 }, () => gh.addRun({ owner: 'acme', repo: 'api' }));
    const counter = countingFetch();
    const b = bench({ fetch: counter.fetchFn, batchMinRuns: 0, concurrency: 2 });
    for (const run of runs) b.add(runSpec(run.id));
    gh.script({ hold: true, times: 100 });
    const evaluation = b.round();
    for (const n of [2, 4, 6, 7]) {
      await gh.waitForRequests(n);
      expect(counter.state.inFlight).toBeLessThanOrEqual(2);
      expect(gh.heldCount).toBeLessThanOrEqual(2);
      gh.releaseHeld();
    }
    expect((await evaluation).size).toBe(7);
    expect(counter.state.max).toBe(2);
    expect(gh.requests).toHaveLength(7);
  });

  it('never more than `concurrency` list requests in flight', async () => {
    const repos = ['a', 'b', 'c', 'd', 'e'];
    const counter = countingFetch();
    const b = bench({ fetch: counter.fetchFn, concurrency: 2 });
    for (const repo of repos)
      for (let i = 0; i < 2; i++) b.add(runSpec(gh.addRun({ owner: 'acme', repo }).id, repo));
    gh.script({ hold: true, times: 100 });
    const evaluation = b.round();
    for (const n of [2, 4, 5]) {
      await gh.waitForRequests(n);
      expect(counter.state.inFlight).toBeLessThanOrEqual(2);
      gh.releaseHeld();
    }
    expect((await evaluation).size).toBe(10);
    expect(counter.state.max).toBe(2);
    expect(gh.requests.map((r) => r.path).sort()).toEqual(repos.map((r) => listPath(r)).sort());
  });

  it('the request budget counts list requests: a repository over it is skipped whole, not asked run by run', async () => {
    const b = bench({ maxRequestsPerEvaluation: 2 });
    const byRepo = new Map<string, string[]>();
    for (const repo of ['a', 'b', 'c']) {
      const ids = [1, 2].map(
        () => b.add(runSpec(gh.addRun({ owner: 'acme', repo, status: 'in_progress' }).id, repo)).id,
      );
      byRepo.set(repo, ids);
    }
    const decisions = await b.round();
    expect(gh.requests.map((r) => r.path).sort()).toEqual([listPath('a'), listPath('b')]);
    for (const id of [...(byRepo.get('a') ?? []), ...(byRepo.get('b') ?? [])])
      expect(decisions.get(id)).toMatchObject({ kind: 'pending', memo: { status: 'in_progress' } });
    for (const id of byRepo.get('c') ?? [])
      expect(decisions.get(id)).toEqual({ kind: 'pending', nextCheckAt: START });
    // First in line next time: given those alone, one list request for them.
    await b.round((byRepo.get('c') ?? []).map((id) => b.get(id)));
    expect(gh.requests.map((r) => r.path).at(-1)).toBe(listPath('c'));
    expect(gh.requests).toHaveLength(3);
  });

  it('an abort during a list request rejects, sends nothing more, leaves no timer and no back-off', async () => {
    const runs = [1, 2].map(() => gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' }));
    const b = bench();
    const gates = runs.map((r) => b.add(runSpec(r.id)));
    gh.script({ hold: true, match: isList() });
    const controller = new AbortController();
    const reason = new Error('the Deacon ran out of time');
    const evaluation = b.round(undefined, controller.signal);
    await gh.waitForRequests(1);
    controller.abort(reason);
    await expect(evaluation).rejects.toBe(reason);
    await vi.waitFor(() => expect(gh.requests[0]?.status).toBe(0));
    expect(gh.requests).toHaveLength(1);
    expect(b.clock.pendingTimers()).toBe(0);

    const decisions = await b.round(); // at once: an abort is not a failure to back off from
    expect(gh.requests[1]).toMatchObject({ path: listPath(), status: 200 });
    for (const g of gates)
      expect(decisions.get(g.id)).toMatchObject({ kind: 'pending', memo: { status: 'queued' } });
    expect(b.clock.pendingTimers()).toBe(0);
  });
});

describe('review: workflows', () => {
  it('a name with spaces, punctuation and unicode is matched exactly, then asked for by numeric id', async () => {
    const name = 'Build & Test ✓ — Ünïcode';
    gh.addWorkflow('acme', 'api', { id: 42, name, path: '.github/workflows/build.yml' });
    gh.addWorkflow('acme', 'api', {
      id: 43,
      name: 'Build & Test',
      path: '.github/workflows/b2.yml',
    });
    const run = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 42, status: 'queued' });
    gh.addRun({ owner: 'acme', repo: 'api', workflowId: 43, status: 'queued' });
    const b = bench();
    expect(await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: name }))).toMatchObject({
      kind: 'pending',
      memo: { runId: run.id },
    });
    expect(gh.requests.map((r) => r.path)).toEqual([
      '/repos/acme/api/actions/workflows',
      '/repos/acme/api/actions/workflows/42/runs',
    ]);
  });

  it('a workflow file given as a path, or with a unicode name, resolves by its file name', async () => {
    gh.addWorkflow('acme', 'api', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    gh.addWorkflow('acme', 'api', {
      id: 8,
      name: 'Déploiement',
      path: '.github/workflows/déploiement.yaml',
    });
    const ci = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 7, status: 'queued' });
    const deploy = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 8, status: 'queued' });
    const b = bench();
    expect(
      await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml' })),
    ).toMatchObject({ kind: 'pending', memo: { runId: ci.id } });
    expect(gh.requests[0]?.path).toBe('/repos/acme/api/actions/workflows/ci.yml/runs');
    expect(
      await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: 'déploiement.yaml' })),
    ).toMatchObject({ kind: 'pending', memo: { runId: deploy.id } });
  });

  it('two workflows with the same name escalate, naming both files', async () => {
    gh.addWorkflow('acme', 'api', { id: 1, name: 'CI', path: '.github/workflows/ci.yml' });
    gh.addWorkflow('acme', 'api', { id: 2, name: 'CI', path: '.github/workflows/ci-old.yml' });
    const b = bench();
    const d = (await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: 'CI' }))) as Escalation;
    expect(d.kind).toBe('escalate');
    expect(d.reason).toContain('.github/workflows/ci.yml');
    expect(d.reason).toContain('.github/workflows/ci-old.yml');
  });

  it('a workflow name beyond the first 100 workflows of a repository is still found', async () => {
    for (let id = 1; id <= 120; id++)
      gh.addWorkflow('acme', 'api', {
        id,
        name: `Job ${id}`,
        path: `.github/workflows/j${id}.yml`,
      });
    const run = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 120, status: 'queued' });
    const b = bench();
    expect(
      await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: 'Job 120' })),
    ).toMatchObject({ kind: 'pending', memo: { runId: run.id } });
  });
});

describe('review: secrets and sizes', () => {
  it('a token echoed in a 5xx or 404 JSON message is redacted', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench({ unavailableAfterMs: 0 });
    const gate = b.add(runSpec(run.id));
    gh.script({
      status: 502,
      body: JSON.stringify({ message: `upstream refused Authorization: Bearer ${TOKEN}` }),
    });
    const error = await failureOf(b.decide(gate));
    expect((error as GateError).code).toBe('UNAVAILABLE');
    expect(error.message).toContain('502 upstream refused');
    expect(error.message).not.toContain(TOKEN);
    await b.clock.advance(1_000);
    gh.script({ status: 404, body: JSON.stringify({ message: `no run for ${TOKEN}` }) });
    const d = (await b.decide(gate)) as Escalation;
    expect(d.kind).toBe('escalate');
    expect(d.reason).toContain('no run for');
    expect(d.reason).not.toContain(TOKEN);
  });

  it('a token at the start of a malformed 200 body does not reach the UNAVAILABLE message', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({ status: 200, body: `${TOKEN} is not a JSON body` });
    const b = bench({ unavailableAfterMs: 0 });
    const error = await failureOf(b.decide(b.add(runSpec(run.id))));
    expect((error as GateError).code).toBe('UNAVAILABLE');
    expect(error.message).toContain('malformed');
    expect(error.message).not.toContain(TOKEN.slice(0, 16));
  });

  it('a token cut by the 300-character message limit is not leaked in part', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({
      status: 422,
      body: JSON.stringify({ message: `${'x'.repeat(280)} ${TOKEN}` }),
    });
    const b = bench();
    const d = (await b.decide(b.add(runSpec(run.id)))) as Escalation;
    expect(d.kind).toBe('escalate');
    expect(d.reason).not.toContain(TOKEN.slice(0, 12));
  });

  it('a huge reply (4 MB) is read; the memo keeps only the small fields', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'in_progress',
      displayTitle: 'x'.repeat(4_000_000),
    });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toMatchObject({ kind: 'pending', memo: { runId: run.id } });
    expect(JSON.stringify(b.get(gate.id).memo as JsonObject).length).toBeLessThan(1_000);
    gh.updateRun(run.id, { status: 'completed', conclusion: 'success' });
    expect((await b.decide(gate)).kind).toBe('close');
  });

  it('a huge error body (JSON or not) gives a bounded message', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench({ unavailableAfterMs: 0 });
    const gate = b.add(runSpec(run.id));
    gh.script({ status: 502, body: JSON.stringify({ message: 'y'.repeat(3_000_000) }) });
    const json = await failureOf(b.decide(gate));
    expect((json as GateError).code).toBe('UNAVAILABLE');
    expect(json.message.length).toBeLessThan(2_000);
    await b.clock.advance(1_000);
    gh.script({ status: 200, body: `<html>${'z'.repeat(3_000_000)}` });
    const html = await failureOf(b.decide(gate));
    expect((html as GateError).code).toBe('UNAVAILABLE');
    expect(html.message.length).toBeLessThan(2_000);
  });
});

describe('review: options', () => {
  it.each(['?', '#'])(
    'a baseUrl ending in an empty %s is refused, or still reaches /repos/...',
    async (suffix) => {
      const run = gh.addRun({
        owner: 'acme',
        repo: 'api',
        status: 'completed',
        conclusion: 'success',
      });
      let evaluator: GateEvaluator;
      try {
        evaluator = githubGate({ token: TOKEN, baseUrl: `${gh.baseUrl}/${suffix}` });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return;
      }
      const b = new GateBench(evaluator);
      expect((await b.decide(b.add(runSpec(run.id)))).kind).toBe('close');
      expect(gh.requests[0]?.path).toBe(runPath(run.id));
    },
  );
});

describe('review, round two: what the fixes added', () => {
  it('a 404 on the list (a private repository) stands for all its runs: no request per run', async () => {
    const runs = [1, 2, 3].map(() => gh.addRun({ owner: 'acme', repo: 'api' }));
    gh.makePrivate('acme', 'api');
    const b = bench();
    for (const run of runs) b.add(runSpec(run.id));
    const decisions = await b.round();
    expect(gh.requests).toHaveLength(1);
    expect([...decisions.values()].every((d) => d.kind === 'escalate')).toBe(true);
  });

  it('two gates naming workflows of one repository list its workflows once', async () => {
    gh.addWorkflow('acme', 'api', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    gh.addWorkflow('acme', 'api', {
      id: 9,
      name: 'Release',
      path: '.github/workflows/release.yml',
    });
    gh.addRun({ owner: 'acme', repo: 'api', workflowId: 7 });
    gh.addRun({ owner: 'acme', repo: 'api', workflowId: 9 });
    const b = bench();
    b.add({ owner: 'acme', repo: 'api', workflow: 'CI' });
    b.add({ owner: 'acme', repo: 'api', workflow: 'Release' });
    await b.round();
    expect(gh.requests.filter((r) => r.path === '/repos/acme/api/actions/workflows')).toHaveLength(
      1,
    );
  });

  it('a single-run reply about another run is a bad reply, not a verdict', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const other = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({
      status: 200,
      body: JSON.stringify({ id: other.id, status: 'completed', conclusion: 'success' }),
    });
    const b = bench();
    const decision = await b.decide(b.add(runSpec(run.id)));
    expect(decision).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
  });

  it('retry-after as an HTTP date is read against the reply’s Date', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const at = new Date(Math.ceil(Date.now() / 1_000) * 1_000 + 120_000).toUTCString();
    gh.script({ status: 429, body: '{"message":"slow down"}', headers: { 'retry-after': at } });
    const b = bench();
    const decision = (await b.decide(b.add(runSpec(run.id)))) as { nextCheckAt: number };
    expect(decision.nextCheckAt - START).toBeGreaterThanOrEqual(118_000);
    expect(decision.nextCheckAt - START).toBeLessThanOrEqual(122_000);
  });

  it('a wait a header asks for is capped at GitHub’s hour, whatever it says', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({ status: 429, body: '{"message":"no"}', headers: { 'retry-after': '99999999999' } });
    const b = bench();
    const decision = (await b.decide(b.add(runSpec(run.id)))) as { nextCheckAt: number };
    expect(decision.nextCheckAt - START).toBeLessThanOrEqual(3_660_000);
  });

  it('a user agent that cannot be a header, and a bad GITHUB_TOKEN, are refused naming their source', () => {
    expect(() => githubGate({ token: null, userAgent: 'me\r\nX: 1' })).toThrow(
      /options\.userAgent/,
    );
    vi.stubEnv('GITHUB_TOKEN', `${TOKEN}\n`);
    try {
      expect(() => githubGate({ baseUrl: gh.baseUrl })).toThrow(/GITHUB_TOKEN \(the environment\)/);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('concurrent failures back off once, not once per request in flight', async () => {
    const runs = [1, 2, 3, 4].map(() => gh.addRun({ owner: 'acme', repo: 'api' }));
    gh.script({ status: 502, times: 4 });
    const b = bench({ batchMinRuns: 0, concurrency: 4, backoffBaseMs: 1_000 });
    for (const run of runs) b.add(runSpec(run.id));
    const decisions = await b.round();
    expect(gh.requests).toHaveLength(4);
    for (const d of decisions.values())
      expect(d).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
  });
});
