/**
 * The API on TCP (issue 14, §1): off by default; when configured, the same routes on a TCP
 * address where every request needs the bearer token from a 0600 file (made when missing). The
 * daemon runs as a real process of the `belfry` command.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE, loadConfig } from '@belfry/cli';
import { ConfigError } from '@belfry/core';
import { afterEach, describe, expect, it } from 'vitest';
import { bearerMatches, isLoopback, readApiToken } from '../src/apiAccess';
import { DaemonFilesError } from '../src/runtime';
import { belfry, daemonState, FAST_MEMORY_TOWN } from './bin';

const dirs: string[] = [];

afterEach(async () => {
  for (const dir of dirs.splice(0)) await belfry(dir, 'daemon', 'stop', '--timeout', '10000');
});

function town(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-tcp-'));
  writeFileSync(join(dir, CONFIG_FILE), config);
  dirs.push(dir);
  return dir;
}

/** On port 0: the system picks a free port, which `daemon status --json` shows. */
const TCP_TOWN = `${FAST_MEMORY_TOWN}api: { tcp: { host: 127.0.0.1, port: 0 } }\n`;

/**
 * The TCP ports process `pid` listens on (Linux: its socket inodes among the LISTEN entries of
 * /proc/net/tcp and tcp6).
 */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT, st 0A is LISTEN, the inode is the tenth column.
      if (cols[3] === '0A' && inodes.has(cols[9] as string))
        ports.push(Number.parseInt((cols[1] as string).split(':')[1] as string, 16));
    }
  }
  return ports;
}

const status = async (dir: string) =>
  JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out) as {
    state: string;
    pid: number;
    tcp?: { host: string; port: number };
  };

describe('api in belfry.yaml', () => {
  const load = (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'belfry-tcp-cfg-'));
    writeFileSync(join(dir, CONFIG_FILE), text);
    return { dir, config: () => loadConfig(join(dir, CONFIG_FILE)) };
  };

  it('TCP is off unless api.tcp is given; then 127.0.0.1:7411 unless configured', () => {
    const off = load(FAST_MEMORY_TOWN);
    expect(off.config().api).toEqual({ tokenFile: join(off.dir, '.belfry', 'api.token') });
    expect(load(`${FAST_MEMORY_TOWN}api: { tcp: false }\n`).config().api.tcp).toBeUndefined();
    expect(load(`${FAST_MEMORY_TOWN}api: { tcp: {} }\n`).config().api.tcp).toEqual({
      host: '127.0.0.1',
      port: 7411,
    });
    const set = load(
      `${FAST_MEMORY_TOWN}api: { tcp: { host: "::1", port: 9000 }, tokenFile: secrets/t }\n`,
    );
    expect(set.config().api).toEqual({
      tcp: { host: '::1', port: 9000 },
      tokenFile: join(set.dir, 'secrets', 't'),
    });
  });

  it('refuses a bad port, host or key, naming the key and what is allowed', () => {
    for (const [api, message] of [
      ['{ tcp: { port: 70000 } }', /api\.tcp\.port: must be a port from 1 to 65535/],
      ['{ tcp: { port: "80" } }', /api\.tcp\.port: must be an integer >= 0; got "80"/],
      ['{ tcp: { host: "a b" } }', /api\.tcp\.host: must be an IP address .* or a host name/],
      ['{ tcp: 7411 }', /api\.tcp: must be a mapping \(host, port\) or false; got 7411/],
      ['{ tcp: { adress: x } }', /api\.tcp\.adress: is not a setting here; allowed: host, port/],
      ['{ token: x }', /api\.token: is not a setting here; allowed: tcp, tokenFile/],
    ] as const) {
      const { config } = load(`${FAST_MEMORY_TOWN}api: ${api}\n`);
      expect(config).toThrow(ConfigError);
      expect(config).toThrow(message);
    }
  });
});

describe('the API token file', () => {
  const folder = () => mkdtempSync(join(tmpdir(), 'belfry-token-'));

  it('is made when missing: a random base64url token, mode 0600, in a 0700 folder', () => {
    const dir = folder();
    const file = join(dir, 'state', 'api.token');
    const token = readApiToken(file);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(readApiToken(file)).toBe(token);
    expect(readApiToken(join(folder(), 'api.token'))).not.toBe(token);
  });

  it('refuses a file open to others, saying how to fix it; and one without a token, or a link', () => {
    const dir = folder();
    const file = join(dir, 'api.token');
    writeFileSync(file, 'a-token-long-enough-to-use\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    expect(() => readApiToken(file)).toThrow(DaemonFilesError);
    expect(() => readApiToken(file)).toThrow(
      `the API token file ${file} has mode 0644, open to other users; the daemon does not start with it: make it private with \`chmod 600 ${file}\` and start again`,
    );
    chmodSync(file, 0o600);
    expect(readApiToken(file)).toBe('a-token-long-enough-to-use');
    writeFileSync(file, 'short\n');
    expect(() => readApiToken(file)).toThrow(/does not hold a token \(one word of at least 16/);
    const link = join(dir, 'link.token');
    symlinkSync(file, link);
    expect(() => readApiToken(link)).toThrow(/is not a regular file \(a symbolic link\)/);
  });

  it('a bearer header matches only the token itself', () => {
    const token = 'abcdefghijklmnopqrstuvwxyz';
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    for (const header of [
      undefined,
      '',
      token,
      `Bearer ${token}x`,
      `Bearer ${token.slice(1)}`,
      `Basic ${token}`,
      'Bearer ',
    ])
      expect(bearerMatches(header, token)).toBe(false);
    expect(bearerMatches('Bearer ', '')).toBe(false);
  });

  it('knows the loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com'])
      expect(isLoopback(host)).toBe(false);
  });
});

