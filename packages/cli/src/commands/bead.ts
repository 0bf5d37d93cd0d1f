import type { Bead } from '@belfry/core';
import type { Command } from 'commander';
import { type Context, EXIT, Exit, type Register } from './context';

/** `belfry bead`. */
export const register: Register = (program: Command, c: Context) => {
  const beads = program.command('bead').description('beads (units of work)');
  beads
    .command('create <title>')
    .description('create a bead')
    .option('--rig <rig>', 'the rig it belongs to')
    .action(async (title: string, opts: { rig?: string }, cmd: Command) => {
      const input = { title, ...(opts.rig ? { rig: opts.rig } : {}) };
      const bead =
        (await c.api<Bead>(cmd, 'POST', '/v1/beads', input)) ??
        (await c.withModel(cmd, (m) => m.beads.create(input)));
      c.print(cmd, bead, () => bead.id);
    });
  beads
    .command('list')
    .description('beads with a status and/or in a rig')
    .option('--status <status>', 'only beads with this status (open, hooked, done, blocked, …)')
    .option('--rig <rig>', 'only beads of this rig')
    .action(async (opts: { status?: string; rig?: string }, cmd: Command) => {
      const filter = {
        ...(opts.status ? { status: opts.status } : {}),
        ...(opts.rig ? { rig: opts.rig } : {}),
      };
      if (Object.keys(filter).length === 0)
        throw new Exit(EXIT.USAGE, 'give --status, --rig, or both');
      const query = new URLSearchParams(filter).toString();
      const list =
        (await c.api<Bead[]>(cmd, 'GET', `/v1/beads?${query}`)) ??
        (await c.withModel(cmd, (m) => m.beads.list(filter)));
      c.print(cmd, list, () =>
        list.length === 0
          ? 'no beads'
          : list
              .map((b) => `${b.id}  ${b.status.padEnd(7)} ${b.rig ?? '-'}  ${b.title}`)
              .join('\n'),
      );
    });
  beads
    .command('show <bead>')
    .description('one bead')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const bead =
        (await c.api<Bead>(cmd, 'GET', `/v1/beads/${encodeURIComponent(id)}`)) ??
        (await c.withModel(cmd, (m) => m.beads.require(id)));
      c.print(cmd, bead, () =>
        [`${bead.id} ${bead.status}: ${bead.title}`, `rig: ${bead.rig ?? '-'}`].join('\n'),
      );
    });
};
