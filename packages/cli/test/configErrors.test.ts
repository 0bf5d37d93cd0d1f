import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CONFIG_FILE, defaultConfigText, loadConfig } from '@belfry/cli';
import { ConfigError } from '@belfry/core';
import { checkSessionSpec } from '@belfry/core/driver';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { legacyTmuxSocketName, resolveTmuxSocket } from '../src/tmuxSocket';
import { belfry } from './bin';

const folder = () => mkdtempSync(join(tmpdir(), 'belfry-cfg-'));

function write(text: string, dir = folder()): string {
  const file = join(dir, CONFIG_FILE);
  writeFileSync(file, text);
  return file;
}

/** Loads `text` and returns the ConfigError it must give, checking it names file, line and column. */
function refusal(text: string): ConfigError {
  const file = write(text);
  try {
    loadConfig(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.message).toMatch(new RegExp(`^${file.replaceAll('.', '\\.')}:\\d+:\\d+: `));
    return error;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

const AGENT = 'agent:\n  command: ["agent"]\n';

describe('a config is refused with file, line, column and key; never a stack trace', () => {
  it('an alias to a missing anchor names the alias and its line', () => {
    const e = refusal(`${AGENT}rigs: [*nope]\n`);
    expect(e.message).toMatch(/:3:8: not valid YAML: the alias \*nope names no anchor/);
  });

  it('an alias used before its anchor is refused the same way', () => {
    expect(refusal(`${AGENT}rigs: [*a]\nlogs: &a {keep: 1}\n`).message).toMatch(
      /:3:8: .*\*a names no anchor &a set before it/,
    );
  });

  it('aliases that expand past the cap (a billion laughs) are refused at the first alias', () => {
    const letters = 'abcdefghij';
    const lines = ['x0: &a [lol, lol]'];
    for (let i = 1; i < letters.length; i++)
      lines.push(
        `x${i}: &${letters[i]} [*${letters[i - 1]}, *${letters[i - 1]}, *${letters[i - 1]}]`,
      );
    const e = refusal(`${AGENT}${lines.join('\n')}\n`);
    expect(e.message).toMatch(/:4:9: not valid YAML: its aliases expand to more than 100 copies/);
  });

  it('a list or a mapping as a key is refused with its line', () => {
    expect(refusal(`${AGENT}? [a, b]\n: 1\n`).message).toMatch(
      /:3:3: not valid YAML: a key must be a plain name/,
    );
  });

  it('YAML syntax errors carry line and column, without yaml’s snippet', () => {
    const e = refusal('store: [unclosed\n');
    expect(e.message).toMatch(/:\d+:\d+: not valid YAML: /);
    expect(e.message).not.toContain('\n');
    expect(refusal('a: 1\na: 2\n').message).toMatch(
      /:2:1: not valid YAML: Map keys must be unique/,
    );
  });

  it('a missing section or key points at the nearest line there is', () => {
    expect(refusal('rigs: [main]\n').message).toMatch(/:1:1: agent: is missing/);
    expect(refusal('- a\n- b\n').message).toMatch(/:1:1: the file: must be a mapping/);
    expect(refusal('').message).toMatch(/:1:1: the file: must be a mapping/);
    expect(refusal(`rigs: [main]\n${AGENT}driver:\n  kind: docker\n`).message).toMatch(
      /:5:3: driver\.kind: must be one of tmux, memory/,
    );
    expect(refusal(`${AGENT}rigs:\n  - main\n  - Bad\n`).message).toMatch(/:5:5: rigs\.1: /);
  });

  it.each<[string, string, RegExp]>([
    ['an empty name', 'agent:\n  command: ["agent"]\n  env:\n    "": x\n', /:4:5: agent\.env\.: /],
    [
      'a name with =',
      'agent:\n  command: ["agent"]\n  env:\n    "A=B": x\n',
      /:4:5: agent\.env\.A=B: /,
    ],
    [
      'a NUL in a name',
      'agent:\n  command: ["agent"]\n  env:\n    "A\\0": x\n',
      /:4:5: agent\.env\.A\0: /,
    ],
    [
      'a NUL in a value',
      'agent:\n  command: ["agent"]\n  env:\n    A: "x\\0y"\n',
      /:4:5: agent\.env\.A: /,
    ],
    [
      'a number as a value',
      'agent:\n  command: ["agent"]\n  env:\n    A: 5\n',
      /:4:5: agent\.env\.A: /,
    ],
  ])('agent.env with %s is refused at load', (_what, text, where) => {
    const e = refusal(text);
    expect(e.message).toMatch(where);
    expect(e.message).toMatch(/non-empty name that has no '=', and no NUL/);
  });

  it('a NUL in the agent command is refused at load, by the rule a session spec is checked by', () => {
    const text = 'agent:\n  command: ["agent", "a\\0b"]\n';
    expect(refusal(text).message).toMatch(/:2:3: agent\.command: must be a list of strings .*NUL/);
    expect(() => checkSessionSpec({ name: 'a', epoch: 1, command: ['agent', 'a\0b'] })).toThrow(
      /NUL/,
    );
  });

  it('what loads can always be used as a session spec (env and command)', () => {
    const c = loadConfig(
      write(`${AGENT.replace('["agent"]', '["agent", "x y"]')}  env:\n    LANG: C.UTF-8\n`),
    );
    expect(() =>
      checkSessionSpec({ name: 'main-a', epoch: 1, command: c.agent.command, env: c.agent.env }),
    ).not.toThrow();
  });

  it('fuzzed configs load or give a ConfigError with file, line and column', () => {
    const base = defaultConfigText('town');
    const pieces = [
      '&a ',
      '*a',
      '*b',
      ': ',
      '- ',
      '[',
      ']',
      '{',
      '}',
      '\n',
      '  ',
      '? ',
      '<<: ',
      '!!str ',
      '"',
      "'",
      '#',
      '\0',
      ',',
      '&b [*a, *a] ',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length), fc.nat(6), fc.constantFrom(...pieces)), {
          minLength: 1,
          maxLength: 6,
        }),
        (edits) => {
          let text = base;
          for (const [at, cut, piece] of edits) {
            const i = at % (text.length + 1);
            text = text.slice(0, i) + piece + text.slice(i + cut);
          }
          const file = write(text);
          try {
            loadConfig(file);
          } catch (error) {
            if (!(error instanceof ConfigError))
              throw new Error(`not a ConfigError for:\n${text}`, { cause: error });
            expect(error.message.startsWith(`${file}:`)).toBe(true);
            expect(error.message.slice(file.length)).toMatch(/^:\d+:\d+: /);
          }
        },
      ),
      { numRuns: 200 },
    );
  }, 120_000);
});

