import { DEFAULT_INHERITED_ENV } from '@belfry/driver-tmux';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, killAll, NODE, tmuxDriver } from './helpers';

/** A program that prints the named variables of its environment (or `-` when unset), then waits. */
function printEnv(...names: string[]): string[] {
  return [
    NODE,
    '-e',
    `for (const n of ${JSON.stringify(names)}) console.log(n + '=' + (process.env[n] ?? '-')); setTimeout(() => {}, 60000);`,
  ];
}

async function envOf(driver: ReturnType<typeof tmuxDriver>, name: string, names: string[]) {
  const lines = await eventually(`${name} to print its environment`, async () => {
    const out = await driver.capture(name);
    return names.every((n) => out.some((l) => l.startsWith(`${n}=`))) ? out : undefined;
  });
  return Object.fromEntries(
    names.map((n) => {
      const line = lines.find((l) => l.startsWith(`${n}=`)) as string;
      return [n, line.slice(n.length + 1)];
    }),
  );
}

describe('the environment of a session (issue 13, item 6)', () => {
  const secrets = {
    GITHUB_TOKEN: 'ghp_daemon_secret',
    AWS_SECRET_ACCESS_KEY: 'aws_daemon_secret',
    BELFRY_TEST_ALLOWED: 'allowed-value',
  };
  beforeAll(() => Object.assign(process.env, secrets));
  afterAll(() => {
    for (const k of Object.keys(secrets)) delete process.env[k];
  });
  afterEach(() => killAll());

  it("the daemon's secrets never reach an agent: only the allowed variables and the spec's own pass", async () => {
    const driver = tmuxDriver();
    const names = [
      'GITHUB_TOKEN',
      'AWS_SECRET_ACCESS_KEY',
      'BELFRY_TEST_ALLOWED',
      'HOME',
      'PATH',
      'AGENT_VAR',
    ];
    await driver.start({
      name: 'agent',
      epoch: 1,
      command: printEnv(...names),
      env: { AGENT_VAR: 'from-the-spec' },
    });
    const env = await envOf(driver, 'agent', names);
    expect(env.GITHUB_TOKEN).toBe('-');
    expect(env.AWS_SECRET_ACCESS_KEY).toBe('-');
    expect(env.BELFRY_TEST_ALLOWED).toBe('-');
    expect(env.AGENT_VAR).toBe('from-the-spec');
    expect(env.HOME).toBe(process.env.HOME);
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('inheritEnv lets through what the operator lists, by name or prefix', async () => {
    const driver = tmuxDriver({ inheritEnv: [...DEFAULT_INHERITED_ENV, 'BELFRY_TEST_*'] });
    await driver.start({
      name: 'agent',
      epoch: 1,
      command: printEnv('BELFRY_TEST_ALLOWED', 'GITHUB_TOKEN'),
    });
    const env = await envOf(driver, 'agent', ['BELFRY_TEST_ALLOWED', 'GITHUB_TOKEN']);
    expect(env).toEqual({ BELFRY_TEST_ALLOWED: 'allowed-value', GITHUB_TOKEN: '-' });
  });

  it('refuses an inheritEnv that is not a list of variable names', () => {
    for (const bad of ['PATH', ['PA TH'], ['*'], [''], [42], ['A=B']])
      expect(() => tmuxDriver({ inheritEnv: bad as never })).toThrow(/options\.inheritEnv/);
  });
});
