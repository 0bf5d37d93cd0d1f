import { ConfigError, GateError } from '@belfry/core';
import type { GateDecision } from '@belfry/core/gate';
import { type GitHubGateOptions, githubGate } from '@belfry/gate-github';
import type { SimulatedClock } from '@belfry/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type FakeGitHub, secondaryRateLimitFault, startFakeGitHub } from './fakeGitHub';
import { GateBench, START } from './harness';

const TOKEN = 'ghp_s3cretTokenValue0123456789abcdefABCD';
let gh: FakeGitHub;

beforeEach(async () => {
  gh = await startFakeGitHub({ token: TOKEN });
});
afterEach(async () => {
  await gh.close();
});

function bench(options: GitHubGateOptions = {}, clock?: SimulatedClock): GateBench {
  return new GateBench(githubGate({ token: TOKEN, baseUrl: gh.baseUrl, ...options }), clock);
}

const runSpec = (runId: number, repo = 'api') => ({ owner: 'acme', repo, runId });
const charged = () => gh.requests.filter((r) => r.charged).length;

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('githubGate: statuses and conclusions', () => {
  it.each(['requested', 'queued', 'pending', 'waiting', 'in_progress'])(
    'a run %s is pending, and the memo records what was seen',
    async (status) => {
      const run = gh.addRun({ owner: 'acme', repo: 'api', status, runAttempt: 2 });
      const b = bench();
      const decision = await b.decide(b.add(runSpec(run.id)));
      expect(decision).toMatchObject({
        kind: 'pending',
        memo: { runId: run.id, runAttempt: 2, status, conclusion: null },
      });
    },
  );

  it('a status nobody knows fails closed: escalated, never passed', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'hibernating' });
    const b = bench();
    const decision = await b.decide(b.add(runSpec(run.id)));
    expect(decision.kind).toBe('escalate');
    expect((decision as { reason: string }).reason).toContain('"hibernating"');
  });

  it('success closes with the run, its attempt, conclusion and URL', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    const b = bench();
    expect(await b.decide(b.add(runSpec(run.id)))).toEqual({
      kind: 'close',
      result: {
        runId: run.id,
        runAttempt: 1,
        conclusion: 'success',
        url: `https://github.com/acme/api/actions/runs/${run.id}`,
        headSha: run.headSha,
      },
    });
  });

  const failing = [
    'failure',
    'timed_out',
    'startup_failure',
    'action_required',
    'cancelled',
    'stale',
    'neutral',
    'skipped',
    'exploded',
    null,
  ];
  it.each(failing)('%s escalates by default and keeps the gate open', async (conclusion) => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'completed', conclusion });
    const b = bench();
    const decision = await b.decide(b.add(runSpec(run.id)));
    expect(decision.kind).toBe('escalate');
    const reason = (decision as { reason: string }).reason;
    expect(reason).toContain(`run ${run.id} (attempt 1)`);
    if (conclusion === 'exploded') expect(reason).toContain('does not know');
    if (conclusion === null) expect(reason).toContain('without a conclusion');
  });

  it.each(failing)("%s closes the gate as failed with onFailure: 'close'", async (conclusion) => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'completed', conclusion });
    const b = bench({ onFailure: 'close' });
    const decision = await b.decide(b.add(runSpec(run.id)));
    expect(decision).toMatchObject({
      kind: 'close',
      result: { runId: run.id, conclusion: conclusion ?? 'none' },
      failure: expect.stringContaining(`run ${run.id} (attempt 1)`),
    });
  });

  it('neutral and skipped pass when configured to', async () => {
    const neutral = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'neutral',
    });
    const skipped = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'skipped',
    });
    const b = bench({ neutral: 'pass', skipped: 'pass' });
    for (const run of [neutral, skipped]) {
      const decision = await b.decide(b.add(runSpec(run.id)));
      expect(decision.kind).toBe('close');
      expect((decision as { failure?: string }).failure).toBeUndefined();
    }
  });

  it('a re-run keeps the id: the escalation of attempt 1 gives way to pending, then attempt 2 closes it', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'failure',
    });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toMatchObject({ kind: 'escalate', memo: { runAttempt: 1 } });
    gh.updateRun(run.id, { status: 'queued', conclusion: null, runAttempt: 2 });
    expect(await b.decide(gate)).toMatchObject({
      kind: 'pending',
      memo: { runAttempt: 2, status: 'queued' },
    });
    gh.updateRun(run.id, { status: 'completed', conclusion: 'success' });
    expect(await b.decide(gate)).toMatchObject({
      kind: 'close',
      result: { runAttempt: 2, conclusion: 'success' },
    });
  });
});

