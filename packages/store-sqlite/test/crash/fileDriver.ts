/**
 * A session driver whose sessions are files in a folder, so they outlive the process that
 * started them (as tmux sessions do) and a second process sees them. It keeps the evidence the
 * crash tests check: `created.log` has one line per session it created, `stopped.log` one per
 * running session it stopped, and `violations.log` a line for every start that would have
 * spawned a second session for an epoch that had one.
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  checkSessionName,
  checkSessionSpec,
  DriverError,
  type SessionDriver,
  type SessionSpec,
  type SessionStatus,
} from '@belfry/core/driver';

interface SessionFile {
  name: string;
  epoch: number;
  labels: Record<string, string>;
  startedAt: number;
  state: 'running' | 'exited';
  exitedAt?: number;
}

export function createFileDriver(dir: string): SessionDriver {
  const sessions = join(dir, 'sessions');
  mkdirSync(sessions, { recursive: true });
  const file = (name: string) => join(sessions, `${name}.json`);
  const read = (name: string): SessionFile | undefined => {
    try {
      return JSON.parse(readFileSync(file(name), 'utf8')) as SessionFile;
    } catch {
      return undefined;
    }
  };
  const write = (s: SessionFile) => {
    const tmp = `${file(s.name)}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(s));
    renameSync(tmp, file(s.name));
  };
  const toStatus = (s: SessionFile): SessionStatus => ({
    name: s.name,
    state: s.state,
    epoch: s.epoch,
    startedAt: s.startedAt,
    // A working agent: always showing activity.
    lastActivityAt: s.state === 'running' ? Date.now() : s.startedAt,
    labels: s.labels,
    ...(s.state === 'exited'
      ? { exitCode: 0, signal: null, exitedAt: s.exitedAt ?? s.startedAt }
      : {}),
  });

  return {
    kind: 'file',
    async start(input: SessionSpec) {
      const spec = checkSessionSpec(input);
      const existing = read(spec.name);
      if (existing?.epoch === spec.epoch) return toStatus(existing);
      if (existing?.state === 'running')
        throw new DriverError({
          code: 'EXISTS',
          message: `session ${spec.name} is running with epoch ${existing.epoch}`,
        });
      const s: SessionFile = {
        name: spec.name,
        epoch: spec.epoch,
        labels: { ...(spec.labels ?? {}) },
        startedAt: Date.now(),
        state: 'running',
      };
      write(s);
      // Then one marker per epoch, created exclusively: finding it there means this epoch was
      // spawned before (and its session since stopped or replaced): a second spawn.
      try {
        closeSync(openSync(join(dir, `${spec.name}@${spec.epoch}.spawned`), 'wx'));
      } catch {
        appendFileSync(
          join(dir, 'violations.log'),
          `${spec.name} epoch ${spec.epoch} spawned twice\n`,
        );
      }
      appendFileSync(join(dir, 'created.log'), `${spec.name} ${spec.epoch}\n`);
      return toStatus(s);
    },
    async status(name) {
      checkSessionName(name);
      const s = read(name);
      return s ? toStatus(s) : { name, state: 'missing' };
    },
    async list() {
      return readdirSync(sessions)
        .filter((f) => f.endsWith('.json'))
        .map((f) => read(f.slice(0, -5)))
        .filter((s): s is SessionFile => s !== undefined)
        .map(toStatus);
    },
    async nudge(name, text) {
      checkSessionName(name);
      const s = read(name);
      if (s?.state !== 'running')
        throw new DriverError({ code: 'NOT_RUNNING', message: `session ${name} is not running` });
      appendFileSync(join(dir, 'nudges.log'), `${name} ${JSON.stringify(text)}\n`);
    },
    async capture(name) {
      checkSessionName(name);
      return [];
    },
    async stop(name) {
      checkSessionName(name);
      const s = read(name);
      if (existsSync(file(name))) rmSync(file(name), { force: true });
      // One line per running session stopped: a session stopped twice would show twice.
      if (s?.state === 'running') appendFileSync(join(dir, 'stopped.log'), `${name} ${s.epoch}\n`);
    },
  };
}
