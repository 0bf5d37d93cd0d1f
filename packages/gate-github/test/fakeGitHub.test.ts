import { afterEach, describe, expect, it } from 'vitest';
import {
  type FakeGitHub,
  type FakeGitHubOptions,
  secondaryRateLimitFault,
  startFakeGitHub,
} from './fakeGitHub';

// Checks the fake itself with plain fetch, so tests of the gate evaluator can trust it.

const open: FakeGitHub[] = [];

async function start(options?: FakeGitHubOptions): Promise<FakeGitHub> {
  const fake = await startFakeGitHub(options);
  open.push(fake);
  return fake;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

interface RunJson {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  run_attempt: number;
  head_branch: string;
  updated_at: string;
  run_started_at: string;
}

interface RunList {
  total_count: number;
  workflow_runs: RunJson[];
}

const get = (fake: FakeGitHub, path: string, headers: Record<string, string> = {}) =>
  fetch(`${fake.baseUrl}${path}`, { headers });

describe('fake GitHub: runs', () => {
  it('serves a run in GitHub shape with a weak ETag and rate-limit headers', async () => {
    const fake = await start();
    fake.addWorkflow('octo', 'app', { id: 7, name: 'CI', path: '.github/workflows/ci.yml' });
    const run = fake.addRun({ owner: 'octo', repo: 'app', workflowId: 7, headSha: 'abc' });
    expect(run.id).toBe(1000);

    const res = await get(fake, `/repos/octo/app/actions/runs/${run.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('etag')).toMatch(/^W\/"[0-9a-f]{40}"$/);
    expect(res.headers.get('x-ratelimit-limit')).toBe('5000');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('4999');
    expect(res.headers.get('x-ratelimit-used')).toBe('1');
    expect(res.headers.get('x-ratelimit-resource')).toBe('core');
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    expect(Math.abs(reset - (Math.floor(Date.now() / 1000) + 3600))).toBeLessThanOrEqual(2);

    expect(await res.json()).toEqual({
      id: 1000,
      name: 'CI',
      head_branch: 'main',
      head_sha: 'abc',
      path: '.github/workflows/ci.yml',
      display_title: 'Run 1000',
      run_number: 1,
      event: 'push',
      status: 'queued',
      conclusion: null,
      workflow_id: 7,
      url: `${fake.baseUrl}/repos/octo/app/actions/runs/1000`,
      html_url: 'https://github.com/octo/app/actions/runs/1000',
      created_at: '2024-01-01T00:00:00Z',
      updated_at: '2024-01-01T00:00:00Z',
      run_attempt: 1,
      run_started_at: '2024-01-01T00:00:00Z',
      workflow_url: `${fake.baseUrl}/repos/octo/app/actions/workflows/7`,
      repository: { name: 'app', full_name: 'octo/app', owner: { login: 'octo' } },
    });
  });

  it('answers 404 Not Found for unknown runs, other repos, other paths and other methods', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    fake.addRun({ owner: 'o', repo: 'other' });
    for (const path of [
      '/repos/o/r/actions/runs/999999',
      '/repos/o/other/actions/runs/1000',
      '/repos/o/r/actions/runs/abc',
      '/repos/o/r/actions/runs/1000/jobs',
      '/repos/o/r/pulls',
      '/',
    ]) {
      const res = await get(fake, path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ message: 'Not Found' });
    }
    const post = await fetch(`${fake.baseUrl}/repos/o/r/actions/runs/${run.id}`, {
      method: 'POST',
      body: '{}',
    });
    expect(post.status).toBe(404);
    await post.arrayBuffer();
    expect(fake.charged).toBe(7);
  });

  it('matches repos case-insensitively and keeps ids increasing past explicit ones', async () => {
    const fake = await start();
    expect(fake.addRun({ owner: 'O', repo: 'R', id: 5000 }).id).toBe(5000);
    expect(fake.addRun({ owner: 'o', repo: 'r' }).id).toBe(5001);
    expect(() => fake.addRun({ owner: 'o', repo: 'r', id: 5000 })).toThrow(/already exists/);
    const res = await get(fake, '/repos/o/r/actions/runs/5000');
    expect(res.status).toBe(200);
    expect(((await res.json()) as RunJson).id).toBe(5000);
  });

  it('updateRun changes fields, bumps updated_at, and restamps run_started_at on a re-run', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r', createdAt: '2024-05-01T10:00:00Z' });
    const first = (await (await get(fake, `/repos/o/r/actions/runs/${run.id}`)).json()) as RunJson;

    const done = fake.updateRun(run.id, { status: 'completed', conclusion: 'failure' });
    expect(done.status).toBe('completed');
    expect(Date.parse(done.updatedAt)).toBeGreaterThan(Date.parse(first.updated_at));
    expect(done.runStartedAt).toBe('2024-05-01T10:00:00Z');

    const rerun = fake.updateRun(run.id, { runAttempt: 2, status: 'queued', conclusion: null });
    expect(Date.parse(rerun.updatedAt)).toBeGreaterThan(Date.parse(done.updatedAt));
    expect(rerun.runStartedAt).toBe(rerun.updatedAt);

    const served = (await (await get(fake, `/repos/o/r/actions/runs/${run.id}`)).json()) as RunJson;
    expect(served).toMatchObject({ status: 'queued', conclusion: null, run_attempt: 2 });
    expect(fake.getRun(run.id)).toEqual(rerun);
    expect(() => fake.updateRun(1, { status: 'completed' })).toThrow(/no run 1/);
  });
});

describe('fake GitHub: lists', () => {
  it('lists runs newest first with filters, pagination and link headers', async () => {
    const fake = await start();
    for (let i = 0; i < 5; i++) {
      fake.addRun({ owner: 'o', repo: 'r', headBranch: i % 2 === 0 ? 'main' : 'dev' });
    }
    fake.addRun({ owner: 'o', repo: 'r', id: 1, event: 'pull_request', headSha: 'feed' });
    fake.addRun({ owner: 'o', repo: 'elsewhere' });
    fake.updateRun(1002, { status: 'completed', conclusion: 'success' });

    const all = (await (await get(fake, '/repos/o/r/actions/runs')).json()) as RunList;
    expect(all.total_count).toBe(6);
    expect(all.workflow_runs.map((r) => r.id)).toEqual([1004, 1003, 1002, 1001, 1000, 1]);

    const byBranch = (await (
      await get(fake, '/repos/o/r/actions/runs?branch=dev')
    ).json()) as RunList;
    expect(byBranch.workflow_runs.map((r) => r.id)).toEqual([1003, 1001]);
    const byEvent = (await (
      await get(fake, '/repos/o/r/actions/runs?event=pull_request&head_sha=feed')
    ).json()) as RunList;
    expect(byEvent.workflow_runs.map((r) => r.id)).toEqual([1]);
    // `status` matches a status or a conclusion, as on GitHub.
    for (const status of ['completed', 'success']) {
      const res = await get(fake, `/repos/o/r/actions/runs?status=${status}`);
      expect(((await res.json()) as RunList).workflow_runs.map((r) => r.id)).toEqual([1002]);
    }

    const page2 = await get(fake, '/repos/o/r/actions/runs?per_page=2&page=2');
    const body = (await page2.json()) as RunList;
    expect(body.total_count).toBe(6);
    expect(body.workflow_runs.map((r) => r.id)).toEqual([1002, 1001]);
    const link = page2.headers.get('link') ?? '';
    const base = `${fake.baseUrl}/repos/o/r/actions/runs?per_page=2`;
    expect(link).toContain(`<${base}&page=3>; rel="next"`);
    expect(link).toContain(`<${base}&page=3>; rel="last"`);
    expect(link).toContain(`<${base}&page=1>; rel="prev"`);
    expect(link).toContain(`<${base}&page=1>; rel="first"`);

    const empty = (await (await get(fake, '/repos/x/y/actions/runs')).json()) as RunList;
    expect(empty).toEqual({ total_count: 0, workflow_runs: [] });
  });

  it('caps per_page at 100 and defaults it to 30', async () => {
    const fake = await start();
    for (let i = 0; i < 120; i++) fake.addRun({ owner: 'o', repo: 'r' });
    const big = (await (await get(fake, '/repos/o/r/actions/runs?per_page=500')).json()) as RunList;
    expect(big.workflow_runs).toHaveLength(100);
    const dflt = (await (await get(fake, '/repos/o/r/actions/runs')).json()) as RunList;
    expect(dflt.workflow_runs).toHaveLength(30);
    expect(dflt.total_count).toBe(120);
  });

  it('lists a workflow’s runs by id or file name, and the workflows themselves', async () => {
    const fake = await start();
    fake.addWorkflow('o', 'r', { id: 10, name: 'CI', path: '.github/workflows/ci.yml' });
    fake.addWorkflow('o', 'r', { id: 11, name: 'Deploy', path: '.github/workflows/deploy.yaml' });
    fake.addRun({ owner: 'o', repo: 'r', workflowId: 10 });
    fake.addRun({ owner: 'o', repo: 'r', workflowId: 11 });
    fake.addRun({ owner: 'o', repo: 'r', workflowId: 10 });

    for (const wf of ['10', 'ci.yml']) {
      const res = await get(fake, `/repos/o/r/actions/workflows/${wf}/runs?per_page=1`);
      const list = (await res.json()) as RunList;
      expect(list.total_count).toBe(2);
      expect(list.workflow_runs.map((r) => [r.id, r.name])).toEqual([[1002, 'CI']]);
    }
    for (const wf of ['99', 'nope.yml']) {
      const res = await get(fake, `/repos/o/r/actions/workflows/${wf}/runs`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ message: 'Not Found' });
    }

    const res = await get(fake, '/repos/o/r/actions/workflows');
    const body = (await res.json()) as { total_count: number; workflows: object[] };
    expect(body.total_count).toBe(2);
    expect(body.workflows).toEqual([
      expect.objectContaining({ id: 10, name: 'CI', path: '.github/workflows/ci.yml' }),
      expect.objectContaining({ id: 11, name: 'Deploy', state: 'active' }),
    ]);
  });

  it('creates a placeholder workflow for runs added without one', async () => {
    const fake = await start();
    fake.addRun({ owner: 'o', repo: 'r' });
    const res = await get(fake, '/repos/o/r/actions/workflows/1/runs');
    expect(((await res.json()) as RunList).workflow_runs[0]?.name).toBe('Workflow 1');
  });
});

describe('fake GitHub: conditional requests', () => {
  it('answers 304 for a matching if-none-match without charging, 200 once the run changes', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    const path = `/repos/o/r/actions/runs/${run.id}`;
    const first = await get(fake, path);
    await first.arrayBuffer();
    const etag = first.headers.get('etag') ?? '';

    const same = await get(fake, path, { 'if-none-match': etag });
    expect(same.status).toBe(304);
    expect(same.headers.get('etag')).toBe(etag);
    expect(same.headers.get('x-ratelimit-remaining')).toBe('4999');
    expect(await same.text()).toBe('');

    fake.updateRun(run.id, { status: 'in_progress' });
    const changed = await get(fake, path, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(((await changed.json()) as RunJson).status).toBe('in_progress');

    expect(fake.requests.map((r) => [r.status, r.charged])).toEqual([
      [200, true],
      [304, false],
      [200, true],
    ]);
    expect(fake.requests[1]?.ifNoneMatch).toBe(etag);
    expect(fake.charged).toBe(2);
    expect(fake.rateLimit.remaining).toBe(4998);
  });

  it('gives list responses ETags too', async () => {
    const fake = await start();
    fake.addRun({ owner: 'o', repo: 'r' });
    const path = '/repos/o/r/actions/runs?branch=main';
    const first = await get(fake, path);
    await first.arrayBuffer();
    const again = await get(fake, path, { 'if-none-match': first.headers.get('etag') ?? '' });
    expect(again.status).toBe(304);
    fake.addRun({ owner: 'o', repo: 'r' });
    const after = await get(fake, path, { 'if-none-match': first.headers.get('etag') ?? '' });
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });
});

describe('fake GitHub: auth, prefix and private repos', () => {
  it('requires the token as Bearer or token, else 401 Bad credentials (charged)', async () => {
    const fake = await start({ token: 's3cret' });
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    const path = `/repos/o/r/actions/runs/${run.id}`;
    for (const authorization of ['Bearer s3cret', 'token s3cret']) {
      const res = await get(fake, path, { authorization });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 's3cret' }]) {
      const res = await get(fake, path, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('x-ratelimit-remaining')).not.toBeNull();
      const body = (await res.json()) as { message: string; documentation_url: string };
      expect(body.message).toBe('Bad credentials');
      expect(body.documentation_url).toMatch(/^https:\/\/docs\.github\.com/);
    }
    expect(fake.charged).toBe(5);
    expect(fake.requests[0]?.authorization).toBe('Bearer s3cret');
  });

  it('serves routes under a GitHub Enterprise prefix only', async () => {
    const fake = await start({ prefix: '/api/v3' });
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    expect(fake.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/);
    const ok = await get(fake, `/repos/o/r/actions/runs/${run.id}?x=1`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as RunJson & { url: string }).url).toBe(
      `${fake.baseUrl}/repos/o/r/actions/runs/${run.id}`,
    );
    const outside = await fetch(`${fake.baseUrl.replace('/api/v3', '')}/repos/o/r/actions/runs`);
    expect(outside.status).toBe(404);
    await outside.arrayBuffer();
    expect(fake.requests.map((r) => [r.path, r.query])).toEqual([
      [`/repos/o/r/actions/runs/${run.id}`, 'x=1'],
      ['/repos/o/r/actions/runs', ''],
    ]);
  });

  it('answers 404 (not 403) for everything about a private repo', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'secret' });
    fake.addWorkflow('o', 'secret', { id: 3, name: 'CI', path: '.github/workflows/ci.yml' });
    fake.makePrivate('O', 'Secret');
    for (const path of [
      `/repos/o/secret/actions/runs/${run.id}`,
      '/repos/o/secret/actions/runs',
      '/repos/o/secret/actions/workflows',
      '/repos/o/secret/actions/workflows/ci.yml/runs',
    ]) {
      const res = await get(fake, path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ message: 'Not Found' });
    }
  });
});

describe('fake GitHub: rate limits', () => {
  it('refuses every request, conditional ones too, once the limit is spent', async () => {
    const fake = await start({ rateLimit: { limit: 60, remaining: 2, resetInSeconds: 120 } });
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    const path = `/repos/o/r/actions/runs/${run.id}`;
    const first = await get(fake, path);
    await first.arrayBuffer();
    expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(first.headers.get('x-ratelimit-used')).toBe('59');
    const etag = first.headers.get('etag') ?? '';
    const second = await get(fake, path);
    await second.arrayBuffer();
    expect(second.headers.get('x-ratelimit-remaining')).toBe('0');

    for (const headers of [{}, { 'if-none-match': etag }]) {
      const res = await get(fake, path, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(res.headers.get('x-ratelimit-limit')).toBe('60');
      const reset = Number(res.headers.get('x-ratelimit-reset'));
      expect(reset).toBeGreaterThan(Date.now() / 1000 + 100);
      expect(((await res.json()) as { message: string }).message).toMatch(
        /^API rate limit exceeded for /,
      );
    }
    expect(fake.charged).toBe(2);

    fake.setRateLimit({ remaining: 10 });
    const back = await get(fake, path, { 'if-none-match': etag });
    expect(back.status).toBe(304);
    expect(back.headers.get('x-ratelimit-remaining')).toBe('10');
  });

  it('can refuse with 429 instead', async () => {
    const fake = await start({ overLimitStatus: 429, rateLimit: { remaining: 0 } });
    const res = await get(fake, '/repos/o/r/actions/runs');
    expect(res.status).toBe(429);
    await res.arrayBuffer();
  });

  it('starts a fresh window once the reset time has passed', async () => {
    let now = Date.UTC(2025, 0, 1);
    const fake = await start({ now: () => now, rateLimit: { limit: 100, remaining: 0 } });
    const refused = await get(fake, '/repos/o/r/actions/runs');
    expect(refused.status).toBe(403);
    await refused.arrayBuffer();
    expect(Number(refused.headers.get('x-ratelimit-reset'))).toBe(now / 1000 + 3600);

    now += 3600_000;
    const ok = await get(fake, '/repos/o/r/actions/runs');
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    expect(ok.headers.get('x-ratelimit-remaining')).toBe('99');
    expect(Number(ok.headers.get('x-ratelimit-reset'))).toBe(now / 1000 + 3600);
    expect(fake.requests.map((r) => r.at)).toEqual([now - 3600_000, now]);
  });
});

describe('fake GitHub: scripted faults', () => {
  it('replies with scripted statuses, bodies and headers, once by default or `times` times', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    const path = `/repos/o/r/actions/runs/${run.id}`;
    fake.script({ status: 502, times: 2 });
    fake.script(secondaryRateLimitFault(30));
    fake.script({ status: 429, headers: { 'retry-after': '5' }, body: '{"message":"slow"}' });

    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await get(fake, path);
      statuses.push(res.status);
      if (res.status === 502) expect(await res.json()).toEqual({ message: 'Bad Gateway' });
      else if (res.status === 403) {
        expect(res.headers.get('retry-after')).toBe('30');
        expect(((await res.json()) as { message: string }).message).toMatch(
          /^You have exceeded a secondary rate limit/,
        );
        expect(res.headers.get('x-ratelimit-remaining')).not.toBe('0');
      } else if (res.status === 429) {
        expect(res.headers.get('retry-after')).toBe('5');
        expect(await res.json()).toEqual({ message: 'slow' });
      } else await res.arrayBuffer();
    }
    expect(statuses).toEqual([502, 502, 403, 429, 200]);
  });

  it('applies a fault only to requests it matches', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    fake.script({ status: 500, match: (req) => req.query.get('branch') === 'dev' });
    const single = await get(fake, `/repos/o/r/actions/runs/${run.id}`);
    const main = await get(fake, '/repos/o/r/actions/runs?branch=main');
    const dev = await get(fake, '/repos/o/r/actions/runs?branch=dev');
    const again = await get(fake, '/repos/o/r/actions/runs?branch=dev');
    for (const res of [single, main, dev, again]) await res.arrayBuffer();
    expect([single.status, main.status, dev.status, again.status]).toEqual([200, 200, 500, 200]);
  });

  it('serves truncated JSON for a malformed fault', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    fake.script({ malformed: true });
    const res = await get(fake, `/repos/o/r/actions/runs/${run.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const text = await res.text();
    expect(text.startsWith('{"id":1000')).toBe(true);
    expect(() => JSON.parse(text)).toThrow();
  });

  it('holds requests until released, counting them as received but not answered', async () => {
    const fake = await start();
    const run = fake.addRun({ owner: 'o', repo: 'r' });
    fake.script({ hold: true, times: 2 });
    const a = get(fake, `/repos/o/r/actions/runs/${run.id}`);
    const b = get(fake, '/repos/o/r/actions/runs');
    await fake.waitForRequests(2);
    expect(fake.heldCount).toBe(2);
    expect(fake.requests).toEqual([]);
    fake.updateRun(run.id, { status: 'completed', conclusion: 'success' });

    expect(fake.releaseHeld()).toBe(2);
    const [resA, resB] = await Promise.all([a, b]);
    expect(((await resA.json()) as RunJson).conclusion).toBe('success');
    expect(((await resB.json()) as RunList).total_count).toBe(1);
    expect(fake.heldCount).toBe(0);
    expect(fake.requests.map((r) => r.status)).toEqual([200, 200]);
  });

  it('records a held request the client aborts with status 0', async () => {
    const fake = await start();
    fake.script({ hold: true });
    const controller = new AbortController();
    const pending = fetch(`${fake.baseUrl}/repos/o/r/actions/runs`, {
      signal: controller.signal,
    });
    await fake.waitForRequests(1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await expect.poll(() => fake.heldCount).toBe(0);
    expect(fake.requests).toEqual([expect.objectContaining({ status: 0, charged: false })]);
    expect(fake.charged).toBe(0);
  });

  it('closes promptly while requests are held', async () => {
    const fake = await startFakeGitHub();
    fake.script({ hold: true, times: 3 });
    const pending = [1, 2, 3].map(() =>
      fetch(`${fake.baseUrl}/repos/o/r/actions/runs`).then(
        (res) => res.status,
        () => 'failed',
      ),
    );
    await fake.waitForRequests(3);
    const started = Date.now();
    await fake.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await Promise.all(pending)).toEqual(['failed', 'failed', 'failed']);
    await fake.close(); // idempotent
  });

  it('delays a reply by delayMs', async () => {
    const fake = await start();
    fake.script({ delayMs: 50 });
    const started = performance.now();
    const res = await get(fake, '/repos/o/r/actions/workflows');
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('drops queued faults on clearScript', async () => {
    const fake = await start();
    fake.script({ status: 500, times: Number.POSITIVE_INFINITY });
    const failing = await get(fake, '/repos/o/r/actions/runs');
    await failing.arrayBuffer();
    fake.clearScript();
    const ok = await get(fake, '/repos/o/r/actions/runs');
    await ok.arrayBuffer();
    expect([failing.status, ok.status]).toEqual([500, 200]);
  });
});

describe('fake GitHub: observability', () => {
  it('records request headers and clears counts in place', async () => {
    const fake = await start();
    const requests = fake.requests;
    const res = await get(fake, '/repos/o/r/actions/runs?per_page=5', {
      'user-agent': 'belfry-test',
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
    });
    await res.arrayBuffer();
    expect(requests).toEqual([
      {
        method: 'GET',
        path: '/repos/o/r/actions/runs',
        query: 'per_page=5',
        userAgent: 'belfry-test',
        accept: 'application/vnd.github+json',
        apiVersion: '2022-11-28',
        status: 200,
        charged: true,
        at: expect.any(Number),
      },
    ]);
    fake.resetCounts();
    expect(requests).toEqual([]);
    expect(fake.charged).toBe(0);
    const waiting = fake.waitForRequests(1);
    const again = await get(fake, '/repos/o/r/actions/runs');
    await again.arrayBuffer();
    await waiting;
    expect(fake.requests).toHaveLength(1);
  });

  it('rejects pending waitForRequests on close', async () => {
    const fake = await startFakeGitHub();
    const waiting = fake.waitForRequests(1);
    await fake.close();
    await expect(waiting).rejects.toThrow(/closed/);
  });

  it('answers thousands of requests quickly', async () => {
    const fake = await start();
    const ids: number[] = [];
    for (let i = 0; i < 5000; i++) ids.push(fake.addRun({ owner: 'o', repo: 'r' }).id);
    const started = performance.now();
    const total = 1000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const id = ids[next++ % ids.length];
        const res = await get(fake, `/repos/o/r/actions/runs/${id}`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    const elapsed = performance.now() - started;
    expect(fake.requests).toHaveLength(total);
    expect(elapsed).toBeLessThan(10_000);
  });
});