describe('githubGate: requests', () => {
  it('sends the token, the API version, JSON accept and a user agent; anonymous with token: null', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench({ userAgent: 'acme-town' });
    await b.decide(b.add(runSpec(run.id)));
    expect(gh.requests[0]).toMatchObject({
      path: `/repos/acme/api/actions/runs/${run.id}`,
      authorization: `Bearer ${TOKEN}`,
      accept: 'application/vnd.github+json',
      apiVersion: '2022-11-28',
      userAgent: 'acme-town',
    });
    const anon = new GateBench(githubGate({ token: null, baseUrl: gh.baseUrl }));
    // The fake wants a token: the 401 fails the evaluation, once, for the whole evaluator.
    const error = await failureOf(anon.decide(anon.add(runSpec(run.id))));
    expect((error as GateError).code).toBe('UNAUTHORIZED');
    expect(gh.requests[1]?.authorization).toBeUndefined();
  });

  it('reads the token from GITHUB_TOKEN when none is given', async () => {
    vi.stubEnv('GITHUB_TOKEN', TOKEN);
    try {
      const run = gh.addRun({ owner: 'acme', repo: 'api' });
      const b = new GateBench(githubGate({ baseUrl: gh.baseUrl }));
      expect((await b.decide(b.add(runSpec(run.id)))).kind).toBe('pending');
      expect(gh.requests[0]?.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('works against a GitHub Enterprise base URL (/api/v3)', async () => {
    const ghes = await startFakeGitHub({ token: TOKEN, prefix: '/api/v3' });
    try {
      const run = ghes.addRun({
        owner: 'acme',
        repo: 'api',
        status: 'completed',
        conclusion: 'success',
      });
      expect(ghes.baseUrl).toMatch(/\/api\/v3$/);
      const b = new GateBench(githubGate({ token: TOKEN, baseUrl: `${ghes.baseUrl}/` }));
      expect((await b.decide(b.add(runSpec(run.id)))).kind).toBe('close');
    } finally {
      await ghes.close();
    }
  });

  it('asks once per distinct run however many gates wait on it', async () => {
    const runs = [1, 2, 3, 4, 5].map(() => gh.addRun({ owner: 'acme', repo: 'api' }));
    const b = bench({ batchMinRuns: 0 });
    for (let i = 0; i < 50; i++) b.add(runSpec((runs[i % 5] as { id: number }).id));
    const decisions = await b.round();
    expect(decisions.size).toBe(50);
    expect(gh.requests).toHaveLength(5);
    expect(new Set(gh.requests.map((r) => r.path)).size).toBe(5);
  });

  it('conditional requests: a 304 is charged nothing; a change is seen at once', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'in_progress' });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    await b.decide(gate);
    expect(charged()).toBe(1);
    const etag = b.get(gate.id).memo?.etag as string;
    expect(etag).toMatch(/^W\/".+"$/);
    for (let i = 0; i < 5; i++) expect((await b.decide(gate)).kind).toBe('pending');
    expect(gh.requests.map((r) => r.status)).toEqual([200, 304, 304, 304, 304, 304]);
    expect(gh.requests.slice(1).every((r) => r.ifNoneMatch === etag)).toBe(true);
    expect(charged()).toBe(1);
    gh.updateRun(run.id, { status: 'completed', conclusion: 'success' });
    expect((await b.decide(gate)).kind).toBe('close');
    expect(charged()).toBe(2);
  });

  it('after a restart the ETag kept in the memo makes the first request conditional too', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api', status: 'queued' });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    await b.decide(gate);
    b.evaluator = githubGate({ token: TOKEN, baseUrl: gh.baseUrl }); // a new process
    expect(await b.decide(gate)).toMatchObject({ kind: 'pending', memo: { status: 'queued' } });
    expect(gh.requests.map((r) => r.status)).toEqual([200, 304]);
    expect(charged()).toBe(1);
  });

  it('batches: one list request for a repository whose waited runs are among its latest 100', async () => {
    const runs = Array.from({ length: 20 }, () => gh.addRun({ owner: 'acme', repo: 'api' }));
    const other = gh.addRun({ owner: 'acme', repo: 'web' });
    const b = bench();
    for (const run of runs) b.add(runSpec(run.id));
    b.add(runSpec(other.id, 'web'));
    await b.round();
    expect(gh.requests.map((r) => `${r.path}?${r.query}`).sort()).toEqual([
      '/repos/acme/api/actions/runs?per_page=100',
      `/repos/acme/web/actions/runs/${other.id}?`,
    ]);
    // Nothing changed: one 304 for the list, one for the lone run; nothing charged.
    gh.resetCounts();
    await b.round();
    expect(gh.requests.map((r) => r.status)).toEqual([304, 304]);
    expect(charged()).toBe(0);
    gh.updateRun((runs[3] as { id: number }).id, { status: 'completed', conclusion: 'success' });
    const decisions = await b.round();
    expect([...decisions.values()].filter((d) => d.kind === 'close')).toHaveLength(1);
  });

  it('runs older than the latest 100 are asked for one by one; the list is skipped when none is in it', async () => {
    const old = [
      gh.addRun({ owner: 'acme', repo: 'api' }),
      gh.addRun({ owner: 'acme', repo: 'api' }),
    ];
    for (let i = 0; i < 150; i++) gh.addRun({ owner: 'acme', repo: 'api' });
    const b = bench();
    for (const run of old) b.add(runSpec(run.id));
    await b.round();
    expect(gh.requests.map((r) => r.path).sort()).toEqual(
      [
        '/repos/acme/api/actions/runs',
        `/repos/acme/api/actions/runs/${old[0]?.id}`,
        `/repos/acme/api/actions/runs/${old[1]?.id}`,
      ].sort(),
    );
    gh.resetCounts();
    await b.round();
    // The evaluator knows the list's window now: both runs are older, so no list request.
    expect(gh.requests.map((r) => r.path).sort()).toEqual(
      [
        `/repos/acme/api/actions/runs/${old[0]?.id}`,
        `/repos/acme/api/actions/runs/${old[1]?.id}`,
      ].sort(),
    );
  });

  it('keeps to its request budget per evaluation; the rest are first in line next time', async () => {
    const runs = Array.from({ length: 10 }, () => gh.addRun({ owner: 'acme', repo: 'api' }));
    const b = bench({ batchMinRuns: 0, maxRequestsPerEvaluation: 3 });
    for (const run of runs) b.add(runSpec(run.id));
    const decisions = await b.round();
    expect(gh.requests).toHaveLength(3);
    const waiting = [...decisions.values()].filter(
      (d) => d.kind === 'pending' && d.nextCheckAt === b.clock.now(),
    );
    expect(waiting).toHaveLength(7);
  });
});

