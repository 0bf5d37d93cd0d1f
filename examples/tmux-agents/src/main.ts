/**
 * A town whose polecats are shell loops in real tmux sessions (on a private socket). One of them
 * is killed with SIGKILL; its Witness sees the pane die and starts it again, with its bead still
 * on the hook. Then both finish and the town stops; the tmux server is removed at the end.
 *
 * Watch it live from another terminal: `tmux -L <socket> attach -t api-<name>` (printed below).
 */
import { execFileSync } from 'node:child_process';
import { createTown, type TownEvent } from '@belfry/core';
import { createTmuxDriver } from '@belfry/driver-tmux';

try {
  execFileSync('tmux', ['-V']);
} catch {
  console.error('this example needs tmux (apt-get install tmux)');
  process.exit(1);
}

const socket = `belfry-example-${process.pid}`;
const driver = createTmuxDriver({ socket: { name: socket }, stopGraceMs: 1_000 });
// A polecat: a loop that shows it is working every second, and answers what it is told.
const agent = [
  'sh',
  '-c',
  '(while :; do echo "$BELFRY_AGENT: working"; sleep 1; done) & while read -r line; do echo "$BELFRY_AGENT got: $line"; done',
];
const town = createTown({
  driver,
  rigs: ['api'],
  agent: {
    launch: ({ polecat }) => ({ command: agent, env: { BELFRY_AGENT: polecat.id } }),
    prime: ({ bead }) => `your bead: ${bead.title}`,
  },
  timings: {
    heartbeatMs: 500,
    patrolIntervalMs: 1_000,
    surveyMs: 300,
    spawnGraceMs: 3_000,
    staleAfterMs: 10_000,
    stopGraceMs: 500,
  },
});

const t0 = Date.now();
const say = (text: string) => console.log(`${String(Date.now() - t0).padStart(6)} ms  ${text}`);
const next = (type: TownEvent['type'], where: (e: TownEvent) => boolean = () => true) =>
  new Promise<TownEvent>((resolve, reject) => {
    const giveUp = setTimeout(() => reject(new Error(`no ${type} within 20 s`)), 20_000);
    const on = (e: TownEvent) => {
      if (e.type !== type || !where(e)) return;
      clearTimeout(giveUp);
      town.events.off('*', on);
      resolve(e);
    };
    town.events.on('*', on);
  });

town.events.on('*', (e: TownEvent) => {
  if (e.type === 'polecat.spawned')
    say(
      `${e.agent} spawned in tmux (epoch ${e.epoch}${e.respawn ? ', a respawn' : ''}) for ${e.beadId}`,
    );
  if (e.type === 'polecat.done') say(`${e.agent} done with ${e.beadId}`);
});

try {
  await town.start();
  say(`town started; tmux socket: ${socket}`);
  const a = await town.model.beads.create({ title: 'fix the login bug', rig: 'api' });
  const b = await town.model.beads.create({ title: 'write the changelog', rig: 'api' });
  const first = await town.sling(a.id, 'api');
  await town.sling(b.id, 'api');
  await next('polecat.spawned', (e) => e.type === 'polecat.spawned' && e.agent === first.agent);

  for (const s of await driver.list())
    say(`session ${s.name}: ${s.state}, pid ${s.pid}, epoch ${s.epoch}`);
  const session = first.agent.replace('/', '-');
  await new Promise((r) => setTimeout(r, 1_500));
  say(`${session} shows: ${(await driver.capture(session, { lines: 3 })).join(' | ')}`);

  const victim = await driver.status(session);
  say(`kill -9 ${victim.pid} (${session})`);
  process.kill(victim.pid as number, 'SIGKILL');
  const again = await next(
    'polecat.spawned',
    (e) => e.type === 'polecat.spawned' && e.agent === first.agent && e.respawn,
  );
  say(
    `the Witness restarted ${first.agent}: epoch ${(again as { epoch: number }).epoch}, same bead`,
  );
  await new Promise((r) => setTimeout(r, 1_200));
  say(`${session} shows: ${(await driver.capture(session, { lines: 2 })).join(' | ')}`);

  for (const rig of (await town.status()).rigs)
    for (const p of rig.polecats) if (p.beadId) await town.done(p.agent, p.beadId);
  say('both done; stopping the town');
} finally {
  await town.stop();
  await driver.killServer();
}
say('the tmux server is gone; done');
