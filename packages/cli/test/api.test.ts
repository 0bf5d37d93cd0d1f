/**
 * The daemon's API on a real Unix socket (issue 14, part 1): a town on simulated time behind it,
 * requests over HTTP as the CLI sends them.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { humanGate } from '@belfry/gate-human';
import { createTestTown, type TestTown } from '@belfry/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiServer, startApi } from '../src/api/server';
import { callDaemon } from '../src/runtime';

const open: Array<{ api: ApiServer; t: TestTown }> = [];
afterEach(async () => {
  for (const { api, t } of open.splice(0)) {
    await api.close();
    await t.stop();
  }
});

async function served(options: { replayEvents?: number; maxClientBacklogBytes?: number } = {}) {
  const human = humanGate();
  const t = await createTestTown({ rigs: ['api', 'web'], gates: [human] });
  const socket = join(mkdtempSync(join(tmpdir(), 'belfry-api-')), 'control.sock');
  let stopped = 0;
  const api = await startApi(socket, {
    town: t.town,
    daemon: () => ({
      pid: process.pid,
      version: 'test',
      townId: 'tw-test',
      startedAt: 1,
      faults: [],
    }),
    stop: () => {
      stopped++;
    },
    human,
    ...options,
  });
  open.push({ api, t });
  const call = <T = Record<string, unknown>>(
    method: 'GET' | 'POST',
    route: string,
    body?: unknown,
  ) =>
    callDaemon<T>(socket, method, route, body).then((a) => {
      if (!a) throw new Error(`no answer to ${method} ${route}`);
      return a;
    });
  /** Sends raw bytes as a request body (for malformed JSON and the like). */
  const raw = (route: string, body: string, contentType = 'application/json') =>
    new Promise<{
      status: number;
      body: Record<string, { code: string; message: string; path?: string }>;
    }>((resolve, reject) => {
      const req = httpRequest(
        {
          socketPath: socket,
          method: 'POST',
          path: route,
          headers: { 'content-type': contentType },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { t, api, socket, call, raw, stopped: () => stopped };
}

/** Reads Server-Sent Events from `route` until `until` says enough; returns them. */
function readEvents(
  socket: string,
  route: string,
  until: (events: Array<{ id?: number; event: string; data: unknown }>) => boolean,
  headers: Record<string, string> = {},
): Promise<Array<{ id?: number; event: string; data: unknown }>> {
  return new Promise((resolve, reject) => {
    const events: Array<{ id?: number; event: string; data: unknown }> = [];
    const req = httpRequest({ socketPath: socket, path: route, headers }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const field = (name: string) =>
            block
              .split('\n')
              .find((l) => l.startsWith(`${name}: `))
              ?.slice(name.length + 2);
          const event = field('event');
          if (!event) continue;
          const id = field('id');
          events.push({
            ...(id === undefined ? {} : { id: Number(id) }),
            event,
            data: JSON.parse(field('data') ?? 'null'),
          });
          if (until(events)) {
            req.destroy();
            resolve(events);
            return;
          }
        }
      });
      res.on('end', () => resolve(events));
    });
    req.on('error', (error) => (until(events) ? resolve(events) : reject(error)));
    req.end();
  });
}

