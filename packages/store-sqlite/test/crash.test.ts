/**
 * Crash safety, proven with SIGKILL: a town runs in a child process on a SQLite file, with
 * sessions (files) that outlive it. Each trial freezes it at a seeded store write (mid-
 * transaction, in a patrol, a dispatch, a lifecycle request or a warrant's execution), SIGKILLs
 * it, starts it again, lets it finish the work, and checks that nothing acknowledged was lost, the
 * patrol resumed at its next step, no molecule step went out twice, no session was spawned twice
 * for an epoch, the timer gates kept their remaining time, and every warrant was executed exactly
 * once, its work released at most once.
 *
 * Drain trials freeze the town inside a graceful dock (between the dock request and the end of
 * its drain) and check, besides the above, that the rig ends docked with its drain over, none of
 * its sessions running or spawned into it while docked, and every session stopped once.
 *
 * Order trials freeze it inside an immediate dock; the operator then undocks while it is down,
 * and the restarted town must carry out the dock and then the undock, in that order, so the rig
 * ends in the state of the operator's last command (undocked), however the kill fell.
 *
 * BELFRY_CRASH_TRIALS=n runs n trials (default 54); BELFRY_CRASH_SEED=s replays one
 * (BELFRY_CRASH_DRAIN_SEED=s one drain trial); BELFRY_CRASH_DRAIN_TRIALS=n (default 12).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@belfry/store-sqlite';
import Database from 'better-sqlite3';
import { buildSync } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';

const HERE = join(import.meta.dirname, 'crash');
const BUNDLE = join(HERE, '.build', 'townProcess.mjs');
const TARGETS = ['patrol', 'dispatch', 'lifecycle', 'warrants'] as const;
const ORDER_TRIALS = Number(process.env.BELFRY_CRASH_ORDER_TRIALS ?? 8);
const DRAIN_TRIALS = Number(process.env.BELFRY_CRASH_DRAIN_TRIALS ?? 12);
const DRAIN_REPLAY = process.env.BELFRY_CRASH_DRAIN_SEED;
const TRIALS = Number(process.env.BELFRY_CRASH_TRIALS ?? 54);
const REPLAY = process.env.BELFRY_CRASH_SEED;
const BASE_SEED = 20_261_122;
/** How late a timer gate may close after it was due (or after the restart, if it fell due while down). */
const SLACK_MS = 5_000;

interface Trial {
  seed: number;
  target: (typeof TARGETS)[number] | 'drain' | 'order';
  fromOp: number;
}

interface Outcome {
  trial: Trial;
  frozen?: string;
}

function mix(seed: number): number {
  let a = seed >>> 0;
  a = Math.imul(a ^ (a >>> 16), 0x45d9f3b);
  a = Math.imul(a ^ (a >>> 16), 0x45d9f3b);
  a ^= a >>> 16;
  return a >>> 0;
}

function trialOf(seed: number): Trial {
  // The kill point: a seeded write number (the first matching write from it on).
  return {
    seed,
    target: TARGETS[seed % TARGETS.length] as Trial['target'],
    fromOp: 1 + (mix(seed) % 300),
  };
}

/** A drain trial: the kill point is a seeded write of the drain (counted from the dock request). */
function drainTrialOf(seed: number): Trial {
  return { seed, target: 'drain', fromOp: 1 + (mix(seed) % 25) };
}

/** An order trial: killed at a seeded write of an immediate dock; the operator then undocks. */
function orderTrialOf(seed: number): Trial {
  return { seed, target: 'order', fromOp: 1 + (mix(seed) % 12) };
}

