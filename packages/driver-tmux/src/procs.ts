import { readdirSync, readFileSync } from 'node:fs';

/** One process as /proc shows it. */
interface Proc {
  pid: number;
  ppid: number;
  /** R, S, D, Z (zombie), T, … */
  state: string;
}

function readStat(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces or ')': read after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0] as string, ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Whether this system has a /proc to read processes from (Linux). */
export function hasProc(): boolean {
  try {
    readdirSync('/proc/self');
    return true;
  } catch {
    return false;
  }
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

/** Whether a process's environment holds `marker` (a `KEY=value` entry). */
function carries(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/**
 * The live processes of a session: the pane's process and its descendants (by parent), plus any
 * process whose environment carries the session's marker. The marker finds what left the tree:
 * a grandchild started with `setsid` whose parent exited was re-parented to init, but it still
 * has the environment the session gave it.
 */
export function sessionProcesses(rootPid: number | undefined, marker: string): number[] {
  const procs = allPids()
    .map(readStat)
    .filter((p): p is Proc => p !== undefined && p.state !== 'Z' && p.pid !== process.pid);
  const children = new Map<number, number[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const found = new Set<number>();
  const walk = (pid: number) => {
    if (found.has(pid)) return;
    found.add(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  if (rootPid !== undefined && procs.some((p) => p.pid === rootPid)) walk(rootPid);
  for (const p of procs) if (!found.has(p.pid) && carries(p.pid, marker)) walk(p.pid);
  return [...found];
}

/** Whether a process is alive (a zombie is not). */
export function isAlive(pid: number): boolean {
  const p = readStat(pid);
  if (p) return p.state !== 'Z';
  try {
    process.kill(pid, 0);
    return !hasProc();
  } catch {
    return false;
  }
}

/** Sends `signal` to each process (and to the group `group` leads), ignoring ones already gone. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals, group?: number): void {
  if (group !== undefined) {
    try {
      process.kill(-group, signal);
    } catch {
      // the group is gone already
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}
