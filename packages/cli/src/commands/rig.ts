import type { LifecycleAction, LifecycleRequest } from '@belfry/core';
import type { Command } from 'commander';
import type { Context, Register } from './context';

/** `belfry rig`. */
export const register: Register = (program: Command, c: Context) => {
  const rig = program
    .command('rig')
    .description('park, unpark, dock or undock a rig (carried out by the daemon)');
  for (const action of [
    'park',
    'unpark',
    'dock',
    'undock',
  ] as const satisfies readonly LifecycleAction[]) {
    const command = rig
      .command(`${action} <rig>`)
      .description(
        action === 'dock'
          ? 'dock a rig: its in-flight work may finish within the drain limit, then what is left is stopped (--now: stop at once); the request is stored and the daemon woken'
          : `${action} a rig: the request is stored and the daemon woken`,
      );
    if (action === 'dock')
      command.option('--now', 'stop the rig’s sessions at once instead of draining them');
    command.action(async (name: string, opts: { now?: boolean }, cmd: Command) => {
      const args = opts.now === true ? { immediate: true } : undefined;
      // Through the running daemon, else stored for it (the model's checks either way).
      const viaDaemon = await c.api<LifecycleRequest>(
        cmd,
        'POST',
        `/v1/rigs/${encodeURIComponent(name)}/${action}`,
        args ?? null,
      );
      const request =
        viaDaemon ??
        (await c.withModel(cmd, (m) =>
          m.lifecycle.request({
            action,
            target: name,
            requestedBy: 'cli',
            ...(args === undefined ? {} : { args }),
          }),
        ));
      const woke = viaDaemon !== undefined;
      c.print(
        cmd,
        { request, daemon: woke ? 'woken' : 'not running' },
        () =>
          `${action}${args ? ' --now (its sessions stop at once, no drain)' : action === 'dock' ? ' (its in-flight work may finish within the drain limit)' : ''} ${name}: request ${request.id} stored; ${woke ? 'the daemon is carrying it out' : 'it waits for the daemon to start'}`,
      );
    });
  }
};
