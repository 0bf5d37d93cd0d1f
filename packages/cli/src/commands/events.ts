import type { Command } from 'commander';
import { describeEvent, followEvents } from '../api/events';
import { daemonPaths } from '../runtime';
import { type Context, EXIT, Exit, type Register } from './context';

/** `belfry events`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('events')
    .description("the town's recent events (-f: and those to come)")
    .option('-f, --follow', 'keep printing events as they happen')
    .action(async (opts: { follow?: boolean }, cmd: Command) => {
      const socket = daemonPaths(c.cfg(cmd)).socket;
      const ended = await followEvents(socket, opts.follow === true, (id, event, data) =>
        c.out(
          c.json(cmd)
            ? `${JSON.stringify({ id, event, data })}\n`
            : `${id ?? '-'} ${event === 'town' ? describeEvent(data as never) : `${event}: ${JSON.stringify(data)}`}\n`,
        ),
      );
      if (ended === 'no-daemon')
        throw new Exit(
          EXIT.NOT_RUNNING,
          'no daemon runs; events need it (start it with `belfry daemon start`)',
        );
      // Following ends only when the daemon goes away (stopped, killed): said, as status --watch.
      if (opts.follow === true)
        throw new Exit(EXIT.NOT_RUNNING, 'the daemon stopped; no more events to follow');
    });
};
