import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BelfryError,
  ConfigError,
  DriverError,
  StoreError,
  type Town,
  type TownEvent,
} from '@belfry/core';
import { MAX_FOLLOW_CURSOR } from '@belfry/core/driver';
import type { HumanGateEvaluator } from '@belfry/gate-human';
import type { FastifyError, FastifyInstance } from 'fastify';
import { bearerMatches } from '../apiAccess';
import { DaemonFilesError } from '../runtime';
import { VERSION } from '../version';

/** What the daemon says about itself (`GET /v1/ping`, and `daemon` in `GET /v1/status`). */
export interface DaemonInfo {
  pid: number;
  version: string;
  /** The town's id (recorded in its store; its sessions carry it as a label). */
  townId: string;
  startedAt: number;
  /** Its own files it cannot write now (a full disk), each since when. */
  faults: ReadonlyArray<{ file: string; error: string; since: number; failures: number }>;
  /** Where the API listens on TCP too (bearer token required), when the config asks for it. */
  tcp?: ApiTcpAddress;
}

/** The TCP address the API listens on (the port the system chose, when asked for port 0). */
export interface ApiTcpAddress {
  host: string;
  port: number;
}

/** Options of {@link startApi}. */
export interface ApiOptions {
  town: Town;
  /** The daemon's own state, read at each request. */
  daemon: () => DaemonInfo;
  /** Stops the daemon (`POST /v1/stop`); the answer is sent first. */
  stop: () => void;
  /** The human gate evaluator, when the town has one (approve and reject). */
  human?: HumanGateEvaluator;
  /** How many events `GET /v1/events` can replay after a reconnect. @defaultValue 1_000 */
  replayEvents?: number;
  /** How much unsent output a slow event client may have before it is cut off. @defaultValue 1 MiB */
  maxClientBacklogBytes?: number;
  /** The largest request body. @defaultValue 64 KiB */
  bodyLimitBytes?: number;
  /**
   * Serve the same routes on TCP too, at `host:port` (port 0: any free one), where every request
   * must carry `Authorization: Bearer <token>` (401 otherwise). The Unix socket needs no token:
   * its mode (0600) is its lock. @defaultValue off
   */
  tcp?: ApiTcpAddress & { token: string };
}

/** A running API: its Fastify instance (for `inject` in tests) and how to close it. */
export interface ApiServer {
  readonly app: FastifyInstance;
  /** Where it listens on TCP, when asked to (see {@link ApiOptions.tcp}). */
  readonly tcp?: ApiTcpAddress;
  /** Events the town emitted so far (the id of the last one). */
  lastEventId(): number;
  close(): Promise<void>;
}

/** The body of every error answer: what went wrong, its code, and the field when there is one. */
export interface ApiErrorBody {
  error: { code: string; message: string; path?: string };
}

const NAME = { type: 'string', minLength: 1, maxLength: 200 } as const;
const TEXT = { type: 'string', minLength: 1, maxLength: 100_000 } as const;
const ERROR = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        path: { type: 'string' },
      },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;
/** Answers: any JSON on success; an {@link ApiErrorBody} otherwise. */
const errors = { '2xx': {}, 400: ERROR, 404: ERROR, 409: ERROR, 500: ERROR } as const;
const object = (properties: Record<string, unknown>, required: readonly string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});

/** The HTTP status of an error the town (or the request's checks) raised. */
function statusOf(error: unknown): number {
  if (error instanceof ConfigError) return 400;
  if (error instanceof StoreError)
    return error.code === 'NOT_FOUND'
      ? 404
      : ['CONFLICT', 'INVALID_TRANSITION', 'DUPLICATE_ID'].includes(error.code)
        ? 409
        : error.code === 'INVALID_RECORD'
          ? 400
          : error.code === 'LOCKED'
            ? 503
            : 500;
  if (error instanceof DriverError)
    return error.code === 'NOT_RUNNING' || error.code === 'EXISTS'
      ? 409
      : error.code === 'INVALID_NAME' || error.code === 'INVALID_SPEC'
        ? 400
        : error.code === 'TIMEOUT'
          ? 504
          : error.code === 'UNAVAILABLE'
            ? 503
            : 502;
  if (error instanceof BelfryError) {
    const code = String((error as BelfryError<string>).code);
    return /NOT_FOUND|UNKNOWN/.test(code) ? 404 : /CLOSED|CONFLICT/.test(code) ? 409 : 400;
  }
  return 500;
}