describe('githubGate: workflows', () => {
  it('a workflow file resolves to its newest run, which is pinned: a newer run later does not move the gate', async () => {
    gh.addWorkflow('acme', 'api', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    gh.addRun({
      owner: 'acme',
      repo: 'api',
      workflowId: 7,
      status: 'completed',
      conclusion: 'failure',
    });
    const newest = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 7, status: 'in_progress' });
    gh.addRun({ owner: 'acme', repo: 'api', workflowId: 8, status: 'queued' });
    const b = bench();
    const gate = b.add({ owner: 'acme', repo: 'api', workflow: 'ci.yml' });
    expect(await b.decide(gate)).toMatchObject({ kind: 'pending', memo: { runId: newest.id } });
    expect(gh.requests[0]?.path).toBe('/repos/acme/api/actions/workflows/ci.yml/runs');
    gh.addRun({ owner: 'acme', repo: 'api', workflowId: 7, status: 'queued' });
    gh.updateRun(newest.id, { status: 'completed', conclusion: 'success' });
    expect(await b.decide(gate)).toMatchObject({ kind: 'close', result: { runId: newest.id } });
    expect(gh.requests[1]?.path).toBe(`/repos/acme/api/actions/runs/${newest.id}`);
  });

  it('a workflow name is looked up among the repository’s workflows; an unknown name is escalated with the names there are', async () => {
    gh.addWorkflow('acme', 'api', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    gh.addWorkflow('acme', 'api', {
      id: 9,
      name: 'Release',
      path: '.github/workflows/release.yml',
    });
    const run = gh.addRun({ owner: 'acme', repo: 'api', workflowId: 9, status: 'queued' });
    const b = bench();
    expect(
      await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: 'Release' })),
    ).toMatchObject({
      kind: 'pending',
      memo: { runId: run.id },
    });
    const unknown = await b.decide(b.add({ owner: 'acme', repo: 'api', workflow: 'Deploy' }));
    expect(unknown.kind).toBe('escalate');
    expect((unknown as { reason: string }).reason).toContain('CI (.github/workflows/ci.yml)');
  });

  it('narrowed to a commit, a workflow with no run yet is pending until the run appears', async () => {
    const sha = 'a'.repeat(40);
    gh.addRun({
      owner: 'acme',
      repo: 'api',
      workflowId: 1,
      status: 'completed',
      conclusion: 'success',
    });
    const b = bench();
    const gate = b.add({ owner: 'acme', repo: 'api', workflow: '1', headSha: sha });
    expect(await b.decide(gate)).toEqual({ kind: 'pending' });
    expect(gh.requests[0]?.query).toContain(`head_sha=${sha}`);
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      workflowId: 1,
      headSha: sha,
      status: 'queued',
    });
    expect(await b.decide(gate)).toMatchObject({ kind: 'pending', memo: { runId: run.id } });
  });
});