describe('the tmux socket', () => {
  it('by default is a path inside the town’s state folder: two towns in folders of the same name get different tmux servers', () => {
    const a = join(folder(), 'town');
    const b = join(folder(), 'town');
    mkdirSync(a);
    mkdirSync(b);
    const ca = loadConfig(write(defaultConfigText(a), a));
    const cb = loadConfig(write(defaultConfigText(b), b));
    expect(ca.driver).toMatchObject({ kind: 'tmux' });
    expect(ca.driver).not.toHaveProperty('socket');
    expect(resolveTmuxSocket(ca)).toEqual({ socket: { path: join(a, '.belfry', 'tmux.sock') } });
    expect(resolveTmuxSocket(cb)).toEqual({ socket: { path: join(b, '.belfry', 'tmux.sock') } });
  });

  it('a state folder too deep for a Unix socket gets it in a private folder of its own, explained, and the recorded one again while it is there', () => {
    const dir = join(folder(), 'f'.repeat(100));
    mkdirSync(dir);
    const config = loadConfig(write(AGENT, dir));
    const runtime = mkdtempSync(join(tmpdir(), 'belfry-rt-'));
    const first = resolveTmuxSocket(config, undefined, { XDG_RUNTIME_DIR: runtime });
    const path = (first.socket as { path: string }).path;
    expect(path.startsWith(`${runtime}/belfry-`)).toBe(true);
    expect(path.endsWith('/tmux.sock')).toBe(true);
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(100);
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
    expect(first.note).toMatch(/too deep for a Unix socket \(\d+ bytes; at most 100\)/);
    // The server outlives the daemon: the next daemon finds it where it was recorded.
    expect(resolveTmuxSocket(config, first.socket, { XDG_RUNTIME_DIR: runtime }).socket).toEqual(
      first.socket,
    );
    // A recorded folder that is gone (a reboot) took the server with it: a new one is made.
    rmSync(dirname(path), { recursive: true });
    const next = resolveTmuxSocket(config, first.socket, { XDG_RUNTIME_DIR: runtime });
    expect(next.socket).not.toEqual(first.socket);
  });

  it('a name or a path in the config is kept (a relative path against the config’s folder)', () => {
    const dir = folder();
    const named = loadConfig(write(`driver:\n  socket: belfry-town\n${AGENT}`, dir));
    expect(named.driver).toMatchObject({ socket: { name: 'belfry-town' } });
    expect(resolveTmuxSocket(named).socket).toEqual({ name: 'belfry-town' });
    const relative = loadConfig(write(`driver:\n  socket: ./run/tmux.sock\n${AGENT}`, dir));
    expect(relative.driver).toMatchObject({ socket: { path: join(dir, 'run', 'tmux.sock') } });
    const absolute = loadConfig(write(`driver:\n  socket: /run/belfry/t.sock\n${AGENT}`, dir));
    expect(absolute.driver).toMatchObject({ socket: { path: '/run/belfry/t.sock' } });
  });

  it('a bad socket is refused, saying what is allowed, only when the tmux driver is used', () => {
    for (const bad of ['"a b"', 'default', '""'])
      expect(refusal(`driver:\n  socket: ${bad}\n${AGENT}`).message).toMatch(
        /:2:3: driver\.socket: must be (a name of 1 to 64|a non-empty string)/,
      );
    expect(refusal(`driver:\n  socket: /tmp/tmux-1000/default\n${AGENT}`).message).toMatch(
      /your own tmux server/,
    );
    const long = refusal(`driver:\n  socket: /${'s'.repeat(120)}\n${AGENT}`);
    expect(long.message).toMatch(/a socket path must fit a Unix socket: at most 100 bytes/);
    expect(loadConfig(write(`driver:\n  kind: memory\n  socket: "a b"\n${AGENT}`)).driver).toEqual({
      kind: 'memory',
    });
  });

  it('the socket name a town used by default before (only looked at to find its sessions) is short, stable and differs between folders of one name', () => {
    const long = `/srv/${'a'.repeat(80)}`;
    expect(legacyTmuxSocketName(long)).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(legacyTmuxSocketName('/srv/town')).toBe(legacyTmuxSocketName('/srv/town'));
    expect(legacyTmuxSocketName('/srv/town')).not.toBe(legacyTmuxSocketName('/home/town'));
    expect(legacyTmuxSocketName('/srv/my town.x')).toMatch(/^belfry-my-town-x-[0-9a-f]{8}$/);
  });
});

describe('the real command on a bad config', () => {
  it.each([
    ['an alias to a missing anchor', `${AGENT}rigs: [*nope]\n`],
    [
      'a billion laughs',
      `${AGENT}a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n`,
    ],
  ])(
    '%s: exit 2 and one line naming file and line, no stack trace',
    async (_what, text) => {
      const dir = folder();
      write(text, dir);
      const result = await belfry(dir, 'daemon', 'status');
      expect(result.code).toBe(2);
      expect(result.err).toMatch(
        new RegExp(`^belfry: ${dir}/belfry\\.yaml:\\d+:\\d+: not valid YAML`),
      );
      expect(result.err).not.toMatch(/ReferenceError|\n\s+at /);
      expect(result.err.trim().split('\n')).toHaveLength(1);
    },
    60_000,
  );
});
