import { DriverError, type SessionDriver, type SessionStatus } from '@belfry/core/driver';
import { afterEach, describe, expect, it } from 'vitest';

/** Options of {@link runDriverConformance}: the programs the suite runs, and how time passes. */
export interface DriverConformanceOptions {
  /** A name for the describe block. @defaultValue 'SessionDriver conformance' */
  name?: string;
  /** argv of a program that keeps running and prints each line it is sent (each nudge). */
  echo: readonly string[];
  /** argv of a program that exits by itself, soon, with `code`. */
  exitWith: (code: number) => readonly string[];
  /** argv of a program that ignores the polite stop request, so only the kill ends it. */
  stubborn: readonly string[];
  /**
   * Lets `ms` of the driver's time pass: advance a simulated clock, or sleep for real. The suite
   * waits for effects (a nudge showing in the output, an exit) in small steps up to `timeoutMs`.
   */
  wait: (ms: number) => Promise<void>;
  /** How long an effect may take to show. @defaultValue 5_000 (ms) */
  timeoutMs?: number;
  /** The grace period given to `stop` of the stubborn program. @defaultValue 300 (ms) */
  graceMs?: number;
  /**
   * The granularity of the driver's `lastActivityAt` (tmux reports whole seconds); the activity
   * case waits a little longer than this. @defaultValue 1_000 (ms)
   */
  activityResolutionMs?: number;
  /** Session names are prefixed with this, so parallel runs do not collide. @defaultValue 'conf' */
  prefix?: string;
  /** Called after each test with the driver it used (after its sessions were stopped). */
  cleanup?: (driver: SessionDriver) => void | Promise<void>;
}

function code(error: unknown): string | undefined {
  return error instanceof DriverError ? error.code : undefined;
}

