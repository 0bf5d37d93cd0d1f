import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE, defaultConfigText, loadConfig } from '../config';
import { DaemonLock } from '../daemonLock';
import { type DaemonState, daemonPaths, ensureStateDir, readJson } from '../runtime';
import { type Context, EXIT, Exit, type Register } from './context';

/** `belfry init`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('init')
    .description(
      `write a commented ${CONFIG_FILE} for this folder, and set the town up (its store and id)`,
    )
    .option('--force', 'overwrite an existing config')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      const file = join(c.cwd, CONFIG_FILE);
      if (existsSync(file) && !opts.force)
        throw new Exit(EXIT.FAILED, `${file} exists; pass --force to overwrite it`);
      writeFileSync(file, defaultConfigText(c.cwd), { mode: 0o644 });
      const config = loadConfig(file);
      ensureStateDir(daemonPaths(config));
      // The store and the town's id (kept on --force: the same town, a new config).
      const { setUpTown } = await import('../townStore');
      const { townId } = await setUpTown(config);
      // A daemon already running read the file before: say so, and how to have it read this one.
      const paths = daemonPaths(config);
      const pid = DaemonLock.held(paths.lock)
        ? (readJson<DaemonState>(paths.state)?.pid ?? '?')
        : undefined;
      c.print(
        cmd,
        { config: file, townId, daemonRunning: pid !== undefined },
        () =>
          `wrote ${file} (town ${townId}); ${pid === undefined ? 'start the daemon with `belfry daemon start`' : `a daemon runs (pid ${pid}) on the config it read when it started: restart it to use this one (\`belfry daemon stop && belfry daemon start\`)`}`,
      );
    });
};
