import type { Command } from 'commander';
import type { Context, Register } from './context';

/** `belfry nudge`. */
export const register: Register = (program: Command, c: Context) => {
  program
    .command('nudge <agent> <text>')
    .description("send text to an agent's session (delivery verified)")
    .action(async (agent: string, text: string, _opts: unknown, cmd: Command) => {
      await c.live(cmd, 'a nudge', 'POST', `${c.agentPath(agent)}/nudge`, { text });
      c.print(cmd, { agent, delivered: true }, () => `delivered to ${agent}`);
    });
};