async function failure(operation: () => Promise<unknown>): Promise<unknown> {
  try {
    await operation();
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail');
}

/**
 * Registers a vitest suite that every {@link SessionDriver} runs against itself: idempotent
 * start by name and epoch; status running, exited (with the code) and missing; activity times; nudge delivery;
 * capture; follow (when the driver has it); stop, graceful then forced, idempotent; list for discovery; bad names refused.
 *
 * @param makeDriver - makes a driver; called once per test.
 * @param options - the programs to run and how time passes; see {@link DriverConformanceOptions}.
 * @example
 * ```ts
 * const clock = new SimulatedClock();
 * runDriverConformance(() => createMemoryDriver({ clock }), {
 *   echo: ['agent'],
 *   exitWith: (code) => ['exit', String(code)],
 *   stubborn: ['stubborn'],
 *   wait: (ms) => clock.advance(ms),
 * });
 * ```
 */
export function runDriverConformance(
  makeDriver: () => SessionDriver | Promise<SessionDriver>,
  options: DriverConformanceOptions,
): void {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const graceMs = options.graceMs ?? 300;
  const activityResolutionMs = options.activityResolutionMs ?? 1_000;
  const prefix = options.prefix ?? 'conf';
  let counter = 0;
  const used: Array<{ driver: SessionDriver; names: Set<string> }> = [];

  const setup = async () => {
    const driver = await makeDriver();
    const names = new Set<string>();
    used.push({ driver, names });
    const name = () => {
      const n = `${prefix}-${process.pid}-${++counter}`;
      names.add(n);
      return n;
    };
    return { driver, name };
  };

  /** Waits, in steps of the driver's time, until `check` holds; fails after timeoutMs. */
  const until = async (what: string, check: () => Promise<boolean>) => {
    let waited = 0;
    const step = Math.max(1, Math.min(50, Math.floor(timeoutMs / 100)));
    while (!(await check())) {
      if (waited >= timeoutMs)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await options.wait(step);
      waited += step;
    }
  };
  const notRunning = (s: SessionStatus) => s.state !== 'running';

  describe(options.name ?? 'SessionDriver conformance', () => {
    afterEach(async () => {
      for (const { driver, names } of used.splice(0)) {
        for (const n of names) {
          const stopping = driver.stop(n, { graceMs: 0 }).catch(() => undefined);
          await options.wait(0);
          await stopping;
        }
        await options.cleanup?.(driver);
        await driver.close?.();
      }
    });

    it('starts a session that reports running with its epoch and labels, and lists it', async () => {
      const { driver, name } = await setup();
      const n = name();
      const started = await driver.start({
        name: n,
        epoch: 7,
        command: options.echo,
        labels: { rig: 'api', agent: 'toast' },
      });
      expect(started).toMatchObject({ name: n, state: 'running', epoch: 7 });
      const status = await driver.status(n);
      expect(status).toMatchObject({
        name: n,
        state: 'running',
        epoch: 7,
        labels: { rig: 'api', agent: 'toast' },
      });
      expect(typeof status.startedAt).toBe('number');
      expect(typeof status.lastActivityAt).toBe('number');
      const listed = (await driver.list()).find((s) => s.name === n);
      expect(listed).toMatchObject({ state: 'running', epoch: 7 });
    });

    it('makes one session when the same name and epoch are started twice, even at once', async () => {
      const { driver, name } = await setup();
      const n = name();
      const spec = { name: n, epoch: 1, command: options.echo };
      const [a, b] = await Promise.all([driver.start(spec), driver.start(spec)]);
      const c = await driver.start(spec);
      expect([a.state, b.state, c.state]).toEqual(['running', 'running', 'running']);
      expect(new Set([a.startedAt, b.startedAt, c.startedAt]).size).toBe(1);
      if (a.pid !== undefined) expect(new Set([a.pid, b.pid, c.pid]).size).toBe(1);
      expect((await driver.list()).filter((s) => s.name === n)).toHaveLength(1);
    });

    it('never replaces a running session with another epoch', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.echo });
      expect(
        code(await failure(() => driver.start({ name: n, epoch: 2, command: options.echo }))),
      ).toBe('EXISTS');
      expect(await driver.status(n)).toMatchObject({ state: 'running', epoch: 1 });
    });

    it('reports the exit code of a session that ended, and replaces it with a new epoch', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.exitWith(3) });
      await until('the session to exit', async () => notRunning(await driver.status(n)));
      expect(await driver.status(n)).toMatchObject({
        state: 'exited',
        epoch: 1,
        exitCode: 3,
        signal: null,
      });
      const again = await driver.start({ name: n, epoch: 2, command: options.echo });
      expect(again).toMatchObject({ state: 'running', epoch: 2 });
    });

    it('reports missing for a session it never started', async () => {
      const { driver, name } = await setup();
      const n = name();
      expect(await driver.status(n)).toMatchObject({ name: n, state: 'missing' });
      expect((await driver.list()).some((s) => s.name === n)).toBe(false);
    });

    it('delivers a nudge the session reads, and captures the last lines of its output', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.echo });
      for (const text of ['first nudge', 'second nudge', 'third nudge'])
        await driver.nudge(n, text);
      await until('the nudges to show in the output', async () =>
        (await driver.capture(n)).join('\n').includes('third nudge'),
      );
      const all = (await driver.capture(n)).join('\n');
      expect(all.indexOf('first nudge')).toBeLessThan(all.indexOf('second nudge'));
      const last = await driver.capture(n, { lines: 1 });
      expect(last).toHaveLength(1);
      expect(last[0]).toContain('third nudge');
    });

    it('follows the output by place when it can: each line once, identical nudges included', async (ctx) => {
      const { driver, name } = await setup();
      if (typeof driver.follow !== 'function') return ctx.skip();
      const follow = driver.follow.bind(driver);
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.echo });
      await driver.nudge(n, 'start');
      await until('the first nudge', async () =>
        (await driver.capture(n)).join('\n').includes('start'),
      );
      let at = await follow(n);
      expect(at.continuous).toBe(false);
      expect(typeof at.end).toBe('string');
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) await driver.nudge(n, 'the same again');
      // As many of them as the whole output shows (a terminal echoes a typed line, too).
      const shown = async () =>
        (await driver.capture(n)).filter((l) => l.includes('the same again')).length;
      const followed = () => seen.filter((l) => l.includes('the same again')).length;
      await until('three identical nudges followed', async () => {
        const next = await follow(n, { after: at.end });
        expect(next.continuous).toBe(true);
        seen.push(...next.lines);
        at = next;
        return followed() >= 3 && followed() === (await shown());
      });
      await options.wait(activityResolutionMs);
      const quiet = await follow(n, { after: at.end });
      seen.push(...quiet.lines);
      expect(followed()).toBe(await shown());
      expect(code(await failure(() => follow(n, { after: '' })))).toBe('INVALID_SPEC');
      expect(code(await failure(() => follow(name())))).toBe('NOT_RUNNING');
    });

    it('moves lastActivityAt forward when the session writes output', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.echo });
      const before = (await driver.status(n)).lastActivityAt as number;
      expect(typeof before).toBe('number');
      // Past the driver's activity resolution (tmux reports whole seconds).
      await options.wait(activityResolutionMs + 100);
      await driver.nudge(n, 'show some activity');
      await until('the activity time to move on', async () => {
        const now = (await driver.status(n)).lastActivityAt;
        return typeof now === 'number' && now > before;
      });
    });

    it('refuses to nudge a session that is not running', async () => {
      const { driver, name } = await setup();
      const n = name();
      expect(code(await failure(() => driver.nudge(n, 'hello')))).toBe('NOT_RUNNING');
      await driver.start({ name: n, epoch: 1, command: options.exitWith(0) });
      await until('the session to exit', async () => notRunning(await driver.status(n)));
      expect(code(await failure(() => driver.nudge(n, 'hello')))).toBe('NOT_RUNNING');
    });

    it('stops a session that honours the request, and a repeated stop is harmless', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.echo });
      const stopping = driver.stop(n, { graceMs });
      await options.wait(0);
      await stopping;
      expect(notRunning(await driver.status(n))).toBe(true);
      await driver.stop(n);
      await driver.stop(name()); // never started
    });

    it('kills a session that ignores the request once the grace period is over', async () => {
      const { driver, name } = await setup();
      const n = name();
      await driver.start({ name: n, epoch: 1, command: options.stubborn });
      let stopped = false;
      const stopping = driver.stop(n, { graceMs }).then(() => {
        stopped = true;
      });
      await options.wait(Math.floor(graceMs / 2));
      expect(stopped).toBe(false);
      expect((await driver.status(n)).state).toBe('running');
      await options.wait(graceMs);
      await until('the stop to finish', async () => stopped);
      await stopping;
      const status = await driver.status(n);
      expect(notRunning(status)).toBe(true);
      if (status.state === 'exited') expect(status.signal).toBe('SIGKILL');
    });

    it('refuses bad names without rewriting them, and malformed specs', async () => {
      const { driver } = await setup();
      for (const bad of ['', 'api.toast', 'a:b', 'x y', 'tab\t', 'é', 'x'.repeat(65)]) {
        expect(
          code(await failure(() => driver.start({ name: bad, epoch: 1, command: options.echo }))),
        ).toBe('INVALID_NAME');
        expect(code(await failure(() => driver.status(bad)))).toBe('INVALID_NAME');
      }
      const n = `${prefix}-spec-${process.pid}`;
      expect(code(await failure(() => driver.start({ name: n, epoch: 1, command: [] })))).toBe(
        'INVALID_SPEC',
      );
      expect(
        code(await failure(() => driver.start({ name: n, epoch: -1, command: options.echo }))),
      ).toBe('INVALID_SPEC');
      expect((await driver.status(n)).state).toBe('missing');
    });

    it('lists exited sessions too, for discovery after a restart', async () => {
      const { driver, name } = await setup();
      const live = name();
      const dead = name();
      await driver.start({ name: live, epoch: 4, command: options.echo });
      await driver.start({ name: dead, epoch: 9, command: options.exitWith(1) });
      await until('the session to exit', async () => notRunning(await driver.status(dead)));
      const listed = new Map((await driver.list()).map((s) => [s.name, s]));
      expect(listed.get(live)).toMatchObject({ state: 'running', epoch: 4 });
      expect(listed.get(dead)).toMatchObject({ state: 'exited', epoch: 9, exitCode: 1 });
    });
  });
}
