import type { Command } from 'commander';
import { type Context, EXIT, Exit, type Register } from './context';

/** `belfry done`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('done [bead]')
    .description(
      'an agent finished its bead (run inside its session: the agent and bead come from BELFRY_AGENT and BELFRY_BEAD)',
    )
    .option('--agent <agent>', 'the agent (<rig>/<name>; default: $BELFRY_AGENT)')
    .option('--status <status>', 'what the bead becomes', 'done')
    .action(
      async (given: string | undefined, opts: { agent?: string; status: string }, cmd: Command) => {
        const agent = opts.agent ?? c.env.BELFRY_AGENT;
        const bead = given ?? c.env.BELFRY_BEAD;
        if (!agent || !bead)
          throw new Exit(
            EXIT.USAGE,
            `which ${!agent ? 'agent' : 'bead'}? Run it inside the agent's session (it sets BELFRY_AGENT and BELFRY_BEAD), or pass ${!agent ? '--agent <rig>/<name>' : 'the bead'}`,
          );
        await c.live(cmd, 'done', 'POST', '/v1/done', { agent, bead, status: opts.status });
        c.print(
          cmd,
          { agent, bead, status: opts.status },
          () => `${bead} ${opts.status}; ${agent}'s session is stopped`,
        );
      },
    );
};
