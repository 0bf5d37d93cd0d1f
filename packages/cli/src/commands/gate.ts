import type { Gate } from '@belfry/core';
import { humanOutcome } from '@belfry/gate-human';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { GATE_TIMEOUT_RULE, numeric } from '../numericOption';
import { type Context, osUser, type Register } from './context';

/** `belfry gate`. */
export const register: Register = (program: Command, c: Context) => {
  const gate = program.command('gate').description('create, list, approve and reject gates');
  gate
    .command('create <type>')
    .description(
      'create a gate: timer ({"durationMs": 60000}), human ({"prompt": "…"}), gh:run, or a type the daemon\'s config adds; its type checks the spec',
    )
    .requiredOption('--spec <json>', "the gate type's spec, as a JSON object", parseSpec)
    .addOption(
      new Option('--timeout <time>', 'overdue (escalated) after this long: 90m, 2h, 3d').argParser(
        numeric(GATE_TIMEOUT_RULE),
      ),
    )
    .option(
      '--waiter <name>',
      'a molecule or name that waits on it (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(
      async (
        type: string,
        opts: { spec: unknown; timeout?: number; waiter?: string[] },
        cmd: Command,
      ) => {
        const input = {
          type,
          spec: opts.spec,
          ...(opts.timeout === undefined ? {} : { timeoutMs: opts.timeout }),
          ...(opts.waiter === undefined ? {} : { waiters: opts.waiter }),
        };
        // The running town creates it (and evaluates it at its next patrol); without a daemon it
        // is stored, checked by the same gate types.
        const created =
          (await c.api<Gate>(cmd, 'POST', '/v1/gates', input)) ??
          (await c.withModel(cmd, (m) => m.gates.create(input)));
        c.print(cmd, created, () => `gate ${created.id} (${created.type}) open`);
      },
    );
  gate
    .command('list')
    .description('the gates')
    .option('--open', 'only open gates')
    .option('--type <type>', 'only gates of this type')
    .action(async (opts: { open?: boolean; type?: string }, cmd: Command) => {
      const gates = await c.withModel(cmd, async (m) => {
        const open = await m.gates.open(opts.type ? { type: opts.type } : {});
        if (opts.open) return open;
        const closed = await m.store.transaction((tx) =>
          tx.find<Gate>('gates', 'byStatus', { prefix: ['closed'] }),
        );
        return [...open, ...closed.filter((g) => !opts.type || g.type === opts.type)];
      });
      c.print(cmd, gates, () =>
        gates.length === 0
          ? 'no gates'
          : gates
              .map(
                (g) =>
                  `${g.id}  ${g.type.padEnd(7)} ${g.status.padEnd(6)} ${JSON.stringify(g.spec)}${g.escalations.length ? `  ! ${g.escalations.at(-1)?.reason}` : ''}`,
              )
              .join('\n'),
      );
    });
  for (const decision of ['approve', 'reject'] as const) {
    gate
      .command(`${decision} <gate>`)
      .description(`${decision} a human gate`)
      .option('--by <name>', 'who decides (default: you, the OS user)', osUser())
      .option('--comment <text>', 'why')
      .action(async (id: string, opts: { by: string; comment?: string }, cmd: Command) => {
        const input = {
          by: opts.by,
          ...(opts.comment === undefined ? {} : { comment: opts.comment }),
        };
        // The running town's human gate decides it (gate.closed, its molecules move on); without
        // a daemon the decision is stored, checked by the same rule (humanOutcome).
        const viaDaemon = await c.api<Gate>(
          cmd,
          'POST',
          `/v1/gates/${encodeURIComponent(id)}/${decision}`,
          input,
        );
        const closed =
          viaDaemon ??
          (await c.withModel(cmd, async (m) => {
            const outcome = humanOutcome(
              await m.gates.require(id),
              decision === 'approve' ? 'approved' : 'rejected',
              { by: opts.by, ...(opts.comment === undefined ? {} : { comment: opts.comment }) },
              Date.now(),
            );
            return (await m.gates.close(id, outcome.result, outcome)).gate;
          }));
        c.print(
          cmd,
          closed,
          () => `gate ${id} ${decision === 'approve' ? 'approved' : 'rejected'} by ${opts.by}`,
        );
      });
  }
};

/** `--spec`: a JSON object, or a usage error saying what was wrong. */
function parseSpec(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(
      `not JSON (${(error as Error).message}); give an object, e.g. '{"durationMs": 60000}'.`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError(
      `must be a JSON object; got ${text.length > 40 ? `${text.slice(0, 40)}…` : text}.`,
    );
  return value;
}
