import type { Warrant, WarrantRelease } from '@belfry/core';
import type { Command } from 'commander';
import { type Context, osUser, type Register } from './context';

/** `belfry warrant`. */
export const register: Register = (program: Command, c: Context) => {
  const warrant = program.command('warrant').description('file and list warrants');
  warrant
    .command('file <target>')
    .description('file a warrant against an agent')
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'who files it (default: you, the OS user)', osUser())
    .option(
      '--release <open|blocked>',
      "what becomes of the agent's bead: open (back to the pool) or blocked",
      'open',
    )
    .action(
      async (
        target: string,
        opts: { reason: string; by: string; release: string },
        cmd: Command,
      ) => {
        const input = {
          target,
          reason: opts.reason,
          filedBy: opts.by,
          release: opts.release as WarrantRelease,
        };
        const { warrant: w, created } =
          (await c.api<{ warrant: Warrant; created: boolean }>(
            cmd,
            'POST',
            '/v1/warrants',
            input,
          )) ?? (await c.withModel(cmd, (m) => m.warrants.file(input)));
        c.print(
          cmd,
          w,
          () =>
            `${created ? 'filed' : 'already pending'}: warrant ${w.id} against ${target} (release ${w.release}); executed at the next patrol`,
        );
      },
    );
  warrant
    .command('list')
    .description('pending warrants')
    .action(async (_opts: unknown, cmd: Command) => {
      const list = await c.withModel(cmd, (m) => m.warrants.pending());
      c.print(cmd, list, () =>
        list.length === 0
          ? 'no pending warrants'
          : list.map((w) => `${w.id} ${w.target}: ${w.reason}`).join('\n'),
      );
    });
};
