/**
 * A full disk under a backgrounded daemon, run as a process of its own: it mounts a small tmpfs
 * on the town folder (so it needs root, or a user namespace: `unshare -rm`), starts the daemon
 * with the real bin, fills the file system, asks the daemon's status, frees the space, asks
 * again, stops the daemon, and prints what it saw as one JSON line.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE } from '@belfry/cli';
import { alive, belfry, daemonState, eventually, FAST_MEMORY_TOWN } from '../bin';

interface Status {
  state: string;
  pid?: number;
  faults?: Array<{ file: string; error: string; failures: number }>;
}

const dir = process.argv[2] as string;
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', dir]);
const status = async () =>
  JSON.parse((await belfry(dir, 'daemon', 'status', '--json')).out) as Status;
try {
  writeFileSync(join(dir, CONFIG_FILE), FAST_MEMORY_TOWN);
  const start = await belfry(dir, 'daemon', 'start');
  const pid = daemonState(dir)?.pid ?? -1;
  await eventually('heartbeats', () => (daemonState(dir)?.heartbeatCount ?? 0) >= 3);

  // Fill the file system to the last byte.
  const fill = join(dir, 'fill');
  const fd = openSync(fill, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  let filled = 0;
  for (;;) {
    try {
      filled += writeSync(fd, chunk.subarray(0, filled > 2_900_000 ? 512 : chunk.length));
    } catch {
      break;
    }
  }
  closeSync(fd);
  const full = await eventually('the daemon to report its state file unwritable', async () => {
    const s = await status();
    return s.faults?.some((f) => f.file === 'state.json') ? s : undefined;
  });
  // Several heartbeats later it still runs.
  const beatsBefore = full.faults?.find((f) => f.file === 'state.json')?.failures ?? 0;
  const later = await eventually('more failed heartbeats', async () => {
    const s = await status();
    const n = s.faults?.find((f) => f.file === 'state.json')?.failures ?? 0;
    return n >= beatsBefore + 5 ? s : undefined;
  });
  const aliveWhileFull = alive(pid);

  rmSync(fill);
  const recovered = await eventually('the daemon to write its state again', async () => {
    const s = await status();
    return s.state === 'running' && (s.faults ?? []).length === 0 ? s : undefined;
  });
  const stop = await belfry(dir, 'daemon', 'stop');
  const log = execFileSync('cat', [join(dir, '.belfry', 'daemon.log')], { encoding: 'utf8' });
  const leftovers = execFileSync('ls', ['-A', join(dir, '.belfry')], { encoding: 'utf8' });
  process.stdout.write(
    `${JSON.stringify({ start, pid, filled, full, later, aliveWhileFull, recovered, stop, log, leftovers })}\n`,
  );
} finally {
  const pid = daemonState(dir)?.pid;
  if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  execFileSync('umount', ['-l', dir]);
}