describe('the daemon API on its socket', () => {
  it('answers ping and the live status; the socket is 0600; the OpenAPI document lists every route', async () => {
    const { call, socket } = await served();
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect((await call('GET', '/v1/ping')).body).toMatchObject({ pid: process.pid, faults: [] });
    const status = await call<{ live: boolean; town: { rigs: Array<{ name: string }> } }>(
      'GET',
      '/v1/status',
    );
    expect(status.status).toBe(200);
    expect(status.body.live).toBe(true);
    expect(status.body.town.rigs.map((r) => r.name).sort()).toEqual(['api', 'web']);
    const openapi = await call<{ openapi: string; paths: Record<string, unknown> }>(
      'GET',
      '/v1/openapi.json',
    );
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(openapi.body).toMatchObject({
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    });
    expect(Object.keys(openapi.body.paths).sort()).toEqual(
      [
        '/v1/agents/{rig}/{name}/nudge',
        '/v1/agents/{rig}/{name}/output',
        '/v1/beads',
        '/v1/beads/{id}',
        '/v1/convoys',
        '/v1/convoys/{id}',
        '/v1/convoys/{id}/add',
        '/v1/done',
        '/v1/events',
        '/v1/gates',
        '/v1/gates/{id}',
        '/v1/gates/{id}/approve',
        '/v1/gates/{id}/reject',
        '/v1/incidents',
        '/v1/lifecycle',
        '/v1/ping',
        '/v1/rigs',
        '/v1/rigs/{rig}/{action}',
        '/v1/sling',
        '/v1/status',
        '/v1/stop',
        '/v1/wake',
        '/v1/warrants',
      ].sort(),
    );
  });

  it('docs/api.md describes every route of the OpenAPI document', async () => {
    const { call } = await served();
    const { body } = await call<{ paths: Record<string, Record<string, unknown>> }>(
      'GET',
      '/v1/openapi.json',
    );
    const docs = readFileSync(
      join(import.meta.dirname, '..', '..', '..', 'docs', 'api.md'),
      'utf8',
    );
    const missing = Object.entries(body.paths).flatMap(([path, methods]) =>
      Object.keys(methods)
        .map((m) => `${m.toUpperCase()} ${path}`)
        .filter((route) => !docs.includes(`\`${route}\``) && !docs.includes(`\`${route}?`)),
    );
    expect(missing).toEqual([]);
  });

  it('the agent’s loop through the town’s own operations: create, sling (its session runs), output, nudge, done', async () => {
    const { call, t } = await served();
    const bead = await call<{ id: string }>('POST', '/v1/beads', { title: 'fix it', rig: 'api' });
    expect(bead.status).toBe(201);
    const from = t.events.length;
    const slung = await call<{ agent: string }>('POST', '/v1/sling', {
      bead: bead.body.id,
      rig: 'api',
    });
    expect(slung.status).toBe(200);
    const agent = slung.body.agent;
    const [rig, name] = agent.split('/');
    // The rig's Witness surveys at once: the session runs without waiting for the next survey.
    if (!t.events.slice(from).some((e) => e.type === 'polecat.spawned'))
      await t.next('polecat.spawned', { withinMs: 5_000 });
    expect((await t.session(agent)).state).toBe('running');
    t.driver.write(agent.replace('/', '-'), 'working on it');
    const output = await call<{ lines: string[] }>(
      'GET',
      `/v1/agents/${rig}/${name}/output?lines=5`,
    );
    expect(output.body.lines).toContain('working on it');
    // Followed by cursor: exactly the lines since, however alike.
    type Followed = { lines: string[]; end: string; continuous: boolean };
    const base = `/v1/agents/${rig}/${name}/output`;
    const at = await call<Followed>('GET', `${base}?follow=true`);
    expect(at.body).toMatchObject({ continuous: false, end: expect.any(String) });
    for (let i = 0; i < 3; i++) t.driver.write(agent.replace('/', '-'), 'working on it');
    const since = await call<Followed>('GET', `${base}?after=${encodeURIComponent(at.body.end)}`);
    expect(since.body).toMatchObject({
      lines: ['working on it', 'working on it', 'working on it'],
      continuous: true,
    });
    for (const [query, field] of [
      ['after=', 'after'],
      [`after=${'x'.repeat(300)}`, 'after'],
      ['follow=yes', 'follow'],
    ] as const) {
      const bad = await call<{ error: { code: string; message: string } }>(
        'GET',
        `${base}?${query}`,
      );
      expect(bad.status, query).toBe(400);
      expect(bad.body.error.message).toContain(field);
    }
    expect(
      (await call('POST', `/v1/agents/${rig}/${name}/nudge`, { text: 'status?' })).status,
    ).toBe(200);
    expect(t.driver.nudgesOf(agent.replace('/', '-')).at(-1)).toBe('status?');
    const wrong = await call<{ error: { code: string } }>('POST', '/v1/done', {
      agent,
      bead: 'bd-other',
    });
    expect(wrong.status).toBe(409);
    expect(wrong.body.error.code).toBe('CONFLICT');
    expect((await call('POST', '/v1/done', { agent, bead: bead.body.id })).status).toBe(200);
    expect((await t.model.beads.require(bead.body.id)).status).toBe('done');
    const listed = await call<Array<{ id: string }>>('GET', '/v1/beads?status=done');
    expect(listed.body.map((b) => b.id)).toContain(bead.body.id);
  });

  it('refuses bad input with a JSON error naming what was wrong, and keeps running', async () => {
    const { call, raw } = await served();
    const cases: Array<[Promise<{ status: number; body: unknown }>, number, string, string?]> = [
      [raw('/v1/beads', '{"title": "x",'), 400, 'MALFORMED_JSON'],
      [raw('/v1/beads', ''), 400, 'MALFORMED_JSON'],
      [call('POST', '/v1/beads', { title: 'x', colour: 'red' }), 400, 'INVALID_REQUEST', 'body'],
      [call('POST', '/v1/beads', { title: 7 }), 400, 'INVALID_REQUEST', 'body.title'],
      [call('POST', '/v1/beads', {}), 400, 'INVALID_REQUEST'],
      [call('POST', '/v1/beads', { title: 'x'.repeat(70_000) }), 413, 'TOO_LARGE'],
      [
        raw('/v1/beads', 'title=x', 'application/x-www-form-urlencoded'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      [raw('/v1/beads', '{"title": "x"}', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [call('GET', '/v1/nowhere'), 404, 'NO_ROUTE'],
      [call('POST', '/v1/sling', { bead: 'bd-nosuch', rig: 'api' }), 404, 'NOT_FOUND'],
      [call('POST', '/v1/rigs/nosuch/park'), 404, 'NOT_FOUND'],
      [call('POST', '/v1/rigs/api/explode'), 400, 'INVALID_REQUEST', 'params.action'],
      [call('GET', '/v1/beads?limit=0'), 400, 'INVALID_REQUEST', 'querystring.limit'],
      [call('POST', '/v1/agents/api/nobody/nudge', { text: 'hi' }), 404, 'NOT_FOUND'],
    ];
    for (const [answer, status, code, path] of cases) {
      const { status: got, body } = await answer;
      const error = (body as { error: { code: string; message: string; path?: string } }).error;
      expect({ got, code: error.code }).toEqual({ got: status, code });
      expect(error.message.length).toBeGreaterThan(5);
      if (path) expect(error.path).toBe(path);
    }
    expect((await call('GET', '/v1/ping')).status).toBe(200);
    // Nothing half-written: no bead came of the refused creates.
    expect((await call<unknown[]>('GET', '/v1/beads?status=open')).body).toEqual([]);
    // A list with no filter is the model's own refusal, with its path.
    const unfiltered = await call<{ error: { code: string; path: string } }>('GET', '/v1/beads');
    expect(unfiltered.status).toBe(400);
    expect(unfiltered.body.error).toMatchObject({ code: 'INVALID_OPTION', path: 'options' });
  });

  it('1,000 requests at once: every one answered, every acknowledged bead stored once', async () => {
    const { call, t } = await served();
    const answers = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        i % 2 === 0
          ? call<{ id: string }>('POST', '/v1/beads', { title: `bead ${i}` })
          : call('GET', '/v1/status'),
      ),
    );
    expect(answers.every((a) => a.status === 200 || a.status === 201)).toBe(true);
    const ids = answers.filter((a) => a.status === 201).map((a) => (a.body as { id: string }).id);
    expect(ids).toHaveLength(500);
    expect(new Set(ids).size).toBe(500);
    expect((await t.model.beads.list({ status: 'open', limit: 1_000 })).length).toBe(500);
  }, 60_000);

  it('a human gate approved through the API closes with gate.closed and its waiting molecule moves on (the town’s own operation)', async () => {
    const { call, t } = await served();
    const molecule = await t.model.molecules.create({
      name: 'release',
      rig: 'api',
      steps: [{ name: 'sign-off', gate: { type: 'human', spec: {} } }, { name: 'ship' }],
    });
    const gateId = molecule.waitingOn as string;
    const approved = await call<{ status: string; result: { by: string } }>(
      'POST',
      `/v1/gates/${gateId}/approve`,
      { by: 'ada', comment: 'fine' },
    );
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'closed', result: { by: 'ada' } });
    expect(t.events.some((e) => e.type === 'gate.closed' && e.gateId === gateId)).toBe(true);
    const again = await call<{ error: { code: string } }>('POST', `/v1/gates/${gateId}/approve`, {
      by: 'bob',
    });
    expect(again.status).toBe(409);
  });

  it('gates are created through the town (their type checks the spec); convoys are listed and added to; the status carries open incidents and the lifecycle queue', async () => {
    const { call, t } = await served();
    const gate = await call<{ id: string; type: string; status: string; timeoutAt: number }>(
      'POST',
      '/v1/gates',
      { type: 'human', spec: { prompt: 'ship 1.4?' }, timeoutMs: 3_600_000 },
    );
    expect(gate.status).toBe(201);
    expect(gate.body).toMatchObject({ type: 'human', status: 'open' });
    expect((await t.model.gates.require(gate.body.id)).status).toBe('open');
    const badSpec = await call<{ error: { code: string; path?: string } }>('POST', '/v1/gates', {
      type: 'timer',
      spec: { durationMs: -5 },
    });
    expect(badSpec.status).toBe(400);
    expect(badSpec.body.error.path).toBe('spec.durationMs');
    const noType = await call<{ error: { message: string } }>('POST', '/v1/gates', {
      type: 'nosuch',
      spec: {},
    });
    expect(noType.status).toBe(400);
    expect(noType.body.error.message).toContain('registered: ');

    const a = await t.model.beads.create({ title: 'a', rig: 'api' });
    const b = await t.model.beads.create({ title: 'b', rig: 'web' });
    const convoy = await call<{ id: string }>('POST', '/v1/convoys', {
      title: 'release',
      beadIds: [a.id],
    });
    const added = await call<{ beadIds: string[]; openCount: number }>(
      'POST',
      `/v1/convoys/${convoy.body.id}/add`,
      { beadIds: [b.id] },
    );
    expect(added.status).toBe(200);
    expect(added.body.beadIds).toEqual([a.id, b.id]);
    expect(added.body.openCount).toBe(2);
    expect((await call<Array<{ id: string }>>('GET', '/v1/convoys')).body.map((c) => c.id)).toEqual(
      [convoy.body.id],
    );
    expect((await call('POST', '/v1/convoys/cv-nope/add', { beadIds: [a.id] })).status).toBe(404);

    await t.model.reports.file({
      incidentKey: 'test:one',
      severity: 'high',
      title: 'something is wrong',
      source: 'test',
    });
    await t.model.lifecycle.request({ action: 'park', target: 'web', requestedBy: 'test' });
    const status = await call<{
      incidents: Array<{ incidentKey: string }>;
      lifecycleQueue: Array<{ action: string; target: string }>;
    }>('GET', '/v1/status');
    expect(status.body.incidents.map((r) => r.incidentKey)).toContain('test:one');
    expect(status.body.lifecycleQueue.map((r) => [r.action, r.target])).toContainEqual([
      'park',
      'web',
    ]);
    expect(
      (await call<Array<{ incidentKey: string }>>('GET', '/v1/incidents')).body.map(
        (r) => r.incidentKey,
      ),
    ).toContain('test:one');
    expect((await call<unknown[]>('GET', '/v1/lifecycle')).body.length).toBeGreaterThan(0);
  });

  it('POST /v1/stop answers first, then stops the daemon', async () => {
    const { call, stopped } = await served();
    expect((await call('POST', '/v1/stop')).body).toEqual({ stopping: true });
    expect(stopped()).toBe(1);
  });
});

