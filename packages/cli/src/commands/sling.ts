import { checkRigName } from '@belfry/core';
import type { Command } from 'commander';
import type { Context, Register } from './context';

/** `belfry sling`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('sling <bead> <rig>')
    .description("hang a bead on a polecat's hook in a rig")
    .action(async (bead: string, rigName: string, _opts: unknown, cmd: Command) => {
      // Through the running town (its Witness starts the session at once), else into the store.
      const viaDaemon = await c.api<{ agent: string; created: boolean }>(cmd, 'POST', '/v1/sling', {
        bead,
        rig: rigName,
      });
      const { agent, created } =
        viaDaemon ??
        (await c.withModel(cmd, async (m) => {
          const { polecat, created } = await m.polecats.sling(bead, checkRigName(rigName, 'rig'));
          return { agent: polecat.id, created };
        }));
      c.print(
        cmd,
        { agent, bead, created, daemon: viaDaemon ? 'running' : 'not running' },
        () =>
          `${bead} → ${agent}${created ? ' (a new polecat)' : ''}; ${viaDaemon ? 'its session is starting' : 'its session starts when the daemon runs'}`,
      );
    });
};
