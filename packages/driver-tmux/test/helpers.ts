import { createTmuxDriver, type TmuxDriver, type TmuxDriverOptions } from '@belfry/driver-tmux';

let serial = 0;
const made: TmuxDriver[] = [];

/** A driver on a socket of its own; `killAll` kills every server the test made. */
export function tmuxDriver(options: TmuxDriverOptions = {}): TmuxDriver {
  const driver = createTmuxDriver({
    socket: { name: `belfry-test-${process.pid}-${++serial}` },
    stopGraceMs: 1_000,
    ...options,
  });
  made.push(driver);
  return driver;
}

export async function killAll(): Promise<void> {
  for (const d of made.splice(0)) await d.killServer();
}

/** Real time passing: only where the subject is a real process (tmux, a program in a pane). */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 25 ms until it holds; fails after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  ms = 5_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

export const NODE = process.execPath;