/** An error as the API's answer (status and body); nothing of a stack trace. */
export function apiError(error: unknown): { status: number; body: ApiErrorBody } {
  const e = error as FastifyError & { path?: string; validation?: unknown[] };
  if (e?.validation) {
    const first = (
      e.validation as Array<{
        instancePath?: string;
        message?: string;
        params?: { allowedValues?: unknown[]; additionalProperty?: string };
      }>
    )[0];
    const where = `${e.validationContext ?? 'body'}${first?.instancePath ?? ''}`.replace(
      /\//g,
      '.',
    );
    // What was wrong with which field, and what is allowed where the schema lists it.
    const allowed = first?.params?.allowedValues;
    const extra = first?.params?.additionalProperty;
    const message = first?.message
      ? `${where}: ${first.message}${allowed ? ` (${allowed.map((v) => JSON.stringify(v)).join(', ')})` : ''}${extra ? ` (${JSON.stringify(extra)})` : ''}`
      : e.message;
    return { status: 400, body: { error: { code: 'INVALID_REQUEST', message, path: where } } };
  }
  const fastifyCodes: Record<string, [number, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: [413, 'TOO_LARGE'],
    FST_ERR_CTP_INVALID_JSON_BODY: [400, 'MALFORMED_JSON'],
    FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'MALFORMED_JSON'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'MALFORMED_REQUEST'],
  };
  const known = typeof e?.code === 'string' ? fastifyCodes[e.code] : undefined;
  if (known) return { status: known[0], body: { error: { code: known[1], message: e.message } } };
  if (e instanceof SyntaxError && /JSON/.test(e.message))
    return { status: 400, body: { error: { code: 'MALFORMED_JSON', message: e.message } } };
  const status = statusOf(error);
  const code =
    error instanceof BelfryError ? String((error as BelfryError<string>).code) : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  return {
    status,
    body: {
      error: {
        code,
        message,
        ...(error instanceof ConfigError && error.path ? { path: error.path } : {}),
      },
    },
  };
}

/**
 * Serves the daemon's API (`/v1`, JSON; OpenAPI at `/v1/openapi.json`) on a Unix socket made with
 * mode 0600. Every route calls the town's own operation (the `Town` methods the library exposes),
 * so a rule lives in one place. Requests are checked against their schemas (unknown fields,
 * wrong types and oversized bodies are refused with a JSON error naming the field), and the
 * town's errors keep their codes. With `options.tcp` the same routes are served on that TCP
 * address too, where a request without the bearer token is answered 401 before anything else.
 *
 * @param path - the socket's path (what was there is replaced).
 * @throws DaemonFilesError `API_TCP` when the TCP address cannot be listened on (nothing listens).
 */
