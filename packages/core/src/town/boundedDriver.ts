import type { Clock } from '../Clock';
import type {
  FollowOptions,
  SessionDriver,
  SessionSpec,
  StopOptions,
} from '../driver/SessionDriver';
import { DriverError } from '../errors';
import { withDeadline } from './boundedWait';

/**
 * Wraps the town's session driver so that no call the town makes can wait forever: each call
 * that has not settled after `callTimeoutMs` rejects with a `DriverError` coded `TIMEOUT` naming
 * the call and the session (a `stop` gets its grace period on top of the limit). The driver's
 * own call is left to settle on its own: the SessionDriver contract has no way to cancel it.
 *
 * Every driver call of the town (patrol, Witness surveys, polecats, `town.status()`) goes
 * through this one wrapper, so a custom driver whose `list()` or `stop()` never settles stalls
 * nothing for longer than the limit.
 *
 * @param driver - the user's driver.
 * @param clock - the town's clock (the limit is on it).
 * @param callTimeoutMs - the limit of one call, in ms.
 * @param stopGraceMs - the grace period a `stop` without one gets from the town, in ms.
 * @returns a driver with the same behaviour, bounded in time.
 */
export function boundDriver(
  driver: SessionDriver,
  clock: Clock,
  callTimeoutMs: number,
  stopGraceMs: number,
): SessionDriver {
  const bounded = <T>(call: string, work: () => Promise<T>, ms = callTimeoutMs): Promise<T> =>
    withDeadline(
      clock,
      Promise.resolve().then(work),
      ms,
      new AbortController(),
      () =>
        new DriverError({
          code: 'TIMEOUT',
          message: `the ${driver.kind} driver's ${call} did not settle within ${ms} ms`,
        }),
    );
  const named = (method: string, name: string) => `${method}(${JSON.stringify(name)})`;
  const wrapped: SessionDriver = {
    kind: driver.kind,
    start: (spec: SessionSpec) => bounded(named('start', spec?.name), () => driver.start(spec)),
    status: (name: string) => bounded(named('status', name), () => driver.status(name)),
    list: () => bounded('list()', () => driver.list()),
    nudge: (name: string, text: string) =>
      bounded(named('nudge', name), () => driver.nudge(name, text)),
    capture: (name: string, options?: { lines?: number }) =>
      bounded(named('capture', name), () => driver.capture(name, options)),
    stop: (name: string, options?: StopOptions) =>
      bounded(
        named('stop', name),
        () => driver.stop(name, options),
        callTimeoutMs + (options?.graceMs ?? stopGraceMs),
      ),
  };
  if (typeof driver.follow === 'function') {
    const follow = driver.follow.bind(driver);
    wrapped.follow = (name: string, options?: FollowOptions) =>
      bounded(named('follow', name), () => follow(name, options));
  }
  if (typeof driver.close === 'function') {
    const close = driver.close.bind(driver);
    wrapped.close = () => bounded('close()', close);
  }
  return wrapped;
}
