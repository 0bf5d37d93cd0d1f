import type { TownStatus } from '@belfry/core';
import type { Command } from 'commander';
import { followEvents } from '../api/events';
import { type DaemonState, daemonPaths, readJson } from '../runtime';
import { type Context, EXIT, Exit, type Register } from './context';
import { type LiveStatus, liveView, renderTree } from './statusView';

/** `status --watch` redraws at most this often, however many events come. */
const REDRAW_MIN_MS = 250;
/** …and at least this often (ages and countdowns move without events). */
const REDRAW_MAX_MS = 5_000;

/** `belfry status`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('status')
    .description(
      'the tree: rigs, witnesses, polecats with their sessions, open incidents and the lifecycle queue (live from the daemon)',
    )
    .option('-w, --watch', 'redraw as the town changes, until Ctrl-C (JSON: one document a line)')
    .action(async (opts: { watch?: boolean }, cmd: Command) => {
      const paths = daemonPaths(c.cfg(cmd));
      if (opts.watch) return watch(c, cmd, paths.socket);
      // Live from the running town; the daemon's last snapshot only when it does not answer.
      const now = await c.api<LiveStatus>(cmd, 'GET', '/v1/status').catch(() => undefined);
      if (now) {
        const data = liveView(now);
        c.print(cmd, data, () => renderTree(data, true, c.paint));
        return;
      }
      const { DaemonLock } = await import('../daemonLock');
      const running = DaemonLock.held(paths.lock);
      const status = readJson<TownStatus>(paths.status);
      if (!status)
        throw new Exit(
          running ? EXIT.FAILED : EXIT.NOT_RUNNING,
          running
            ? 'the daemon has not written its status yet'
            : 'no daemon runs, and none has run here',
        );
      // The tree is the daemon's last snapshot: say how old it is, and never pass a stopped or
      // silent daemon's tree off as the town now.
      const state = readJson<DaemonState>(paths.state);
      const asOf = status.daemon.lastHeartbeat ?? state?.lastHeartbeat ?? null;
      const stale =
        running && state !== undefined && Date.now() - state.lastHeartbeat > 3 * state.heartbeatMs;
      // The tree as it was: the daemon's own line says whether it runs now, never the snapshot.
      const data = {
        daemonRunning: running,
        live: false,
        stale,
        asOf,
        ...status,
        daemon: { ...status.daemon, running },
      };
      c.print(cmd, data, () => {
        const when = asOf === null ? 'an unknown time' : new Date(asOf).toISOString();
        const label = !running
          ? `${c.paint('31', 'daemon stopped')}; the tree as of ${when}, when it last beat:`
          : stale
            ? `${c.paint('33', 'daemon stale')} (no heartbeat for ${Math.round((Date.now() - (state?.lastHeartbeat ?? 0)) / 1000)} s); the tree as of ${when}:`
            : undefined;
        return [...(label ? [label] : []), renderTree(data, running, c.paint)].join('\n');
      });
      if (!running) throw new Exit(EXIT.NOT_RUNNING, '');
    });
};

/**
 * `status --watch`: the live status drawn again after each burst of events (and every few
 * seconds), on a terminal in place; for a pipe or `--json`, one after the other. Ends when the
 * daemon goes away (exit 4), or with Ctrl-C.
 */
async function watch(c: Context, cmd: Command, socket: string): Promise<void> {
  const inPlace = !c.json(cmd) && process.stdout.isTTY === true;
  let changed = true;
  let gone = false;
  // Only what happens from now on marks a change: the kept events are not read again.
  const events = followEvents(
    socket,
    true,
    () => {
      changed = true;
    },
    { replay: false },
  ).then(() => {
    gone = true;
  });
  let last = 0;
  for (;;) {
    const since = Date.now() - last;
    if (gone) break;
    if ((changed && since >= REDRAW_MIN_MS) || since >= REDRAW_MAX_MS) {
      changed = false;
      last = Date.now();
      const now = await c.api<LiveStatus>(cmd, 'GET', '/v1/status').catch(() => undefined);
      if (!now) break;
      const data = liveView(now);
      if (c.json(cmd)) c.out(`${JSON.stringify(data)}\n`);
      else
        c.out(
          `${inPlace ? '\u001b[H\u001b[2J' : '\n'}${c.paint('2', new Date(data.asOf ?? Date.now()).toISOString())}\n${renderTree(data, true, c.paint)}\n`,
        );
    }
    await Promise.race([events, new Promise((r) => setTimeout(r, 50))]);
  }
  throw new Exit(EXIT.NOT_RUNNING, 'the daemon stopped; nothing more to watch');
}