export async function startApi(path: string, options: ApiOptions): Promise<ApiServer> {
  const { town } = options;
  // Loaded here, when a daemon starts its API: no other command pays for the HTTP server.
  const [{ default: Fastify }, { default: swagger }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
  ]);
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // A client that sends nothing for this long is dropped (a slow-loris does not pin a socket).
    requestTimeout: 30_000,
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'belfry daemon API',
        version: VERSION,
        description:
          "The running daemon's API, on its control socket: the town's live status and events, and its operations. On the control socket (mode 0600) no token is needed; over TCP (when the config turns it on) every request carries `Authorization: Bearer <token>`, the token from the daemon's 0600 token file.",
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'Required over TCP only: the token in the file `api.tokenFile` names.',
          },
        },
      },
      // Either no token (the control socket) or the bearer token (TCP).
      security: [{}, { bearer: [] }],
    },
  });
  // Requests that came in over TCP: each must carry the token (the socket's mode guards the rest).
  const overTcp = new WeakSet<IncomingMessage>();
  const tcpToken = options.tcp?.token;
  if (tcpToken !== undefined)
    app.addHook('onRequest', async (request, reply) => {
      if (!overTcp.has(request.raw) || bearerMatches(request.headers.authorization, tcpToken))
        return;
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="belfry"')
        .send({
          error: {
            code: 'UNAUTHORIZED',
            message:
              'over TCP this API needs the header "Authorization: Bearer <token>", with the token from the daemon\'s token file (api.tokenFile in belfry.yaml; .belfry/api.token by default)',
          },
        } satisfies ApiErrorBody);
    });
  // JSON only: a text/plain body is refused as any other media type (415), not parsed as text.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = apiError(error);
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({
      error: {
        code: 'NO_ROUTE',
        message: `no route ${request.method} ${request.url.split('?')[0]}; see GET /v1/openapi.json`,
      },
    } satisfies ApiErrorBody);
  });

  // ---- the daemon itself
  app.get('/v1/ping', { schema: { summary: 'the daemon: pid, version, faults' } }, async () =>
    options.daemon(),
  );
  app.post(
    '/v1/wake',
    { schema: { summary: 'run a patrol and the lifecycle worker now' } },
    async () => {
      town.wake();
      return { woken: true };
    },
  );
  app.post(
    '/v1/stop',
    { schema: { summary: 'stop the daemon (agents keep running)' } },
    async (_r, reply) => {
      reply.raw.once('finish', () => options.stop());
      return { stopping: true };
    },
  );
  app.get(
    '/v1/status',
    {
      schema: {
        summary:
          'the live tree (daemon, deacon, rigs, witnesses, polecats, sessions), open incidents and the lifecycle queue',
      },
    },
    async () => {
      const [tree, incidents, lifecycleQueue] = await Promise.all([
        town.status(),
        town.model.reports.open({ limit: 100 }),
        town.model.lifecycle.pending({ limit: 100 }),
      ]);
      return { live: true, daemon: options.daemon(), town: tree, incidents, lifecycleQueue };
    },
  );
  app.get(
    '/v1/incidents',
    { schema: { summary: 'open incidents (reports to the Mayor), oldest first' } },
    async () => town.model.reports.open(),
  );
  app.get(
    '/v1/lifecycle',
    { schema: { summary: 'the lifecycle queue: rig requests not yet carried out, oldest first' } },
    async () => town.model.lifecycle.pending(),
  );

  // ---- beads and work
  app.get(
    '/v1/beads',
    {
      schema: {
        summary: 'beads, filtered by status and rig',
        querystring: object({
          status: NAME,
          rig: NAME,
          limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
        }),
        response: errors,
      },
    },
    async (request) => {
      const q = request.query as { status?: string; rig?: string; limit?: string };
      return town.model.beads.list({
        ...(q.status ? { status: q.status } : {}),
        ...(q.rig ? { rig: q.rig } : {}),
        ...(q.limit ? { limit: Number(q.limit) } : {}),
      });
    },
  );
  app.get(
    '/v1/beads/:id',
    { schema: { summary: 'one bead', params: object({ id: NAME }, ['id']), response: errors } },
    async (request) => town.model.beads.require((request.params as { id: string }).id),
  );
  app.post(
    '/v1/beads',
    {
      schema: {
        summary: 'create a bead',
        body: object({ title: TEXT, rig: NAME }, ['title']),
        response: errors,
      },
    },
    async (request, reply) => {
      const body = request.body as { title: string; rig?: string };
      return reply.status(201).send(await town.model.beads.create(body));
    },
  );
  app.post(
    '/v1/sling',
    {
      schema: {
        summary: "hang a bead on a polecat's hook in a rig; its session starts at once",
        body: object({ bead: NAME, rig: NAME }, ['bead', 'rig']),
        response: errors,
      },
    },
    async (request) => {
      const { bead, rig } = request.body as { bead: string; rig: string };
      return town.sling(bead, rig);
    },
  );
  app.post(
    '/v1/done',
    {
      schema: {
        summary: 'an agent finished its bead',
        body: object({ agent: NAME, bead: NAME, status: NAME, result: {} }, ['agent', 'bead']),
        response: errors,
      },
    },
    async (request) => {
      const b = request.body as { agent: string; bead: string; status?: string; result?: never };
      await town.done(b.agent, b.bead, {
        ...(b.status === undefined ? {} : { status: b.status }),
        ...(b.result === undefined ? {} : { result: b.result }),
      });
      return { done: true, agent: b.agent, bead: b.bead };
    },
  );
  app.post(
    '/v1/agents/:rig/:name/nudge',
    {
      schema: {
        summary: "send text to an agent's session (delivery verified)",
        params: object({ rig: NAME, name: NAME }, ['rig', 'name']),
        body: object({ text: TEXT }, ['text']),
        response: errors,
      },
    },
    async (request) => {
      const { rig, name } = request.params as { rig: string; name: string };
      await town.nudge(`${rig}/${name}`, (request.body as { text: string }).text);
      return { delivered: true };
    },
  );
  app.get(
    '/v1/agents/:rig/:name/output',
    {
      schema: {
        summary:
          "an agent's last lines of output; with follow (or after), its finished lines after a cursor",
        description:
          'Without follow: `{agent, lines}`, the last `lines` lines (default 50). With `follow=true`: `{agent, lines, end, continuous}`, the latest finished lines (default 200) and a cursor after them; pass `after=<end>` next time to get exactly the lines since, however alike (`continuous: true`). `continuous: false` means the cursor could not be counted on (another run of the session, a resized or cleared pane, history dropped, a full-screen program, more lines than asked for, or a driver that cannot follow: then no `end`): the lines are the latest ones.',
        params: object({ rig: NAME, name: NAME }, ['rig', 'name']),
        querystring: object({
          lines: { type: 'string', pattern: '^[1-9][0-9]{0,4}$' },
          follow: { type: 'string', enum: ['true'] },
          after: { type: 'string', minLength: 1, maxLength: MAX_FOLLOW_CURSOR },
        }),
        response: errors,
      },
    },
    async (request) => {
      const { rig, name } = request.params as { rig: string; name: string };
      const q = request.query as { lines?: string; follow?: string; after?: string };
      const agent = `${rig}/${name}`;
      if (q.follow === undefined && q.after === undefined)
        return {
          agent,
          lines: await town.output(agent, q.lines ? { lines: Number(q.lines) } : {}),
        };
      return {
        agent,
        ...(await town.followOutput(agent, {
          ...(q.lines === undefined ? {} : { lines: Number(q.lines) }),
          ...(q.after === undefined ? {} : { after: q.after }),
        })),
      };
    },
  );

  // ---- rigs
  app.get('/v1/rigs', { schema: { summary: 'the rigs and their states' } }, async () =>
    town.rigs.list(),
  );
  app.post(
    '/v1/rigs/:rig/:action',
    {
      schema: {
        summary:
          'park, unpark, dock or undock a rig: the request is stored and carried out in order (202)',
        params: object(
          { rig: NAME, action: { type: 'string', enum: ['park', 'unpark', 'dock', 'undock'] } },
          ['rig', 'action'],
        ),
        body: { anyOf: [object({ immediate: { type: 'boolean' } }), { type: 'null' }] },
        response: errors,
      },
    },
    async (request, reply) => {
      const { rig, action } = request.params as {
        rig: string;
        action: 'park' | 'unpark' | 'dock' | 'undock';
      };
      const immediate = (request.body as { immediate?: boolean } | null)?.immediate === true;
      const queued = await town.model.lifecycle.request({
        action,
        target: rig,
        requestedBy: 'api',
        ...(immediate ? { args: { immediate: true } } : {}),
      });
      town.wake();
      return reply.status(202).send(queued);
    },
  );

  // ---- gates
  app.get(
    '/v1/gates',
    {
      schema: {
        summary: 'open gates (of a type)',
        querystring: object({ type: NAME }),
        response: errors,
      },
    },
    async (request) => {
      const type = (request.query as { type?: string }).type;
      return town.gates.list(type ? { type } : {});
    },
  );
  app.post(
    '/v1/gates',
    {
      schema: {
        summary: 'create a gate (its type checks its spec)',
        body: object(
          {
            type: NAME,
            spec: {},
            timeoutMs: { type: 'integer', minimum: 1 },
            dueAt: { type: 'integer', minimum: 0 },
            waiters: { type: 'array', items: NAME, maxItems: 1_000 },
          },
          ['type', 'spec'],
        ),
        response: errors,
      },
    },
    async (request, reply) => {
      const gate = await town.gates.create(request.body as never);
      town.wake();
      return reply.status(201).send(gate);
    },
  );
  app.get(
    '/v1/gates/:id',
    { schema: { summary: 'one gate', params: object({ id: NAME }, ['id']), response: errors } },
    async (request) => town.model.gates.require((request.params as { id: string }).id),
  );
  for (const decision of ['approve', 'reject'] as const)
    app.post(
      `/v1/gates/:id/${decision}`,
      {
        schema: {
          summary: `${decision} a human gate (by whom, and why)`,
          params: object({ id: NAME }, ['id']),
          body: object({ by: NAME, comment: { type: 'string', maxLength: 2_000 } }, ['by']),
          response: errors,
        },
      },
      async (request) => {
        const human = options.human;
        if (!human)
          throw new BelfryError({
            code: 'NO_HUMAN_GATES',
            message: 'this town has no human gates (gates.human is off in its config)',
          });
        const id = (request.params as { id: string }).id;
        const input = request.body as { by: string; comment?: string };
        return decision === 'approve' ? human.approve(id, input) : human.reject(id, input);
      },
    );

  // ---- warrants and convoys
  app.get('/v1/warrants', { schema: { summary: 'pending warrants' } }, async () =>
    town.warrants.list(),
  );
  app.post(
    '/v1/warrants',
    {
      schema: {
        summary: 'file a warrant against an agent',
        body: object(
          {
            target: NAME,
            reason: TEXT,
            filedBy: NAME,
            release: { type: 'string', enum: ['open', 'blocked'] },
          },
          ['target', 'reason'],
        ),
        response: errors,
      },
    },
    async (request, reply) => {
      const filed = await town.warrants.file(request.body as never);
      town.wake();
      return reply.status(filed.created ? 201 : 200).send(filed);
    },
  );
  app.post(
    '/v1/convoys',
    {
      schema: {
        summary: 'create a convoy of beads and molecules',
        body: object(
          {
            title: TEXT,
            beadIds: { type: 'array', items: NAME, maxItems: 1_000 },
            moleculeIds: { type: 'array', items: NAME, maxItems: 1_000 },
          },
          ['title'],
        ),
        response: errors,
      },
    },
    async (request, reply) =>
      reply.status(201).send(await town.convoys.create(request.body as never)),
  );
  app.get('/v1/convoys', { schema: { summary: 'open convoys, oldest first' } }, async () =>
    town.convoys.list(),
  );
  app.post(
    '/v1/convoys/:id/add',
    {
      schema: {
        summary: 'track more beads and molecules in a convoy (a closed one reopens)',
        params: object({ id: NAME }, ['id']),
        body: object({
          beadIds: { type: 'array', items: NAME, maxItems: 1_000 },
          moleculeIds: { type: 'array', items: NAME, maxItems: 1_000 },
        }),
        response: errors,
      },
    },
    async (request) =>
      town.convoys.add((request.params as { id: string }).id, request.body as never),
  );
  app.get(
    '/v1/convoys/:id',
    { schema: { summary: 'a convoy', params: object({ id: NAME }, ['id']), response: errors } },
    async (request) => town.convoys.status((request.params as { id: string }).id),
  );

  // ---- events
  const events = new EventLog(options.replayEvents ?? 1_000);
  const maxBacklog = options.maxClientBacklogBytes ?? 1024 * 1024;
  const clients = new Set<ServerResponse>();
  const onEvent = (event: TownEvent) => {
    const entry = events.add(event);
    for (const client of clients) send(client, entry.id, 'town', event);
  };
  const send = (client: ServerResponse, id: number | undefined, type: string, data: unknown) => {
    if (client.destroyed || client.writableEnded) {
      clients.delete(client);
      return;
    }
    if (client.writableLength > maxBacklog) {
      clients.delete(client);
      client.end(
        `event: cut\ndata: ${JSON.stringify({ reason: `the client fell more than ${maxBacklog} bytes behind`, lastEventId: events.last() })}\n\n`,
      );
      return;
    }
    client.write(
      `${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`,
    );
  };
  town.events.on('*', onEvent);
  app.get(
    '/v1/events',
    {
      schema: {
        summary:
          "the town's events as Server-Sent Events (id per event; resume with Last-Event-ID or ?after=)",
        querystring: object({ after: { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' } }),
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' } },
        },
      },
    },
    async (request, reply) => {
      const after =
        (request.query as { after?: string }).after ??
        (request.headers['last-event-id'] as string | undefined);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      raw.write(`: belfry events; the last is ${events.last()}\n\n`);
      if (after !== undefined) {
        const { entries, missed } = events.since(Number(after));
        if (missed > 0)
          send(raw, undefined, 'gap', {
            missed,
            message: `${missed} events after ${after} are no longer kept (the replay keeps ${events.capacity})`,
          });
        for (const e of entries) send(raw, e.id, 'town', e.event);
      }
      clients.add(raw);
      raw.on('close', () => clients.delete(raw));
      // A client gone mid-write (EPIPE, a reset) is dropped, never an error of the daemon's.
      raw.on('error', () => clients.delete(raw));
      raw.socket?.on('error', () => clients.delete(raw));
    },
  );
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.ready();
  const before = process.umask(0o177);
  try {
    // Room for many clients connecting at once (a Unix socket refuses, not queues, past it).
    await app.listen({ path, backlog: 4_096 });
  } finally {
    process.umask(before);
  }
  // The same routes on TCP: this server hands each request to Fastify, marked as come over TCP.
  let tcpServer: Server | undefined;
  let tcp: ApiTcpAddress | undefined;
  if (options.tcp) {
    const server = createServer((request, response) => {
      overTcp.add(request);
      app.routing(request, response);
    });
    tcpServer = server;
    server.requestTimeout = 30_000;
    const { host, port } = options.tcp;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 4_096 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await app.close();
      throw new DaemonFilesError({
        code: 'API_TCP',
        message: `cannot listen for the API on TCP at ${host}:${port} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); free the port or change api.tcp in the config`,
        cause: error,
      });
    }
    tcp = { host, port: (server.address() as AddressInfo).port };
  }
  return {
    app,
    ...(tcp === undefined ? {} : { tcp }),
    lastEventId: () => events.last(),
    async close() {
      town.events.off('*', onEvent);
      for (const client of clients) client.end();
      clients.clear();
      if (tcpServer) {
        const closed = new Promise((resolve) => tcpServer?.close(resolve));
        tcpServer.closeAllConnections();
        await closed;
      }
      await app.close();
    },
  };
}

/** The last `capacity` events, numbered from 1 in the order they were emitted. */
class EventLog {
  private readonly entries: Array<{ id: number; event: TownEvent }> = [];
  private next = 1;

  constructor(readonly capacity: number) {}

  add(event: TownEvent): { id: number; event: TownEvent } {
    const entry = { id: this.next++, event };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.shift();
    return entry;
  }

  last(): number {
    return this.next - 1;
  }

  /** The events after `id` that are still kept, and how many after it are not. */
  since(id: number): { entries: Array<{ id: number; event: TownEvent }>; missed: number } {
    const oldest = this.entries[0]?.id ?? this.next;
    const missed = Math.max(0, oldest - id - 1);
    return { entries: this.entries.filter((e) => e.id > id), missed };
  }
}
