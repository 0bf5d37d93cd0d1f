import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** One process as /proc shows it. */
interface Proc {
  pid: number;
  ppid: number;
  /** Its session id (the pid of the session's leader: for a pane, the pane's process). */
  sid: number;
  /** R, S, D, Z (zombie), T, … */
  state: string;
  /** When it started (clock ticks after boot): with the pid, who it is. */
  start: number;
}

function readStat(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces or ')': read after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      state: rest[0] as string,
      ppid: Number(rest[1]),
      sid: Number(rest[3]),
      start: Number(rest[19]),
    };
  } catch {
    return undefined;
  }
}

/** The live processes (not zombies, not this one). */
function liveProcs(): Proc[] {
  return allPids()
    .map(readStat)
    .filter((p): p is Proc => p !== undefined && p.state !== 'Z' && p.pid !== process.pid);
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

/** A process's environment entries (`KEY=value`); empty when it cannot be read. */
function environ(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  } catch {
    return [];
  }
}

/** Whether a process's environment holds `marker` (a `KEY=value` entry). */
function carries(pid: number, marker: string): boolean {
  return environ(pid).includes(marker);
}

/** Whether a process has one of `ttys` open (its standard streams or any other descriptor). */
function holds(pid: number, ttys: string | ReadonlySet<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (typeof ttys === 'string' ? target === ttys : ttys.has(target)) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

/**
 * The live processes of a session: the pane's process and its descendants (by parent), plus any
 * process whose environment carries the session's marker, plus (given the pane's terminal) any
 * process that holds that terminal open. The marker finds what left the tree: a grandchild
 * started with `setsid` whose parent exited was re-parented to init, but it still has the
 * environment the session gave it. The terminal finds one that also cleared its environment
 * (`setsid env -i …`): it still has the pane's terminal as its standard streams.
 */
export function sessionProcesses(
  rootPid: number | undefined,
  marker: string,
  tty?: string,
): number[] {
  const procs = liveProcs();
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
  if (tty?.startsWith('/dev/'))
    for (const p of procs) if (!found.has(p.pid) && holds(p.pid, tty)) walk(p.pid);
  return [...found];
}

/** A process as recorded when it was seen: its pid and when it started. */
export interface ProcessIdentity {
  pid: number;
  start: number;
}

/** A pane as recorded when it was seen: its process, and its terminal (`/dev/pts/N`). */
export interface PaneIdentity extends ProcessIdentity {
  tty?: string;
}

/** Who process `pid` is now (undefined when it is gone). */
export function identify(pid: number): ProcessIdentity | undefined {
  const p = readStat(pid);
  return p && p.state !== 'Z' ? { pid, start: p.start } : undefined;
}

/**
 * The candidates for what is left of sessions that are gone (their tmux server died): every live
 * process whose environment carries a marker `<prefix><name>` (with that name: the caller keeps
 * those whose session is not live, listing the sessions after this scan), and every process in
 * the process session of one of `lostPanes` (a pane's process leads its session, and a child
 * that ignored the server's hangup stays in it), and every process that still holds a lost
 * pane's terminal now that it is gone (`/dev/pts/N (deleted)`: a `setsid env -i` grandchild, with
 * neither marker nor session). A session whose leader's pid now names another process (started
 * later) is not one of them.
 */
export function orphanProcesses(
  prefix: string,
  lostPanes: readonly PaneIdentity[],
): Array<{ pid: number; sid: number; session?: string; tty?: string }> {
  const procs = liveProcs();
  const lostSids = new Set<number>();
  for (const pane of lostPanes) {
    const now = procs.find((p) => p.pid === pane.pid);
    if (now === undefined || now.start === pane.start) lostSids.add(pane.pid);
  }
  // Only a terminal that is gone: a live one of the same number is someone else's now.
  const goneTtys = new Set(
    lostPanes.filter((p) => p.tty?.startsWith('/dev/')).map((p) => `${p.tty} (deleted)`),
  );
  const found: Array<{ pid: number; sid: number; session?: string; tty?: string }> = [];
  for (const p of procs) {
    const marker = environ(p.pid).find((e) => e.startsWith(prefix));
    if (marker !== undefined)
      found.push({ pid: p.pid, sid: p.sid, session: marker.slice(prefix.length) });
    else if (lostSids.has(p.sid)) found.push({ pid: p.pid, sid: p.sid });
    else if (goneTtys.size > 0 && holds(p.pid, goneTtys))
      found.push({ pid: p.pid, sid: p.sid, tty: 'gone' });
  }
  return found;
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