function node(args: string[]): ChildProcess {
  return spawn(process.execPath, [BUNDLE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Runs the workload until it freezes at the kill point, then SIGKILLs it. */
async function runAndKill(trial: Trial, db: string, dir: string): Promise<string | undefined> {
  const child = node(['run', db, dir, String(trial.seed), trial.target, String(trial.fromOp)]);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const frozen = await new Promise<string | undefined>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no FROZEN or DONE within 30 s; stderr: ${err}`)),
      30_000,
    );
    child.stdout?.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('FROZEN') || l.startsWith('DONE'));
      if (line) {
        clearTimeout(timer);
        resolve(line.startsWith('FROZEN') ? line : undefined);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes('DONE') && !out.includes('FROZEN'))
        reject(
          new Error(`the town process exited (${code}) before its kill point; stderr: ${err}`),
        );
      else resolve(undefined);
    });
  });
  if (frozen) {
    child.kill('SIGKILL');
    const end = await exited(child);
    expect(end.signal).toBe('SIGKILL');
  } else {
    await exited(child);
  }
  return frozen;
}

/** What the file says right after the kill: the patrol under way, and where it stood. */
function afterKill(db: string): { patrol?: { id: string; cursor: number } } {
  // Opening it is the first thing a restarted daemon does: it must open (not be damaged).
  const store = SqliteStore.open({ path: db });
  void store.close();
  const raw = new Database(db, { readonly: true });
  try {
    const rows = raw
      .prepare("SELECT body FROM belfry_records WHERE collection = 'molecules'")
      .all() as Array<{ body: string }>;
    const running = rows
      .map(
        (r) => JSON.parse(r.body) as { id: string; name: string; status: string; cursor: number },
      )
      .find((m) => m.name === 'deacon-patrol' && m.status === 'running');
    return running ? { patrol: { id: running.id, cursor: running.cursor } } : {};
  } finally {
    raw.close();
  }
}

async function recover(db: string, dir: string): Promise<Record<string, unknown>> {
  const child = node(['recover', db, dir]);
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const end = await exited(child);
  const report = existsSync(join(dir, 'report.json'))
    ? (JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Record<string, unknown>)
    : {};
  if (end.code !== 0)
    throw new Error(
      `the restarted town did not finish the work (exit ${end.code}): ${JSON.stringify(report.unsettled ?? err)}`,
    );
  return report;
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

/** Every check of one trial; throws with what went wrong. */
async function trial(t: Trial): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), `belfry-crash-${t.seed}-`));
  const db = join(dir, 'town.db');
  const frozen = await runAndKill(t, db, dir);
  const before = afterKill(db);
  const report = await recover(db, dir);

  // The interrupted patrol resumes at the step after the last one it recorded.
  const events = report.events as Array<{
    type: string;
    moleculeId?: string;
    resumedAt?: number;
    gateId?: string;
    at: number;
  }>;
  if (before.patrol && before.patrol.cursor > 0) {
    const first = events.find((e) => e.type === 'patrol.started');
    expect(first, 'a patrol after the restart').toBeDefined();
    expect({ molecule: first?.moleculeId, resumedAt: first?.resumedAt }).toEqual({
      molecule: before.patrol.id,
      resumedAt: before.patrol.cursor,
    });
  }

  const raw = new Database(db, { readonly: true });
  try {
    const body = (collection: string) =>
      (
        raw
          .prepare('SELECT body FROM belfry_records WHERE collection = ?')
          .all(collection) as Array<{ body: string }>
      ).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    // Nothing acknowledged is lost (the recovery checked each record's final state, too).
    const acks = lines(join(dir, 'acks.log')).map(
      (l) => JSON.parse(l) as { kind: string; id: string; createdAt?: number; durationMs?: number },
    );
    const ids = new Map<string, Set<string>>();
    for (const c of ['beads', 'gates', 'convoys', 'lifecycle', 'molecules', 'warrants'])
      ids.set(c, new Set(body(c).map((r) => r.id as string)));
    const where = {
      bead: 'beads',
      gate: 'gates',
      convoy: 'convoys',
      request: 'lifecycle',
      molecule: 'molecules',
      warrant: 'warrants',
    } as const;
    for (const a of acks)
      expect(ids.get(where[a.kind as keyof typeof where])?.has(a.id), `${a.kind} ${a.id}`).toBe(
        true,
      );

    // Every warrant was executed exactly once: one record, one warrant.executed across the killed
    // process and the restarted one, with the outcome recorded; and no warranted assignment (a
    // bead at a hook epoch) was released twice.
    const executedLog = lines(join(dir, 'executed.log')).map(
      (l) => JSON.parse(l) as { warrantId: string; outcome: unknown },
    );
    const warrants = new Map(body('warrants').map((w) => [w.id as string, w]));
    for (const a of acks.filter((x) => x.kind === 'warrant')) {
      const w = warrants.get(a.id);
      expect(w?.status, `warrant ${a.id}`).toBe('executed');
      const logged = executedLog.filter((e) => e.warrantId === a.id);
      expect(logged, `warrant.executed events of ${a.id}`).toHaveLength(1);
      expect(logged[0]?.outcome).toEqual(w?.outcome);
    }
    const released = new Map<string, number>();
    for (const w of warrants.values()) {
      if (!(w.outcome as { released?: unknown } | undefined)?.released) continue;
      const key = `${w.beadId}@${w.hookEpoch}`;
      released.set(key, (released.get(key) ?? 0) + 1);
    }
    for (const [key, n] of released) expect(n, `releases of ${key}`).toBe(1);

    // No molecule step went out twice: one step bead per molecule step.
    const steps = new Map<string, number>();
    for (const b of body('beads')) {
      const m = /^(mol-[^.]+\.s\d+)\.e\d+$/.exec(b.id as string);
      if (m) steps.set(m[1] as string, (steps.get(m[1] as string) ?? 0) + 1);
    }
    for (const [step, n] of steps) expect(n, `step beads of ${step}`).toBe(1);

    // Timer gates kept their remaining time: closed no earlier than due, and not much later than
    // due (or than the restart, for a gate that fell due while the town was down).
    const gates = new Map(body('gates').map((g) => [g.id as string, g]));
    for (const a of acks.filter((x) => x.kind === 'gate')) {
      const g = gates.get(a.id) as { closedAt?: number; createdAt: number };
      const due = (a.createdAt as number) + (a.durationMs as number);
      expect(g.createdAt).toBe(a.createdAt);
      expect(g.closedAt, `gate ${a.id} closed`).toBeGreaterThanOrEqual(due);
      expect(g.closedAt as number).toBeLessThanOrEqual(
        Math.max(due, report.startedAt as number) + SLACK_MS,
      );
    }
  } finally {
    raw.close();
  }

  // No session was spawned twice for one epoch, nor stopped twice.
  expect(lines(join(dir, 'violations.log'))).toEqual([]);
  const created = lines(join(dir, 'created.log'));
  expect(new Set(created).size).toBe(created.length);
  const stopped = lines(join(dir, 'stopped.log'));
  expect(stopped.length - new Set(stopped).size, `sessions stopped twice: ${stopped}`).toBe(0);

  if (t.target === 'drain') {
    // The graceful dock was carried out once, and the rig ended docked and drained: nothing of it
    // left running, nothing spawned into it while docked, the drain's end announced at most once.
    expect(report.drain, 'the drain report').toEqual({
      request: 'done',
      state: 'docked',
      drainUntil: null,
      running: [],
      spawnedWhileDocked: 0,
    });
    expect(events.filter((e) => e.type === 'rig.drained').length).toBeLessThanOrEqual(1);
  }
  if (t.target === 'order')
    // The operator's last command holds: the dock, then the undock, each carried out once.
    expect(report.ordered, 'the order report').toEqual({
      dock: 'done',
      undock: 'done',
      dockFinishedFirst: true,
      state: 'operational',
    });
  return { trial: t, ...(frozen ? { frozen } : {}) };
}

async function pool<T, R>(
  items: readonly T[],
  limit: number,
  job: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await job(items[i] as T);
      }
    }),
  );
  return out;
}

describe('crash safety with SIGKILL (a town in a child process on a SQLite file)', () => {
  beforeAll(() => {
    mkdirSync(join(HERE, '.build'), { recursive: true });
    // One bundle, so each of the ~100 process starts takes a tenth of a second, not a TypeScript
    // compile. The packages resolve to their sources, as in the tests.
    buildSync({
      entryPoints: [join(HERE, 'townProcess.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@belfry/source'],
      external: ['better-sqlite3'],
      outfile: BUNDLE,
      logLevel: 'warning',
    });
  });

  it(`survives ${REPLAY ? 'the replayed trial' : `${TRIALS} SIGKILLs at seeded points`}: nothing lost, nothing done twice`, async () => {
    const seeds = REPLAY
      ? [Number(REPLAY)]
      : Array.from({ length: TRIALS }, (_, i) => BASE_SEED + i);
    const outcomes = await pool(seeds.map(trialOf), 2, async (t) => {
      try {
        return await trial(t);
      } catch (error) {
        throw new Error(
          `crash trial failed: seed ${t.seed} (kill at the first ${t.target} write from write ${t.fromOp} on); replay with BELFRY_CRASH_SEED=${t.seed} npx vitest run --project store-sqlite test/crash.test.ts\n${error instanceof Error ? error.message : String(error)}`,
        );
      }
    });
    const killed = outcomes.filter((o) => o.frozen);
    const by = (prefix: string) =>
      killed.filter((o) => o.frozen?.startsWith(`FROZEN ${prefix}`)).length;
    const coverage = {
      trials: outcomes.length,
      killed: killed.length,
      patrol: by('patrol'),
      dispatch: by('patrol:dispatch'),
      lifecycle: by('lifecycle'),
      warrants: by('patrol:warrants'),
      midTransaction: killed.filter((o) => /tx-writes=\d+/.test(o.frozen ?? '')).length,
    };
    console.log(`crash trials: ${JSON.stringify(coverage)}`);
    if (!REPLAY && process.env.BELFRY_CRASH_TRIALS === undefined) {
      expect(outcomes.length).toBeGreaterThanOrEqual(50);
      expect(coverage.patrol).toBeGreaterThan(0);
      expect(coverage.dispatch).toBeGreaterThan(0);
      expect(coverage.lifecycle).toBeGreaterThan(0);
      expect(coverage.warrants).toBeGreaterThan(0);
      expect(killed.length).toBeGreaterThanOrEqual(40);
    }
  }, 900_000);

  it(`survives ${DRAIN_REPLAY ? 'the replayed drain trial' : `${DRAIN_TRIALS} SIGKILLs inside a graceful dock`}: the rig ends docked, its sessions stopped once`, async () => {
    const seeds = DRAIN_REPLAY
      ? [Number(DRAIN_REPLAY)]
      : Array.from({ length: DRAIN_TRIALS }, (_, i) => BASE_SEED + 1_000 + i);
    const outcomes = await pool(seeds.map(drainTrialOf), 2, async (t) => {
      try {
        return await trial(t);
      } catch (error) {
        throw new Error(
          `drain crash trial failed: seed ${t.seed} (kill at write ${t.fromOp} of the drain); replay with BELFRY_CRASH_DRAIN_SEED=${t.seed} npx vitest run --project store-sqlite test/crash.test.ts\n${error instanceof Error ? error.message : String(error)}`,
        );
      }
    });
    const killed = outcomes.filter((o) => o.frozen?.startsWith('FROZEN drain'));
    console.log(
      `drain crash trials: ${JSON.stringify({ trials: outcomes.length, killed: killed.length, at: killed.map((o) => o.frozen?.split(' ')[1]) })}`,
    );
    if (!DRAIN_REPLAY && process.env.BELFRY_CRASH_DRAIN_TRIALS === undefined)
      expect(killed.length).toBeGreaterThanOrEqual(DRAIN_TRIALS / 2);
  }, 900_000);

  it(`survives ${ORDER_TRIALS} SIGKILLs inside an immediate dock followed by an undock: the rig ends undocked, the operator's last command`, async () => {
    const seeds = Array.from({ length: ORDER_TRIALS }, (_, i) => BASE_SEED + 2_000 + i);
    const outcomes = await pool(seeds.map(orderTrialOf), 2, async (t) => {
      try {
        return await trial(t);
      } catch (error) {
        throw new Error(
          `order crash trial failed: seed ${t.seed} (kill at write ${t.fromOp} of the dock)\n${error instanceof Error ? error.message : String(error)}`,
        );
      }
    });
    const killed = outcomes.filter((o) => o.frozen?.startsWith('FROZEN drain'));
    console.log(
      `order crash trials: ${JSON.stringify({ trials: outcomes.length, killed: killed.length, at: killed.map((o) => o.frozen?.split(' ')[1]) })}`,
    );
    if (process.env.BELFRY_CRASH_ORDER_TRIALS === undefined)
      expect(killed.length).toBeGreaterThanOrEqual(ORDER_TRIALS / 2);
  }, 900_000);
});