describe('GET /v1/events', () => {
  it('streams the town’s events with ids; a client that reconnects with Last-Event-ID misses nothing kept and gets nothing twice', async () => {
    const { call, socket, api } = await served();
    // Events come as they happen: make some while the stream is open.
    const streamed = readEvents(
      socket,
      '/v1/events',
      (e) => e.filter((x) => x.event === 'town').length >= 3,
    );
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 3; i++)
      await call('POST', '/v1/rigs/web/park').then(() => call('POST', '/v1/rigs/web/unpark'));
    const seen = (await streamed).filter((e) => e.event === 'town');
    const lastSeen = seen.at(-1)?.id as number;
    expect(seen.map((e) => e.id)).toEqual(seen.map((_, i) => (seen[0]?.id as number) + i));
    const before = api.lastEventId();
    expect(before).toBeGreaterThanOrEqual(lastSeen);
    const resumed = await readEvents(
      socket,
      '/v1/events',
      (e) => e.filter((x) => x.event === 'town').length >= before - lastSeen,
      { 'last-event-id': String(lastSeen) },
    );
    const ids = resumed.filter((e) => e.event === 'town').map((e) => e.id);
    expect(ids[0]).toBe(lastSeen + 1);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('a reconnect past what is kept says how many it missed (a gap event)', async () => {
    const { call, socket, api } = await served({ replayEvents: 3 });
    for (let i = 0; i < 5; i++)
      await call('POST', '/v1/rigs/web/park').then(() => call('POST', '/v1/rigs/web/unpark'));
    await new Promise((r) => setTimeout(r, 20));
    expect(api.lastEventId()).toBeGreaterThan(3);
    const resumed = await readEvents(
      socket,
      '/v1/events?after=0',
      (e) => e.filter((x) => x.event === 'town').length >= 3,
    );
    expect(resumed[0]).toMatchObject({ event: 'gap', data: { missed: api.lastEventId() - 3 } });
  });

  it('a client too slow to keep up is cut off with a clear last event, not buffered without bound', async () => {
    const { socket, t } = await served({ maxClientBacklogBytes: 4_096 });
    // A client that connects and never reads.
    const stalled = await new Promise<import('node:http').IncomingMessage>((resolve) => {
      const req = httpRequest({ socketPath: socket, path: '/v1/events' }, (res) => resolve(res));
      req.end();
    });
    stalled.pause();
    for (let i = 0; i < 3_000; i++)
      t.town.events.emit('*', { type: 'heartbeat', count: i, at: 0 } as never);
    let text = '';
    stalled.setEncoding('utf8');
    stalled.on('data', (c: string) => {
      text += c;
    });
    stalled.resume();
    await new Promise((r) => stalled.once('end', r));
    expect(text).toContain('event: cut');
    expect(text).toContain('fell more than 4096 bytes behind');
  });
});