describe('githubGate: when GitHub says no', () => {
  it('a private repository (404) escalates that gate alone, and no message carries the token', async () => {
    const mine = gh.addRun({ owner: 'acme', repo: 'api' });
    const theirs = gh.addRun({ owner: 'other', repo: 'secret' });
    gh.makePrivate('other', 'secret');
    const b = bench();
    const a = b.add(runSpec(mine.id));
    const s = b.add({ owner: 'other', repo: 'secret', runId: theirs.id });
    const decisions = await b.round();
    expect(decisions.get(a.id)?.kind).toBe('pending');
    const d = decisions.get(s.id) as Extract<GateDecision, { kind: 'escalate' }>;
    expect(d.kind).toBe('escalate');
    expect(d.reason).toContain('404');
    expect(d.reason).toContain('private');
    expect(JSON.stringify([...decisions])).not.toContain(TOKEN);
  });

  it('a bad token fails the evaluation with UNAUTHORIZED, once, without the token in the message', async () => {
    const runs = [1, 2, 3].map(() => gh.addRun({ owner: 'acme', repo: 'api' }));
    const b = new GateBench(
      githubGate({ token: `${TOKEN}x`, baseUrl: gh.baseUrl, concurrency: 1, batchMinRuns: 0 }),
    );
    for (const run of runs) b.add(runSpec(run.id));
    const error = await failureOf(b.round());
    expect(error).toBeInstanceOf(GateError);
    expect((error as GateError).code).toBe('UNAUTHORIZED');
    expect(error.message).not.toContain(TOKEN);
    expect(gh.requests).toHaveLength(1);
  });

  it.each([403, 429] as const)(
    'a spent rate limit (%s, remaining 0) stops all requests until the reset, placed by the reply’s Date',
    async (status) => {
      await gh.close();
      gh = await startFakeGitHub({ token: TOKEN, overLimitStatus: status });
      const run = gh.addRun({ owner: 'acme', repo: 'api' });
      gh.setRateLimit({ remaining: 0, resetInSeconds: 120 });
      const b = bench();
      const gate = b.add(runSpec(run.id));
      const first = await b.decide(gate);
      expect(first.kind).toBe('pending');
      const until = (first as { nextCheckAt: number }).nextCheckAt;
      expect(until - START).toBeGreaterThanOrEqual(118_000);
      expect(until - START).toBeLessThanOrEqual(121_000);
      await b.clock.advance(60_000);
      expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: until });
      expect(gh.requests).toHaveLength(1);
      gh.setRateLimit({ remaining: 5_000 });
      await b.clock.advance(until - b.clock.now());
      expect((await b.decide(gate)).kind).toBe('pending');
      expect(gh.requests).toHaveLength(2);
      expect(gh.requests[1]?.status).toBe(200);
    },
  );

  it.each([403, 429] as const)(
    'a secondary limit (%s with retry-after) is obeyed to the second',
    async (status) => {
      const run = gh.addRun({ owner: 'acme', repo: 'api' });
      gh.script(secondaryRateLimitFault(30, status));
      const b = bench();
      const gate = b.add(runSpec(run.id));
      expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 30_000 });
      await b.clock.advance(29_999);
      await b.decide(gate);
      expect(gh.requests).toHaveLength(1);
      await b.clock.advance(1);
      await b.decide(gate);
      expect(gh.requests).toHaveLength(2);
    },
  );

  it('keeps a reserve: with few requests left in the window it waits for the reset', async () => {
    const runs = Array.from({ length: 6 }, () => gh.addRun({ owner: 'acme', repo: 'api' }));
    gh.setRateLimit({ remaining: 13, resetInSeconds: 600 });
    const b = bench({ batchMinRuns: 0, concurrency: 1, reserve: 10 });
    for (const run of runs) b.add(runSpec(run.id));
    const decisions = await b.round();
    expect(gh.requests).toHaveLength(3);
    expect(gh.rateLimit.remaining).toBe(10);
    const later = [...decisions.values()].filter(
      (d) => d.kind === 'pending' && (d.nextCheckAt ?? 0) > START + 590_000,
    );
    expect(later).toHaveLength(3);
  });

  it('backs off on 5xx, doubling, and asks again once the back-off is over', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({ status: 502, times: 2 });
    const b = bench({ backoffBaseMs: 1_000 });
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
    await b.decide(gate); // still backing off: no request
    expect(gh.requests).toHaveLength(1);
    await b.clock.advance(1_000);
    expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 + 2_000 });
    await b.clock.advance(2_000);
    expect((await b.decide(gate)).kind).toBe('close');
    expect(gh.requests.map((r) => r.status)).toEqual([502, 502, 200]);
  });

  it('a malformed reply is a failed request (back-off), not a verdict', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({ malformed: true });
    const b = bench();
    const gate = b.add(runSpec(run.id));
    expect(await b.decide(gate)).toEqual({ kind: 'pending', nextCheckAt: START + 1_000 });
    await b.clock.advance(1_000);
    expect((await b.decide(gate)).kind).toBe('close');
  });

  it('a reply slower than the request timeout is cut off on the clock and backed off', async () => {
    const run = gh.addRun({ owner: 'acme', repo: 'api' });
    gh.script({ hold: true });
    const b = bench({ requestTimeoutMs: 5_000 });
    const evaluation = b.decide(b.add(runSpec(run.id)));
    await gh.waitForRequests(1);
    await b.clock.advance(5_000);
    expect(await evaluation).toEqual({ kind: 'pending', nextCheckAt: START + 5_000 + 1_000 });
    await vi.waitFor(() => expect(gh.requests[0]?.status).toBe(0));
  });

  it('an outage longer than unavailableAfterMs fails evaluations with UNAVAILABLE until GitHub answers', async () => {
    const run = gh.addRun({
      owner: 'acme',
      repo: 'api',
      status: 'completed',
      conclusion: 'success',
    });
    gh.script({ status: 503, times: 100 });
    const b = bench({ backoffBaseMs: 1_000, backoffMaxMs: 60_000, unavailableAfterMs: 300_000 });
    const gate = b.add(runSpec(run.id));
    let error: unknown;
    for (let i = 0; i < 20 && !error; i++) {
      try {
        await b.decide(gate);
      } catch (e) {
        error = e;
      }
      await b.clock.advance(60_000);
    }
    expect(error).toBeInstanceOf(GateError);
    expect((error as GateError).code).toBe('UNAVAILABLE');
    expect((error as GateError).message).toContain('503');
    expect((error as GateError).message).not.toContain(TOKEN);
    expect(b.clock.now() - START).toBeGreaterThanOrEqual(300_000);
    gh.clearScript();
    expect((await b.decide(gate)).kind).toBe('close');
  });

  it('a network error (nothing listening) is a failed request, with the cause named', async () => {
    const closed = await startFakeGitHub();
    const baseUrl = closed.baseUrl;
    await closed.close();
    const b = new GateBench(githubGate({ token: TOKEN, baseUrl, unavailableAfterMs: 0 }));
    const error = await failureOf(b.round([b.add(runSpec(1))]));
    expect((error as GateError).code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/ECONNREFUSED|fetch failed/);
  });
});

