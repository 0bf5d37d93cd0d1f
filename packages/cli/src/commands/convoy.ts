import type { Convoy } from '@belfry/core';
import type { Command } from 'commander';
import type { Context, Register } from './context';

/** `belfry convoy`. */
export const register: Register = (program: Command, c: Context) => {
  const convoys = program
    .command('convoy')
    .description('create convoys, add to them and follow them');
  const line = (v: Convoy) =>
    `${v.id} ${v.status}: ${v.title}; ${v.openCount} of ${v.beadIds.length} beads open`;
  convoys
    .command('create <title> <bead...>')
    .description('a convoy of beads, tracked until every one is done')
    .action(async (title: string, beadIds: string[], _opts: unknown, cmd: Command) => {
      const input = { title, beadIds };
      const convoy =
        (await c.api<Convoy>(cmd, 'POST', '/v1/convoys', input)) ??
        (await c.withModel(cmd, (m) => m.convoys.create(input)));
      c.print(cmd, convoy, () => convoy.id);
    });
  convoys
    .command('status <convoy>')
    .description("a convoy's state")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const convoy =
        (await c.api<Convoy>(cmd, 'GET', `/v1/convoys/${encodeURIComponent(id)}`)) ??
        (await c.withModel(cmd, (m) => m.convoys.require(id)));
      c.print(cmd, convoy, () => line(convoy));
    });
  convoys
    .command('add <convoy> <bead...>')
    .description('track more beads in a convoy (a closed one reopens if any is not done)')
    .action(async (id: string, beadIds: string[], _opts: unknown, cmd: Command) => {
      const convoy =
        (await c.api<Convoy>(cmd, 'POST', `/v1/convoys/${encodeURIComponent(id)}/add`, {
          beadIds,
        })) ?? (await c.withModel(cmd, (m) => m.convoys.add(id, beadIds)));
      c.print(cmd, convoy, () => line(convoy));
    });
  convoys
    .command('list')
    .description('the open convoys, oldest first')
    .action(async (_opts: unknown, cmd: Command) => {
      const list =
        (await c.api<Convoy[]>(cmd, 'GET', '/v1/convoys')) ??
        (await c.withModel(cmd, (m) => m.convoys.open()));
      c.print(cmd, list, () => (list.length === 0 ? 'no open convoys' : list.map(line).join('\n')));
    });
};