describe('the API on TCP, with a real daemon', () => {
  it('is off by default: the daemon listens on no TCP port and makes no token', async () => {
    const dir = town(FAST_MEMORY_TOWN);
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const s = await status(dir);
    expect(s.state).toBe('running');
    expect(s.tcp).toBeUndefined();
    expect(listeningPorts(s.pid)).toEqual([]);
    expect(existsSync(join(dir, '.belfry', 'api.token'))).toBe(false);
  }, 60_000);

  it('when configured: 401 without or with a wrong token, 200 with the token from the 0600 file it made; the socket needs none; the token never in the log', async () => {
    const dir = town(TCP_TOWN);
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const s = await status(dir);
    expect(s.tcp?.host).toBe('127.0.0.1');
    const port = s.tcp?.port as number;
    expect(listeningPorts(s.pid)).toContain(port);
    const file = join(dir, '.belfry', 'api.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    const url = `http://127.0.0.1:${port}`;
    const call = (path: string, headers: Record<string, string> = {}, body?: unknown) =>
      fetch(`${url}${path}`, {
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) }),
      });

    for (const headers of [
      {},
      { authorization: 'Bearer not-the-token' },
      { authorization: `Basic ${token}` },
      { authorization: token },
    ]) {
      const refused = await call('/v1/ping', headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await refused.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    }
    // Nothing is read or done without it: not an unknown route, not a write.
    expect((await call('/v1/nosuch')).status).toBe(401);
    expect((await call('/v1/beads', {}, { title: 'sneaky', rig: 'api' })).status).toBe(401);

    const auth = { authorization: `Bearer ${token}` };
    const ping = await call('/v1/ping', auth);
    expect(ping.status).toBe(200);
    expect(await ping.json()).toMatchObject({ pid: s.pid, tcp: { host: '127.0.0.1', port } });
    const created = await call('/v1/beads', auth, { title: 'over tcp', rig: 'api' });
    expect(created.status).toBe(201);
    expect((await call('/v1/nosuch', auth)).status).toBe(404);

    // The control socket stays trusted by its mode: the commands need no token.
    const beads = await belfry(dir, 'bead', 'list', '--rig', 'api', '--json');
    expect(beads.code).toBe(0);
    expect(beads.out).toContain('over tcp');
    expect(beads.out).not.toContain('sneaky');

    expect((await belfry(dir, 'daemon', 'stop')).code).toBe(0);
    const log = readFileSync(join(dir, '.belfry', 'daemon.log'), 'utf8');
    expect(log).toContain(`the API listens on TCP at 127.0.0.1:${port}`);
    expect(log).not.toContain(token);
  }, 60_000);

  it('refuses to start with a token file open to others, saying how to fix it', async () => {
    const dir = town(TCP_TOWN);
    const file = join(dir, '.belfry', 'api.token');
    mkdirSync(join(dir, '.belfry'), { recursive: true, mode: 0o700 });
    writeFileSync(file, 'a-token-long-enough-to-use\n');
    chmodSync(file, 0o644);
    const started = await belfry(dir, 'daemon', 'start');
    expect(started.code).toBe(1);
    expect(started.err).toContain(`the API token file ${file} has mode 0644, open to other users`);
    expect(started.err).toContain(`chmod 600 ${file}`);
    expect((await status(dir)).state).toBe('stopped');
    expect(daemonState(dir)).toBeUndefined();
  }, 60_000);

  it('a host that is not a loopback address is served as configured, with a warning in the log', async () => {
    const dir = town(`${FAST_MEMORY_TOWN}api: { tcp: { host: 0.0.0.0, port: 0 } }\n`);
    expect((await belfry(dir, 'daemon', 'start')).code).toBe(0);
    const s = await status(dir);
    expect(s.tcp?.host).toBe('0.0.0.0');
    const token = readFileSync(join(dir, '.belfry', 'api.token'), 'utf8').trim();
    const ping = await fetch(`http://127.0.0.1:${s.tcp?.port}/v1/ping`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ping.status).toBe(200);
    const warning = readFileSync(join(dir, '.belfry', 'daemon.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .find((e) => e.level === 'warn' && e.msg.includes('not a loopback address'));
    expect(warning?.msg).toContain(`0.0.0.0:${s.tcp?.port}`);
  }, 60_000);
});