describe('githubGate: options', () => {
  it.each([
    [{ baseUrl: 'ftp://example.com' }, /options\.baseUrl: must be an http\(s\) URL/],
    [{ baseUrl: 'https://user:pw@example.com' }, /must not carry credentials/],
    [{ baseUrl: 'not a url' }, /options\.baseUrl/],
    [{ onFailure: 'ignore' }, /options\.onFailure/],
    [{ neutral: 'maybe' }, /options\.neutral/],
    [{ requestTimeoutMs: 0 }, /options\.requestTimeoutMs/],
    [{ concurrency: 1.5 }, /options\.concurrency/],
    [{ fetch: 'yes' }, /options\.fetch/],
    [{ tokn: 'x' }, /options\.tokn/],
    [{ type: 'GH RUN' }, /options\.type/],
  ])('refuses %j', (options, message) => {
    expect(() => githubGate({ token: null, ...(options as object) })).toThrow(ConfigError);
    expect(() => githubGate({ token: null, ...(options as object) })).toThrow(message);
  });

  it('refuses a token with a line break without showing it', () => {
    const bad = `${TOKEN}\nX-Injected: 1`;
    let error: unknown;
    try {
      githubGate({ token: bad });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it('validate refuses bad specs with the field named', () => {
    const gate = githubGate({ token: null });
    expect(() => gate.validate({ owner: 'acme', repo: 'api' })).toThrow(/exactly one of runId/);
    expect(() => gate.validate({ owner: 'ac me', repo: 'api', runId: 1 })).toThrow(/spec\.owner/);
    expect(() => gate.validate({ owner: 'acme', repo: 'api', runId: 1, branch: 'main' })).toThrow(
      /spec\.branch: narrows a workflow/,
    );
    expect(() =>
      gate.validate({ owner: 'acme', repo: 'api', workflow: 'ci.yml', headSha: 'abc' }),
    ).toThrow(/spec\.headSha: must be a full commit SHA/);
    expect(
      gate.validate({ owner: 'acme', repo: 'api', workflow: 'ci.yml', branch: 'main' }),
    ).toEqual({ owner: 'acme', repo: 'api', workflow: 'ci.yml', branch: 'main' });
  });
});
