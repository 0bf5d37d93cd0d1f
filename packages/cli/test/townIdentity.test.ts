/**
 * A town's own identity (issue 14 §3), with the real `belfry` command, real daemons, SQLite and
 * tmux: two towns in folders of the same name (`x/town`, `y/town`) never touch each other's
 * sessions, whether each has its own tmux server (the default: a socket in its state folder) or
 * both were configured onto one; a daemon refuses to move the town's sessions to another server.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CONFIG_FILE } from '@belfry/cli';
import { TOWN_LABEL } from '@belfry/core';
import type { SessionStatus } from '@belfry/core/driver';
import { createTmuxDriver, type TmuxSocket } from '@belfry/driver-tmux';
import { SqliteStore } from '@belfry/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { legacyTmuxSocketName } from '../src/tmuxSocket';
import { belfry, daemonState, eventually } from './bin';

/** Every daemon's town folder and tmux server a test started, stopped and killed after it. */
const started: Array<{ dir: string; sockets: TmuxSocket[] }> = [];

/** Private folders that tests' tmux servers were placed in, removed after the test. */
const rmLater: string[] = [];

afterEach(async () => {
  for (const t of started.splice(0)) {
    await belfry(t.dir, 'daemon', 'stop', '--timeout', '10000');
    for (const socket of t.sockets) {
      await createTmuxDriver({ socket }).killServer();
      // tmux leaves a killed server's socket file; a named one would pile up in its folder.
      if ('name' in socket)
        rmSync(join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid?.()}`, socket.name), {
          force: true,
        });
    }
  }
  for (const folder of rmLater.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Writes a town's config in `<parent>/town` (tmux, fast heartbeats, an agent that keeps running). */
function configure(parent: string, options: { socket?: string; rigs?: string[] } = {}): string {
  const dir = join(parent, 'town');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, CONFIG_FILE),
    `driver:
  kind: tmux
${options.socket === undefined ? '' : `  socket: ${options.socket}\n`}  stopGraceMs: 500
gates: { github: false }
rigs: [${(options.rigs ?? ['api']).join(', ')}]
agent:
  command: ["sh", "-c", "(while :; do echo working; sleep 1; done) & while read -r line; do echo \\"got: $line\\"; done"]
timings:
  heartbeatMs: 200
  patrolIntervalMs: 400
  surveyMs: 200
`,
  );
  return dir;
}

/** A town (see {@link configure}) on the socket it names, else on its own in its state folder. */
function town(parent: string, options: { socket?: string; rigs?: string[] } = {}) {
  const dir = configure(parent, options);
  const socket: TmuxSocket =
    options.socket === undefined
      ? { path: join(dir, '.belfry', 'tmux.sock') }
      : { name: options.socket };
  const t = { dir, sockets: [socket] };
  started.push(t);
  return { ...t, tmux: createTmuxDriver({ socket }) };
}

/** Creates a bead in `rig` and slings it there; returns the agent's session name. */
async function sling(dir: string, rig: string): Promise<string> {
  const bead = JSON.parse(
    (await belfry(dir, 'bead', 'create', 'work', '--rig', rig, '--json')).out,
  ) as { id: string };
  const slung = await belfry(dir, 'sling', bead.id, rig, '--json');
  expect(slung.code).toBe(0);
  return (JSON.parse(slung.out) as { agent: string }).agent.replace('/', '-');
}

/** The session once it runs. */
function running(tmux: ReturnType<typeof createTmuxDriver>, name: string): Promise<SessionStatus> {
  return eventually(`session ${name} running`, async () => {
    const s = await tmux.status(name);
    return s.state === 'running' ? s : undefined;
  });
}

/** Waits out `n` more heartbeats of the daemon of `dir`. */
async function heartbeats(dir: string, n: number): Promise<void> {
  const from = daemonState(dir)?.heartbeatCount ?? 0;
  await eventually(`${n} heartbeats of ${dir}`, () =>
    (daemonState(dir)?.heartbeatCount ?? 0) >= from + n ? true : undefined,
  );
}

/** The town's id, as its store records it. */
async function townIdOf(dir: string): Promise<string | undefined> {
  const store = SqliteStore.open({ path: join(dir, '.belfry', 'town.db'), create: false });
  try {
    return await store.townId();
  } finally {
    await store.close();
  }
}

const log = (dir: string) => readFileSync(join(dir, '.belfry', 'daemon.log'), 'utf8');

describe('two towns whose folders share a base name (real daemons and tmux)', () => {
  it('each runs on its own tmux server, a socket in its state folder; a bead slung in each, both sessions survive many heartbeats of the other daemon', async () => {
    const root = mkdtempSync(join(tmpdir(), 'belfry-ids-'));
    const x = town(join(root, 'x'));
    const y = town(join(root, 'y'));
    for (const t of [x, y]) expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    const sx = await sling(x.dir, 'api');
    const sy = await sling(y.dir, 'api');
    const before = [await running(x.tmux, sx), await running(y.tmux, sy)];

    // The default socket is a path in the state folder, recorded in the town's record.
    for (const t of [x, y]) {
      const path = join(t.dir, '.belfry', 'tmux.sock');
      expect(statSync(path).isSocket()).toBe(true);
      const record = JSON.parse(readFileSync(join(t.dir, '.belfry', 'town.json'), 'utf8'));
      expect(record.tmuxSocket).toEqual({ path });
    }
    // Each session carries its town's id; the ids differ.
    const ids = [await townIdOf(x.dir), await townIdOf(y.dir)];
    expect(ids[0]).toMatch(/^tw-[0-9a-f]{24}$/);
    expect(ids[1]).not.toBe(ids[0]);
    expect(before.map((s) => s.labels?.[TOWN_LABEL])).toEqual(ids);

    await heartbeats(x.dir, 10);
    await heartbeats(y.dir, 10);
    expect(await x.tmux.status(sx)).toMatchObject({ state: 'running', epoch: before[0]?.epoch });
    expect(await y.tmux.status(sy)).toMatchObject({ state: 'running', epoch: before[1]?.epoch });
    for (const t of [x, y]) expect(log(t.dir)).not.toContain('polecat.stopped');
  }, 120_000);

  it('configured onto one tmux server (a socket name, as init wrote before), neither stops, adopts or counts the other’s session', async () => {
    const root = mkdtempSync(join(tmpdir(), 'belfry-ids-'));
    const shared = `belfry-ids-test-${process.pid}`;
    const x = town(join(root, 'x'), { socket: shared });
    // y has x's rig too: its Witness surveys the rig's sessions on the shared server.
    const y = town(join(root, 'y'), { socket: shared, rigs: ['api', 'web'] });
    for (const t of [x, y]) expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    const sx = await sling(x.dir, 'api');
    const sy = await sling(y.dir, 'web');
    const tmux = x.tmux;
    const before = [await running(tmux, sx), await running(tmux, sy)];
    expect(before[0]?.labels?.[TOWN_LABEL]).toBe(await townIdOf(x.dir));
    expect(before[1]?.labels?.[TOWN_LABEL]).toBe(await townIdOf(y.dir));

    await heartbeats(x.dir, 10);
    await heartbeats(y.dir, 10);
    expect(await tmux.status(sx)).toMatchObject({ state: 'running', epoch: before[0]?.epoch });
    expect(await tmux.status(sy)).toMatchObject({ state: 'running', epoch: before[1]?.epoch });
    for (const t of [x, y]) {
      expect(log(t.dir)).not.toContain('polecat.stopped');
      expect(log(t.dir)).not.toContain('polecat.adopted');
    }
    // y counts none of x's: its rig api has no polecat, and no session of x's in its status.
    const tree = JSON.parse((await belfry(y.dir, 'status', '--json')).out) as {
      rigs: Array<{ name: string; polecats: Array<{ session: { name: string } }> }>;
    };
    expect(tree.rigs.find((r) => r.name === 'api')?.polecats).toEqual([]);
    expect(tree.rigs.flatMap((r) => r.polecats.map((p) => p.session.name))).toEqual([sy]);
  }, 120_000);
});

describe('the town’s tmux server, recorded', () => {
  it('a daemon refuses to start on another socket while the town’s agents run on the recorded one, naming both; back on it, it adopts them', async () => {
    const root = mkdtempSync(join(tmpdir(), 'belfry-ids-'));
    const t = town(root);
    const other = `belfry-ids-other-${process.pid}`;
    t.sockets.push({ name: other });
    expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    const session = await sling(t.dir, 'api');
    const { epoch } = await running(t.tmux, session);
    expect((await belfry(t.dir, 'daemon', 'stop')).code).toBe(0);

    const config = join(t.dir, CONFIG_FILE);
    const text = readFileSync(config, 'utf8');
    writeFileSync(config, text.replace('  kind: tmux\n', `  kind: tmux\n  socket: ${other}\n`));
    const refused = await belfry(t.dir, 'daemon', 'run');
    expect(refused.code).toBe(1);
    const own = join(t.dir, '.belfry', 'tmux.sock');
    expect(refused.err).toContain(`tmux -L ${other}`);
    expect(refused.err).toContain(`1 of them (${session}) still run on tmux -S ${own}`);
    expect(refused.err).toContain(`driver.socket: ${own}`);
    expect(await createTmuxDriver({ socket: { name: other } }).list()).toEqual([]);

    // Named by its path, the recorded server is the same one: the daemon adopts the agent.
    writeFileSync(config, text.replace('  kind: tmux\n', `  kind: tmux\n  socket: ${own}\n`));
    expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    await eventually('the agent adopted', () => log(t.dir).includes('polecat.adopted'));
    expect(await t.tmux.status(session)).toMatchObject({ state: 'running', epoch });
    expect((await belfry(t.dir, 'daemon', 'stop')).code).toBe(0);

    // With the old server gone (its agents with it), moving is allowed and recorded.
    await t.tmux.killServer();
    writeFileSync(config, text.replace('  kind: tmux\n', `  kind: tmux\n  socket: ${other}\n`));
    expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    const record = JSON.parse(readFileSync(join(t.dir, '.belfry', 'town.json'), 'utf8'));
    expect(record.tmuxSocket).toEqual({ name: other });
    await running(createTmuxDriver({ socket: { name: other } }), session);
  }, 120_000);

  it('a town too deep for a socket in its state folder runs its tmux server in a private folder, recorded, and the next daemon finds it there', async () => {
    const root = mkdtempSync(join(tmpdir(), 'belfry-ids-'));
    const t = { dir: configure(join(root, 'd'.repeat(90))), sockets: [] as TmuxSocket[] };
    started.push(t);
    const recorded = () =>
      JSON.parse(readFileSync(join(t.dir, '.belfry', 'town.json'), 'utf8')).tmuxSocket as {
        path: string;
      };
    expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    const socket = recorded();
    t.sockets.push(socket);
    rmLater.push(dirname(socket.path));
    expect(socket.path).toMatch(/\/belfry-[^/]+\/tmux\.sock$/);
    expect(socket.path.startsWith(t.dir)).toBe(false);
    expect(log(t.dir)).toContain(`the town's tmux server is at ${socket.path}`);
    expect(log(t.dir)).toContain('too deep for a Unix socket');
    const tmux = createTmuxDriver({ socket });
    const session = await sling(t.dir, 'api');
    const { epoch } = await running(tmux, session);
    expect((await belfry(t.dir, 'daemon', 'stop')).code).toBe(0);
    expect((await belfry(t.dir, 'daemon', 'start')).code).toBe(0);
    expect(recorded()).toEqual(socket);
    await eventually('the agent adopted', () => log(t.dir).includes('polecat.adopted'));
    expect(await tmux.status(session)).toMatchObject({ state: 'running', epoch });
  }, 120_000);

  it('a town from before servers were recorded, whose config names none, is refused while its agents run on the name it used by default then', async () => {
    const root = mkdtempSync(join(tmpdir(), 'belfry-ids-'));
    const t = town(root);
    const legacy = { name: legacyTmuxSocketName(t.dir) };
    t.sockets.push(legacy);
    // An agent the town started then: belfry's labels, no town label.
    await createTmuxDriver({ socket: legacy }).start({
      name: 'api-toast',
      epoch: 1,
      command: ['sleep', '1000'],
      labels: { rig: 'api', agent: 'api/toast', bead: 'bd-1', hookEpoch: '1' },
    });
    const refused = await belfry(t.dir, 'daemon', 'run');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`1 of them (api-toast) still run on tmux -L ${legacy.name}`);
    expect(refused.err).toContain(`set \`driver.socket: ${legacy.name}\``);
    expect(
      JSON.parse(readFileSync(join(t.dir, '.belfry', 'town.json'), 'utf8')),
    ).not.toHaveProperty('tmuxSocket');
  }, 60_000);
});
