import EventEmitter from 'eventemitter3';
import { type AnyActorRef, type AnyActorScope, createActor, type EventObject } from 'xstate';
import { type Clock, isClock, realClock } from '../Clock';
import type { RestartType } from '../childSpec';
import { ConfigError, SupervisorError, type SupervisorErrorCode } from '../errors';
import type { SupervisorEvent, SupervisorEventBus } from '../events';
import { type ExitReason, isShutdownExit, SHUTDOWN_EVENT_TYPE, shutdownExit } from '../exit';
import { HEARTBEAT_EVENT_TYPE } from '../heartbeat';
import type { ChildCounts, ChildExit, ChildInfo, ChildState, SupervisorOutput } from '../types';
import { backoffDelay } from './backoff';
import { CORE } from './brand';
import {
  type NormalizedChild,
  type NormalizedOptions,
  type NormalizedProbe,
  normalizeChild,
  normalizeChildren,
} from './options';
import { RestartWindow } from './RestartWindow';
import { describe } from './validate';

/** Internal event types. They travel through the supervisor's own xstate mailbox. */
const EXIT = 'belfry.sup.exit';
const RUN = 'belfry.sup.run';
const KICK = 'belfry.sup.kick';
export const COMMAND = 'belfry.sup.command';

/** A promise's settle functions, handed to the supervisor by an admin call. */
export interface Reply<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** An admin call travelling to the supervisor; its reply settles the caller's promise. */
export type CommandEvent =
  | { type: typeof COMMAND; op: 'startChild'; spec: unknown; reply: Reply<unknown> }
  | {
      type: typeof COMMAND;
      op: 'restartChild' | 'terminateChild' | 'deleteChild';
      id: string;
      reply: Reply<unknown>;
    };

/** One running instance of a child. A restart makes a new one; events of old ones are ignored. */
interface Instance {
  readonly ref: AnyActorRef;
  readonly rec: ChildRecord;
  /** The admin call waiting for this start, if any. */
  readonly admin: AdminStart | undefined;
  terminating: Termination | undefined;
  /** Set when an admin call already reported this instance's failed start. */
  startFailure: 'discard' | 'stop' | undefined;
  probeSeq: number;
  probeAbort: AbortController | undefined;
  probeTimer: number | undefined;
  probeTimeoutTimer: number | undefined;
  heartbeatTimer: number | undefined;
  failures: number;
  lastBeat: number;
}

/** `startChild`/`restartChild` report a failed start to their caller instead of retrying. */
interface AdminStart {
  reply: Reply<unknown>;
  onFailure: 'discard' | 'stop';
}

/** A stop the supervisor asked for and is waiting on. */
interface Termination {
  /** What happens after: restart (group strategy), stop (admin or shutdown), fail (unhealthy). */
  purpose: 'restart' | 'stop' | 'fail';
  /** For `fail`: the health error the exit is recorded with. */
  cause: SupervisorError | undefined;
  killed: boolean;
  timedOut: boolean;
  budget: number;
  killTimer: number | undefined;
}

/** A restart waiting on a backoff timer; shared by the children of one group restart. */
interface PendingRestart {
  timer: number | undefined;
  members: number;
}

interface ChildRecord {
  spec: NormalizedChild;
  state: ChildState;
  current: Instance | undefined;
  restarts: number;
  lastExit: ChildExit | undefined;
  lastStartedAt: number | undefined;
  backoffAttempt: number;
  backoffUntil: number | undefined;
  pending: PendingRestart | undefined;
  /** Set when the child exited by itself and the decision about it is queued. */
  exitToken: object | undefined;
  removed: boolean;
}

/** Sent by a termination watch: look at this instance, it may have stopped. */
interface ExitEvent {
  type: typeof EXIT;
  rec: ChildRecord;
  inst: Instance;
}

interface RunEvent {
  type: typeof RUN;
  run: () => void;
}

type Job = () => Generator<ChildRecord, void, void> | undefined;

type Final =
  | { status: 'done'; output: SupervisorOutput }
  | { status: 'error'; error: SupervisorError | ConfigError };

/** The lifecycle of the supervisor itself. */
export type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'done' | 'failed' | 'killed';

function shouldRestart(type: RestartType, reason: ExitReason): boolean {
  return type === 'permanent' || (type === 'transient' && reason === 'error');
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** A short description of an error for messages. */
function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return describe(error);
}

function notTrue(value: unknown): Error {
  return value === false
    ? new Error('check returned false')
    : new Error(`check must return true or false; returned ${describe(value)}`);
}

/** Finds the engine of a belfry supervisor actor, or undefined for any other actor. */
export function coreOf(ref: AnyActorRef | undefined): SupervisorCore | undefined {
  let snapshot: Record<symbol, unknown> | undefined;
  try {
    snapshot = ref?.getSnapshot() as Record<symbol, unknown> | undefined;
  } catch {
    // xstate's development build throws while an actor is still computing its initial snapshot,
    // as a machine is when it invokes a supervisor from its initial state. A belfry supervisor
    // never creates children before its own snapshot exists, so such a parent is not one.
    return undefined;
  }
  const core = snapshot?.[CORE];
  return core instanceof SupervisorCore ? core : undefined;
}

/**
 * The engine behind one supervisor actor. It keeps its children in its own map and array rather
 * than in xstate's `snapshot.children` (which xstate copies on every spawn and stop), so start,
 * restart and stop cost O(1) per child for `one_for_one`.
 *
 * Work that has to wait (a child given a shutdown budget) runs as a serial queue of jobs, each a
 * generator that yields the child it is waiting for, in the order OTP processes its mailbox. The
 * common path, a crashed child restarted at once, runs synchronously inside one transition.
 *
 * Nothing here throws into xstate: a defect is caught, the children are stopped, and the
 * supervisor fails with an `INTERNAL` error.
 */
export class SupervisorCore {
  readonly path: string;
  readonly clock: Clock;
  readonly bus: SupervisorEventBus;
  readonly random: () => number;
  phase: Phase = 'new';
  result: Final | undefined;

  private readonly self: AnyActorRef;
  private readonly children = new Map<string, ChildRecord>();
  private order: ChildRecord[] = [];
  private removedCount = 0;
  private readonly window: RestartWindow;

  private jobs: Array<Job | undefined> = [];
  private jobHead = 0;
  private job: Generator<ChildRecord, void, void> | undefined;
  private awaiting: ChildRecord | undefined;
  private readonly replies = new Set<Reply<unknown>>();

  private effects: Array<(() => void) | Instance> = [];
  private effectsScheduled = false;
  private readonly timers = new Map<number, unknown>();
  private nextTimerId = 1;

  constructor(
    private readonly opts: NormalizedOptions,
    private readonly scope: AnyActorScope,
    private readonly input: unknown,
  ) {
    this.self = scope.self;
    const parent = coreOf((scope.self as { _parent?: AnyActorRef })._parent);
    const actorClock = (scope.self as { clock?: unknown }).clock;
    this.clock = opts.clock ?? parent?.clock ?? (isClock(actorClock) ? actorClock : realClock);
    this.bus = opts.events ?? parent?.bus ?? new EventEmitter();
    this.random = opts.random ?? parent?.random ?? Math.random;
    this.path = parent ? `${parent.path}/${scope.self.id}` : (opts.id ?? scope.self.id);
    this.window = new RestartWindow(opts.withinMs);
  }

  // ---------------------------------------------------------------- entry points (from the logic)

  /** Starts the initial children in order. Called once from the actor logic's `start`. */
  start(): void {
    try {
      this.phase = 'starting';
      let specs: NormalizedChild[];
      if (typeof this.opts.children === 'function') {
        try {
          specs = normalizeChildren(
            this.opts.children(this.input),
            'options.children(input)',
            this.opts.autoShutdown,
            this.opts.maxChildren,
          );
        } catch (error) {
          this.finish({ status: 'error', error: asConfigError(error) }, 'shutdown');
          this.self.send({ type: KICK });
          return;
        }
      } else {
        specs = this.opts.children;
      }
      for (const spec of specs) this.startInstance(this.addRecord(spec));
      this.phase = 'running';
      // Queued after the children's starts, so it follows their child.started events.
      this.effect(() =>
        this.emit({ type: 'supervisor.started', children: specs.length, ...this.stamp() }),
      );
      if (this.jobHead < this.jobs.length) this.self.send({ type: KICK });
    } catch (error) {
      this.crash(error);
      this.self.send({ type: KICK });
    }
  }

  /** Handles one event from the mailbox. */
  handle(event: EventObject): void {
    try {
      switch (event.type) {
        case EXIT:
          this.checkExit((event as ExitEvent).rec, (event as ExitEvent).inst);
          break;
        case RUN:
          (event as RunEvent).run();
          break;
        case COMMAND:
          this.onCommand(event as CommandEvent);
          break;
        case HEARTBEAT_EVENT_TYPE:
          this.onHeartbeat(event);
          break;
        case SHUTDOWN_EVENT_TYPE:
          this.beginShutdown({ status: 'done', output: shutdownExit({ reason: 'shutdown' }) });
          break;
        default: {
          // xstate relays a child's end to its parent as xstate.done.actor.<id> or
          // xstate.error.actor.<id>. The relay may be stale (from an instance already replaced),
          // so it only prompts a look at the child's current instance. KICK only drains; other
          // events from children are not the supervisor's to act on.
          const actorId = (event as { actorId?: unknown }).actorId;
          if (typeof actorId === 'string' && event.type.startsWith('xstate.')) {
            const rec = this.children.get(actorId);
            if (rec?.current) this.checkExit(rec, rec.current);
          }
          break;
        }
      }
      this.drain();
    } catch (error) {
      this.crash(error);
    }
  }

  /** xstate is stopping the supervisor actor: stop every child at once, in reverse order. */
  kill(): void {
    try {
      if (this.phase === 'done' || this.phase === 'failed' || this.phase === 'killed') return;
      this.phase = 'killed';
      this.stopEverything('killed');
      this.rejectReplies('NOT_RUNNING', 'the supervisor was stopped');
      this.emit({ type: 'supervisor.stopped', reason: 'killed', ...this.stamp() });
    } catch (error) {
      this.crash(error);
    }
  }

  /** Whether the supervisor has finished (done or failed). */
  get finished(): boolean {
    return this.result !== undefined;
  }

  // ---------------------------------------------------------------- introspection

  whichChildren(): ChildInfo[] {
    const out: ChildInfo[] = [];
    for (const rec of this.order) if (!rec.removed) out.push(this.info(rec));
    return out;
  }

  countChildren(): ChildCounts {
    const counts: ChildCounts = {
      specs: 0,
      active: 0,
      supervisors: 0,
      workers: 0,
      starting: 0,
      running: 0,
      restarting: 0,
      backoff: 0,
      stopped: 0,
    };
    for (const rec of this.order) {
      if (rec.removed) continue;
      counts.specs++;
      if (rec.current) counts.active++;
      if (rec.spec.type === 'supervisor') counts.supervisors++;
      else counts.workers++;
      counts[rec.state]++;
    }
    return counts;
  }

  private info(rec: ChildRecord): ChildInfo {
    return {
      id: rec.spec.id,
      state: rec.state,
      type: rec.spec.type,
      restart: rec.spec.restart,
      shutdown: rec.spec.shutdown,
      significant: rec.spec.significant,
      restarts: rec.restarts,
      ref: rec.current?.ref,
      startedAt: rec.lastStartedAt,
      backoffUntil: rec.backoffUntil,
      lastExit: rec.lastExit,
    };
  }

  // ---------------------------------------------------------------- starting children

  private addRecord(spec: NormalizedChild): ChildRecord {
    const rec: ChildRecord = {
      spec,
      state: 'stopped',
      current: undefined,
      restarts: 0,
      lastExit: undefined,
      lastStartedAt: undefined,
      backoffAttempt: 0,
      backoffUntil: undefined,
      pending: undefined,
      exitToken: undefined,
      removed: false,
    };
    this.children.set(spec.id, rec);
    this.order.push(rec);
    return rec;
  }

  private remove(rec: ChildRecord): void {
    if (rec.removed) return;
    this.cancelPending(rec);
    rec.exitToken = undefined;
    rec.removed = true;
    this.children.delete(rec.spec.id);
    this.removedCount++;
    if (this.removedCount > 32 && this.removedCount * 2 > this.order.length) {
      this.order = this.order.filter((r) => !r.removed);
      this.removedCount = 0;
    }
  }

  /**
   * Creates and (after this transition commits) starts a new instance of the child.
   *
   * `admin` is set for `startChild`/`restartChild`, which report a failed start to their caller
   * instead of counting it as a restart attempt.
   */
  private startInstance(rec: ChildRecord, admin?: AdminStart): void {
    rec.exitToken = undefined;
    const spec = rec.spec;
    const now = this.clock.now();
    let ref: AnyActorRef;
    try {
      const input = spec.getInput
        ? spec.getInput({ id: spec.id, restarts: rec.restarts })
        : spec.input;
      ref = createActor(spec.logic, {
        parent: this.self,
        id: spec.id,
        ...(spec.systemId === undefined ? {} : { systemId: spec.systemId }),
        input,
      });
    } catch (error) {
      rec.lastExit = { reason: 'error', at: now, error };
      if (admin) {
        this.emitExited(rec, 'error', error, 'child', false, true);
        if (admin.onFailure === 'discard') this.remove(rec);
        else rec.state = 'stopped';
        this.settle(admin.reply, undefined, startFailed(spec.id, error));
      } else {
        this.childEnded(rec, 'error', error, true);
      }
      return;
    }
    const inst: Instance = {
      ref,
      rec,
      admin,
      terminating: undefined,
      startFailure: undefined,
      probeSeq: 0,
      probeAbort: undefined,
      probeTimer: undefined,
      probeTimeoutTimer: undefined,
      heartbeatTimer: undefined,
      failures: 0,
      lastBeat: now,
    };
    rec.current = inst;
    rec.lastStartedAt = now;
    rec.state = spec.startup ? 'starting' : 'running';
    if (this.phase === 'starting') {
      // During the supervisor's own start its mailbox is not running yet, so whatever the child
      // sends back queues behind the start just as it would after a commit; starting each child
      // right after creating it keeps it hot in cache, which matters at thousands of children.
      this.startNow(inst);
    } else {
      // Queued as data rather than a closure: a storm of starts allocates one object per child.
      this.queueEffect(inst);
    }
    this.beginHealth(rec, inst);
  }

  // ---------------------------------------------------------------- exits and restarts

  /**
   * Looks at an instance that may have stopped. Its snapshot is the authority: a relay or watch
   * event for an instance that is still active, or no longer current, is ignored.
   */
  private checkExit(rec: ChildRecord, inst: Instance): void {
    if (rec.current !== inst) return; // an instance already let go of
    const snapshot = inst.ref.getSnapshot();
    const status: string = snapshot.status;
    if (status === 'active') return;
    const kind = status === 'done' ? 'done' : status === 'error' ? 'error' : 'stopped';
    rec.current = undefined;
    this.stopHealth(inst);
    const now = this.clock.now();
    const t = inst.terminating;
    if (t) {
      this.clearTimer(t.killTimer);
      let reason: ExitReason;
      let error: unknown;
      // What the child actually did wins over what was asked of it: a child that failed on its
      // own while being stopped exited with `error`, one that finished exited with `shutdown`.
      if (t.cause) {
        reason = 'error';
        error = t.cause;
      } else if (kind === 'error') {
        reason = 'error';
        error = snapshot.error;
      } else if (kind === 'done' || !t.killed) {
        reason = 'shutdown';
      } else {
        reason = 'killed';
      }
      rec.lastExit = error === undefined ? { reason, at: now } : { reason, at: now, error };
      const willRestart =
        this.phase === 'running' &&
        (t.purpose === 'restart' ||
          (t.purpose === 'fail' && shouldRestart(rec.spec.restart, 'error')));
      rec.state = willRestart ? 'restarting' : 'stopped';
      if (t.timedOut) {
        this.emit({
          type: 'child.killed',
          childId: rec.spec.id,
          afterMs: t.budget,
          ...this.stamp(),
        });
      }
      this.emitExited(rec, reason, error, 'supervisor', willRestart, false);
      if (this.awaiting === rec) this.awaiting = undefined;
      return;
    }
    let reason: ExitReason;
    let error: unknown;
    if (kind === 'error') {
      reason = 'error';
      error = snapshot.error;
    } else if (kind === 'done') {
      reason = isShutdownExit(snapshot.output) ? 'shutdown' : 'normal';
    } else {
      // Only a parent can stop an xstate child, so this is unexpected; treat it as abnormal.
      reason = 'killed';
    }
    rec.lastExit = error === undefined ? { reason, at: now } : { reason, at: now, error };
    if (inst.startFailure) {
      this.emitExited(rec, reason, error, 'child', false, true);
      if (inst.startFailure === 'discard') this.remove(rec);
      else rec.state = 'stopped';
      return;
    }
    this.childEnded(rec, reason, error, false);
  }

  /** A child stopped by itself (or failed to start): record it and queue the decision. */
  private childEnded(
    rec: ChildRecord,
    reason: ExitReason,
    error: unknown,
    startFailed: boolean,
  ): void {
    const running = this.phase === 'running' || this.phase === 'starting';
    const willRestart = running && shouldRestart(rec.spec.restart, reason);
    rec.state = willRestart ? 'restarting' : 'stopped';
    this.emitExited(rec, reason, error, 'child', willRestart, startFailed);
    if (!running) return;
    const token = {};
    rec.exitToken = token;
    this.enqueue(() => this.afterExit(rec, token, reason, error));
  }

  private afterExit(rec: ChildRecord, token: object, reason: ExitReason, error: unknown) {
    // Something else (a group restart, an admin call) has dealt with this child since it exited.
    if (rec.exitToken !== token || rec.removed) return undefined;
    rec.exitToken = undefined;
    if (this.phase !== 'running') return undefined;
    if (!shouldRestart(rec.spec.restart, reason)) {
      this.notRestarted(rec);
      return undefined;
    }
    return this.restartFor(rec, error);
  }

  private notRestarted(rec: ChildRecord): void {
    rec.state = 'stopped';
    if (rec.spec.restart === 'temporary') this.remove(rec);
    if (rec.spec.significant) this.checkAutoShutdown();
  }

  private checkAutoShutdown(): void {
    const mode = this.opts.autoShutdown;
    if (mode === 'never') return;
    if (mode === 'all_significant') {
      for (const r of this.order) {
        if (!r.removed && r.spec.significant && r.state !== 'stopped') return;
      }
    }
    this.beginShutdown({ status: 'done', output: shutdownExit({ reason: 'auto_shutdown' }) });
  }

  /**
   * Restarts `failed` per the strategy: counts the restart against intensity, stops the siblings
   * the strategy takes down (in reverse order), then starts the group again after any backoff.
   */
  private restartFor(
    failed: ChildRecord,
    error: unknown,
  ): Generator<ChildRecord, void, void> | undefined {
    const now = this.clock.now();
    if (this.window.add(now) > this.opts.maxRestarts) {
      this.giveUp(failed, error);
      return undefined;
    }
    const group = this.groupFor(failed);
    let needsStop = false;
    for (const r of group) {
      r.exitToken = undefined;
      this.cancelPending(r);
      if (r.current) needsStop = true;
      else r.state = 'restarting';
      if (r.spec.restart !== 'temporary' || r === failed) {
        r.restarts++;
        if (this.wants('child.restarting'))
          this.emit({
            type: 'child.restarting',
            childId: r.spec.id,
            cause: failed.spec.id,
            restarts: r.restarts,
            ...this.stamp(),
          });
      }
    }
    if (!needsStop) {
      this.dropTemporaries(group, failed);
      this.scheduleRestart(
        group.filter((r) => !r.removed),
        failed,
      );
      return undefined;
    }
    return this.restartGroup(group, failed);
  }

  private *restartGroup(
    group: ChildRecord[],
    failed: ChildRecord,
  ): Generator<ChildRecord, void, void> {
    for (let i = group.length - 1; i >= 0; i--) {
      const r = group[i] as ChildRecord;
      if (r === failed) continue;
      if (!this.beginTerminate(r, 'restart')) yield r;
    }
    this.dropTemporaries(group, failed);
    this.scheduleRestart(
      group.filter((r) => !r.removed),
      failed,
    );
  }

  /** Temporary siblings taken down by a group restart are not restarted; their specs go. */
  private dropTemporaries(group: ChildRecord[], failed: ChildRecord): void {
    for (const r of group) {
      if (r !== failed && r.spec.restart === 'temporary') {
        r.state = 'stopped';
        this.remove(r);
      }
    }
  }

  private groupFor(failed: ChildRecord): ChildRecord[] {
    const strategy = this.opts.strategy;
    if (strategy === 'one_for_one') return [failed];
    const from = strategy === 'one_for_all' ? 0 : this.order.indexOf(failed);
    const group: ChildRecord[] = [];
    for (let i = from; i < this.order.length; i++) {
      const r = this.order[i] as ChildRecord;
      if (!r.removed && (r === failed || r.state !== 'stopped')) group.push(r);
    }
    return group;
  }

  private scheduleRestart(group: ChildRecord[], failed: ChildRecord): void {
    if (this.phase !== 'running' || group.length === 0) return;
    const delay = this.nextBackoff(failed);
    const pending: PendingRestart = { timer: undefined, members: group.length };
    for (const r of group) r.pending = pending;
    if (delay <= 0) {
      this.startPending(group, pending);
      return;
    }
    const until = this.clock.now() + delay;
    for (const r of group) {
      r.state = 'backoff';
      r.backoffUntil = until;
    }
    this.emit({
      type: 'child.backoff',
      childId: failed.spec.id,
      delayMs: delay,
      attempt: failed.backoffAttempt - 1,
      until,
      ...this.stamp(),
    });
    pending.timer = this.setTimer(delay, () => {
      pending.timer = undefined;
      this.enqueue(() => {
        this.startPending(group, pending);
        return undefined;
      });
    });
  }

  private startPending(group: ChildRecord[], pending: PendingRestart): void {
    if (this.phase !== 'running') return;
    for (const r of group) {
      if (r.pending !== pending || r.removed) continue;
      r.pending = undefined;
      r.backoffUntil = undefined;
      this.startInstance(r);
    }
  }

  private cancelPending(rec: ChildRecord): void {
    const p = rec.pending;
    if (!p) return;
    rec.pending = undefined;
    rec.backoffUntil = undefined;
    p.members--;
    if (p.members === 0 && p.timer !== undefined) {
      this.clearTimer(p.timer);
      p.timer = undefined;
    }
  }

  private nextBackoff(rec: ChildRecord): number {
    const b = rec.spec.backoff;
    if (!b) return 0;
    const exitedAt = rec.lastExit?.at ?? this.clock.now();
    if (rec.lastStartedAt !== undefined && exitedAt - rec.lastStartedAt >= b.resetAfterMs) {
      rec.backoffAttempt = 0;
    }
    const delay = backoffDelay(b, rec.backoffAttempt, this.random);
    rec.backoffAttempt++;
    return delay;
  }

  private giveUp(failed: ChildRecord, error: unknown): void {
    const { maxRestarts, withinMs } = this.opts;
    this.emit({
      type: 'supervisor.gaveUp',
      childId: failed.spec.id,
      maxRestarts,
      withinMs,
      error,
      ...this.stamp(),
    });
    const what =
      failed.lastExit?.reason === 'error'
        ? `failed: ${errorText(error)}`
        : `exited (${failed.lastExit?.reason ?? 'unknown'})`;
    const err = new SupervisorError({
      code: 'MAX_RESTART_INTENSITY',
      message: `supervisor ${this.path} gave up: more than ${maxRestarts} restart(s) within ${withinMs} ms; child ${failed.spec.id} ${what}`,
      cause: error,
    });
    this.beginShutdown({ status: 'error', error: err });
  }

  // ---------------------------------------------------------------- stopping children

  /**
   * Starts stopping a child per its shutdown policy.
   *
   * @returns true when the child is already down; false when the caller must wait for its exit.
   */
  private beginTerminate(
    rec: ChildRecord,
    purpose: Termination['purpose'],
    cause?: SupervisorError,
  ): boolean {
    rec.exitToken = undefined;
    this.cancelPending(rec);
    const inst = rec.current;
    if (!inst) {
      if (purpose !== 'restart') rec.state = 'stopped';
      return true;
    }
    if (inst.terminating) return false;
    this.stopHealth(inst);
    const t: Termination = {
      purpose,
      cause,
      killed: false,
      timedOut: false,
      budget: 0,
      killTimer: undefined,
    };
    inst.terminating = t;
    // Running children are not subscribed to: xstate relays a child's done or error to its
    // parent, which is much cheaper. A stop is not relayed, so a stop the supervisor waits for is
    // watched. The watch reports only a stop; for done and error the relay follows, and acting on
    // the relay (not the earlier observer call) keeps the supervisor alive until it arrives. The
    // error callback must exist: xstate reports errors globally to observers without one.
    const self = this.self;
    const ref = inst.ref;
    ref.subscribe({
      complete: () => {
        if (ref.getSnapshot().status === 'stopped')
          self.send({ type: EXIT, rec, inst } as ExitEvent);
      },
      error: () => {},
    });
    const policy = rec.spec.shutdown;
    if (policy === 'brutal') {
      this.killInstance(inst);
      return false;
    }
    const stopEvent = rec.spec.shutdownEvent;
    this.effect(() => ref.send(stopEvent));
    if (policy !== 'infinity') {
      t.budget = policy;
      t.killTimer = this.setTimer(policy, () => {
        t.killTimer = undefined;
        if (rec.current === inst && !t.killed) {
          t.timedOut = true;
          this.killInstance(inst);
        }
      });
    }
    return false;
  }

  private killInstance(inst: Instance): void {
    if (inst.terminating) inst.terminating.killed = true;
    const ref = inst.ref;
    this.effect(() => this.scope.stopChild(ref));
  }

  private beginShutdown(final: Final): void {
    if (this.phase !== 'running') return;
    this.phase = 'stopping';
    for (const r of this.order) {
      if (r.removed) continue;
      this.cancelPending(r);
      r.exitToken = undefined;
      if (!r.current) r.state = 'stopped';
    }
    // The shutdown goes before queued work; queued admin calls are rejected when it finishes.
    this.jobs.splice(this.jobHead, 0, () => this.shutdownJob(final));
  }

  private *shutdownJob(final: Final): Generator<ChildRecord, void, void> {
    const list = this.order.slice();
    for (let i = list.length - 1; i >= 0; i--) {
      const r = list[i] as ChildRecord;
      if (r.removed) continue;
      if (!this.beginTerminate(r, 'stop')) yield r;
      r.state = 'stopped';
    }
    const reason = final.status === 'done' ? final.output.detail.reason : 'shutdown';
    this.finish(final, reason);
  }

  private finish(final: Final, reason: 'shutdown' | 'auto_shutdown'): void {
    this.phase = final.status === 'done' ? 'done' : 'failed';
    this.result = final;
    this.clearAllTimers();
    this.job = undefined;
    this.awaiting = undefined;
    this.jobs = [];
    this.jobHead = 0;
    if (final.status === 'done') {
      this.rejectReplies('SHUTTING_DOWN', 'the supervisor shut down');
      this.emit({ type: 'supervisor.stopped', reason, ...this.stamp() });
    } else {
      this.rejectReplies('NOT_RUNNING', `the supervisor failed: ${final.error.message}`);
      const error =
        final.error instanceof SupervisorError
          ? final.error
          : new SupervisorError({
              code: 'INTERNAL',
              message: final.error.message,
              cause: final.error,
            });
      this.emit({ type: 'supervisor.escalated', error, ...this.stamp() });
    }
  }

  /** Stops all children at once (reverse order) and every timer; used by kill and crash. */
  private stopEverything(reason: ExitReason): void {
    this.clearAllTimers();
    this.job = undefined;
    this.awaiting = undefined;
    this.jobs = [];
    this.jobHead = 0;
    const now = this.clock.now();
    for (let i = this.order.length - 1; i >= 0; i--) {
      const r = this.order[i] as ChildRecord;
      if (r.removed) continue;
      this.cancelPending(r);
      r.exitToken = undefined;
      r.state = 'stopped';
      const inst = r.current;
      if (!inst) continue;
      r.current = undefined;
      this.stopHealth(inst);
      r.lastExit = { reason, at: now };
      const ref = inst.ref;
      this.effect(() => this.scope.stopChild(ref));
      this.emitExited(r, reason, undefined, 'supervisor', false, false);
    }
  }

  /** A defect in belfry: stop the children rather than orphan them, then fail. */
  private crash(error: unknown): void {
    try {
      if (this.result || this.phase === 'killed') return;
      this.phase = 'failed';
      this.stopEverything('killed');
      const err = new SupervisorError({
        code: 'INTERNAL',
        message: `supervisor ${this.path} hit an internal error and stopped its children: ${errorText(error)}`,
        cause: error,
      });
      this.result = { status: 'error', error: err };
      this.rejectReplies('NOT_RUNNING', err.message);
      this.emit({ type: 'supervisor.escalated', error: err, ...this.stamp() });
    } catch {
      // Nothing more can be done safely; the actor still reports the failure through `result`.
    }
  }

  // ---------------------------------------------------------------- admin commands

  private onCommand(cmd: CommandEvent): void {
    this.replies.add(cmd.reply);
    this.enqueue(() => this.runCommand(cmd));
  }

  private runCommand(cmd: CommandEvent): Generator<ChildRecord, void, void> | undefined {
    if (this.phase !== 'running') {
      this.settle(
        cmd.reply,
        undefined,
        refusal('SHUTTING_DOWN', `cannot ${cmd.op}: the supervisor ${this.path} is shutting down`),
      );
      return undefined;
    }
    if (cmd.op === 'startChild') {
      let spec: NormalizedChild;
      try {
        spec = normalizeChild(cmd.spec, 'spec', this.opts.autoShutdown);
      } catch (error) {
        this.settle(cmd.reply, undefined, error);
        return undefined;
      }
      const existing = this.children.get(spec.id);
      if (existing) {
        this.settle(
          cmd.reply,
          undefined,
          existing.current
            ? refusal('ALREADY_STARTED', `child ${spec.id} is already running`)
            : refusal(
                'ALREADY_PRESENT',
                `a child spec with id ${spec.id} already exists (state ${existing.state}); use restartChild, or deleteChild first`,
              ),
        );
        return undefined;
      }
      if (this.children.size >= this.opts.maxChildren) {
        this.settle(
          cmd.reply,
          undefined,
          refusal(
            'MAX_CHILDREN',
            `supervisor ${this.path} already has maxChildren (${this.opts.maxChildren}) children`,
          ),
        );
        return undefined;
      }
      this.startInstance(this.addRecord(spec), { reply: cmd.reply, onFailure: 'discard' });
      return undefined;
    }
    const rec = this.children.get(cmd.id);
    if (!rec) {
      this.settle(
        cmd.reply,
        undefined,
        refusal('NOT_FOUND', `supervisor ${this.path} has no child with id ${describe(cmd.id)}`),
      );
      return undefined;
    }
    switch (cmd.op) {
      case 'terminateChild':
        return this.terminateJob(rec, cmd.reply);
      case 'restartChild':
      case 'deleteChild': {
        if (rec.current) {
          this.settle(
            cmd.reply,
            undefined,
            refusal(
              'RUNNING',
              `cannot ${cmd.op} ${rec.spec.id}: it is running; terminateChild it first`,
            ),
          );
          return undefined;
        }
        if (rec.state === 'restarting' || rec.state === 'backoff') {
          this.settle(
            cmd.reply,
            undefined,
            refusal(
              'RESTARTING',
              `cannot ${cmd.op} ${rec.spec.id}: a restart of it is pending (${rec.state}); terminateChild it first`,
            ),
          );
          return undefined;
        }
        if (cmd.op === 'deleteChild') {
          this.remove(rec);
          this.settle(cmd.reply, undefined);
        } else {
          rec.backoffAttempt = 0;
          this.startInstance(rec, { reply: cmd.reply, onFailure: 'stop' });
        }
        return undefined;
      }
    }
  }

  private *terminateJob(
    rec: ChildRecord,
    reply: Reply<unknown>,
  ): Generator<ChildRecord, void, void> {
    if (!this.beginTerminate(rec, 'stop')) yield rec;
    rec.state = 'stopped';
    if (rec.spec.restart === 'temporary') this.remove(rec);
    this.settle(reply, undefined);
  }

  private settle(reply: Reply<unknown>, value: unknown, error?: unknown): void {
    // A reply that is no longer registered was already rejected when the supervisor finished.
    if (!this.replies.delete(reply)) return;
    if (error !== undefined) reply.reject(error);
    else reply.resolve(value);
  }

  private rejectReplies(code: SupervisorErrorCode, message: string): void {
    const pending = [...this.replies];
    this.replies.clear();
    for (const reply of pending) reply.reject(refusal(code, message));
  }

  // ---------------------------------------------------------------- health

  private beginHealth(rec: ChildRecord, inst: Instance): void {
    const startup = rec.spec.startup;
    if (startup) this.scheduleProbe(rec, inst, 'startup', startup.initialDelayMs ?? 0);
    else this.ready(rec, inst, false);
  }

  private ready(rec: ChildRecord, inst: Instance, viaProbe: boolean): void {
    inst.failures = 0;
    if (rec.state === 'starting') rec.state = 'running';
    if (viaProbe) this.emit({ type: 'child.ready', childId: rec.spec.id, ...this.stamp() });
    const { liveness, heartbeat } = rec.spec;
    if (liveness)
      this.scheduleProbe(rec, inst, 'liveness', liveness.initialDelayMs ?? liveness.periodMs);
    if (heartbeat) {
      inst.lastBeat = this.clock.now();
      this.armHeartbeat(rec, inst, heartbeat.intervalMs + heartbeat.graceMs);
    }
  }

  private probeOf(rec: ChildRecord, kind: 'startup' | 'liveness'): NormalizedProbe {
    return (kind === 'startup' ? rec.spec.startup : rec.spec.liveness) as NormalizedProbe;
  }

  private scheduleProbe(
    rec: ChildRecord,
    inst: Instance,
    kind: 'startup' | 'liveness',
    delay: number,
  ): void {
    inst.probeTimer = this.setTimer(delay, () => {
      inst.probeTimer = undefined;
      this.runProbe(rec, inst, kind);
    });
  }

  private runProbe(rec: ChildRecord, inst: Instance, kind: 'startup' | 'liveness'): void {
    if (rec.current !== inst || inst.terminating) return;
    const probe = this.probeOf(rec, kind);
    const seq = ++inst.probeSeq;
    const abort = new AbortController();
    inst.probeAbort = abort;
    let result: unknown;
    try {
      result = probe.check({
        id: rec.spec.id,
        ref: inst.ref,
        signal: abort.signal,
        restarts: rec.restarts,
      });
    } catch (error) {
      this.probeDone(rec, inst, kind, seq, false, error);
      return;
    }
    if (!isPromiseLike(result)) {
      this.probeDone(
        rec,
        inst,
        kind,
        seq,
        result === true,
        result === true ? undefined : notTrue(result),
      );
      return;
    }
    const self = this.self;
    inst.probeTimeoutTimer = this.setTimer(probe.timeoutMs, () => {
      inst.probeTimeoutTimer = undefined;
      abort.abort();
      this.probeDone(
        rec,
        inst,
        kind,
        seq,
        false,
        new Error(`check timed out after ${probe.timeoutMs} ms`),
      );
    });
    result.then(
      (value) =>
        self.send({
          type: RUN,
          run: () =>
            this.probeDone(
              rec,
              inst,
              kind,
              seq,
              value === true,
              value === true ? undefined : notTrue(value),
            ),
        } as RunEvent),
      (error: unknown) =>
        self.send({
          type: RUN,
          run: () => this.probeDone(rec, inst, kind, seq, false, error),
        } as RunEvent),
    );
  }

  private probeDone(
    rec: ChildRecord,
    inst: Instance,
    kind: 'startup' | 'liveness',
    seq: number,
    ok: boolean,
    error: unknown,
  ): void {
    if (rec.current !== inst || inst.terminating || inst.probeSeq !== seq) return;
    inst.probeSeq++; // settles this check: a late timeout or result is now stale
    this.clearTimer(inst.probeTimeoutTimer);
    inst.probeTimeoutTimer = undefined;
    inst.probeAbort = undefined;
    const probe = this.probeOf(rec, kind);
    if (ok) {
      inst.failures = 0;
      if (kind === 'startup') this.ready(rec, inst, true);
      else this.scheduleProbe(rec, inst, 'liveness', probe.periodMs);
      return;
    }
    inst.failures++;
    this.emit({
      type: 'child.probeFailed',
      childId: rec.spec.id,
      probe: kind,
      failures: inst.failures,
      threshold: probe.failureThreshold,
      error,
      ...this.stamp(),
    });
    if (inst.failures < probe.failureThreshold) {
      this.scheduleProbe(rec, inst, kind, probe.periodMs);
      return;
    }
    this.unhealthy(
      rec,
      inst,
      kind,
      new SupervisorError({
        code: 'PROBE_FAILED',
        message: `child ${rec.spec.id}: ${kind} probe failed ${inst.failures} time(s) in a row; last: ${errorText(error)}`,
        cause: error,
      }),
    );
  }

  private armHeartbeat(rec: ChildRecord, inst: Instance, delay: number): void {
    inst.heartbeatTimer = this.setTimer(delay, () => {
      inst.heartbeatTimer = undefined;
      if (rec.current !== inst || inst.terminating) return;
      const hb = rec.spec.heartbeat;
      if (!hb) return;
      const now = this.clock.now();
      const due = inst.lastBeat + hb.intervalMs + hb.graceMs;
      if (now < due) {
        this.armHeartbeat(rec, inst, due - now);
        return;
      }
      this.unhealthy(
        rec,
        inst,
        'heartbeat',
        new SupervisorError({
          code: 'HEARTBEAT_MISSED',
          message: `child ${rec.spec.id}: no heartbeat for ${now - inst.lastBeat} ms (interval ${hb.intervalMs} ms + grace ${hb.graceMs} ms)`,
        }),
      );
    });
  }

  private onHeartbeat(event: EventObject): void {
    const id = (event as { childId?: unknown }).childId;
    if (typeof id !== 'string') return;
    const inst = this.children.get(id)?.current;
    if (inst && !inst.terminating) inst.lastBeat = this.clock.now();
  }

  private stopHealth(inst: Instance): void {
    inst.probeSeq++;
    this.clearTimer(inst.probeTimer);
    this.clearTimer(inst.probeTimeoutTimer);
    this.clearTimer(inst.heartbeatTimer);
    inst.probeTimer = undefined;
    inst.probeTimeoutTimer = undefined;
    inst.heartbeatTimer = undefined;
    inst.probeAbort?.abort();
    inst.probeAbort = undefined;
  }

  /** The child is alive but not working: stop it and handle it as a failed child. */
  private unhealthy(
    rec: ChildRecord,
    inst: Instance,
    probe: 'startup' | 'liveness' | 'heartbeat',
    error: SupervisorError,
  ): void {
    if (rec.current !== inst || inst.terminating) return;
    this.stopHealth(inst);
    this.emit({ type: 'child.unhealthy', childId: rec.spec.id, probe, error, ...this.stamp() });
    this.enqueue(() => this.failUnhealthy(rec, inst, error));
  }

  private *failUnhealthy(
    rec: ChildRecord,
    inst: Instance,
    error: SupervisorError,
  ): Generator<ChildRecord, void, void> {
    if (rec.current !== inst) return; // it exited by itself meanwhile; that exit was handled
    if (!this.beginTerminate(rec, 'fail', error)) yield rec;
    if (this.phase !== 'running' || rec.removed) return;
    if (!shouldRestart(rec.spec.restart, 'error')) {
      this.notRestarted(rec);
      return;
    }
    const next = this.restartFor(rec, error);
    if (next) yield* next;
  }

  // ---------------------------------------------------------------- plumbing

  private enqueue(job: Job): void {
    this.jobs.push(job);
  }

  /** Runs queued jobs until the queue is empty or a job waits for a child to stop. */
  private drain(): void {
    for (;;) {
      if (this.result) return;
      if (this.job) {
        if (this.awaiting) return;
        const step = this.job.next();
        if (step.done) this.job = undefined;
        else this.awaiting = step.value;
        continue;
      }
      if (this.jobHead >= this.jobs.length) {
        if (this.jobHead > 0) {
          this.jobs = [];
          this.jobHead = 0;
        }
        return;
      }
      const next = this.jobs[this.jobHead] as Job;
      this.jobs[this.jobHead++] = undefined;
      const generator = next();
      if (generator) this.job = generator;
    }
  }

  private effect(fn: () => void): void {
    this.queueEffect(fn);
  }

  private queueEffect(effect: (() => void) | Instance): void {
    this.effects.push(effect);
    if (!this.effectsScheduled) {
      this.effectsScheduled = true;
      this.scope.defer(this.flushEffects);
    }
  }

  /** Runs side effects after xstate commits the supervisor's snapshot, in the order queued. */
  private readonly flushEffects = (): void => {
    this.effectsScheduled = false;
    const list = this.effects;
    this.effects = [];
    for (const effect of list) {
      try {
        if (typeof effect === 'function') effect();
        else this.startNow(effect);
      } catch (error) {
        console.error(`[belfry] supervisor ${this.path}: a deferred step threw`, error);
      }
    }
  };

  /** Starts an instance created in the transition that just committed. */
  private startNow(inst: Instance): void {
    const { ref, rec, admin } = inst;
    ref.start();
    const snapshot = ref.getSnapshot();
    if (snapshot.status === 'error') {
      // It failed inside its own start; xstate's error relay is already queued behind us.
      if (admin) {
        inst.startFailure = admin.onFailure;
        this.settle(admin.reply, undefined, startFailed(rec.spec.id, snapshot.error));
      }
      return;
    }
    if (this.wants('child.started')) {
      this.emit({
        type: 'child.started',
        childId: rec.spec.id,
        restarts: rec.restarts,
        ref,
        ...this.stamp(),
      });
    }
    if (admin) this.settle(admin.reply, this.info(rec));
  }

  private setTimer(ms: number, fn: () => void): number {
    const id = this.nextTimerId++;
    const self = this.self;
    const handle = this.clock.setTimeout(() => {
      if (this.timers.delete(id)) self.send({ type: RUN, run: fn } as RunEvent);
    }, ms);
    this.timers.set(id, handle);
    return id;
  }

  private clearTimer(id: number | undefined): void {
    if (id === undefined || !this.timers.has(id)) return;
    const handle = this.timers.get(id);
    this.timers.delete(id);
    this.clock.clearTimeout(handle);
  }

  private clearAllTimers(): void {
    for (const handle of this.timers.values()) this.clock.clearTimeout(handle);
    this.timers.clear();
  }

  private stamp(): { supervisor: string; at: number } {
    return { supervisor: this.path, at: this.clock.now() };
  }

  private emitExited(
    rec: ChildRecord,
    reason: ExitReason,
    error: unknown,
    initiatedBy: 'child' | 'supervisor',
    willRestart: boolean,
    startFailed: boolean,
  ): void {
    if (!this.wants('child.exited')) return;
    this.emit({
      type: 'child.exited',
      childId: rec.spec.id,
      reason,
      ...(error === undefined ? {} : { error }),
      initiatedBy,
      willRestart,
      startFailed,
      ...this.stamp(),
    });
  }

  /** Whether anyone listens for `type`; lets hot paths skip building events nobody reads. */
  private wants(type: SupervisorEvent['type']): boolean {
    return this.bus.listenerCount(type) > 0 || this.bus.listenerCount('*') > 0;
  }

  private emit(event: SupervisorEvent): void {
    try {
      this.bus.emit(event.type, event as never);
      this.bus.emit('*', event);
    } catch (error) {
      // A listener's bug must not take the supervisor down with it.
      console.error(`[belfry] a listener for ${event.type} threw`, error);
    }
  }
}

function refusal(code: SupervisorErrorCode, message: string): SupervisorError {
  return new SupervisorError({ code, message });
}

function startFailed(id: string, cause: unknown): SupervisorError {
  return new SupervisorError({
    code: 'START_FAILED',
    message: `child ${id} failed to start: ${errorText(cause)}`,
    cause,
  });
}

function asConfigError(error: unknown): ConfigError | SupervisorError {
  if (error instanceof ConfigError) return error;
  return new SupervisorError({
    code: 'START_FAILED',
    message: `options.children(input) threw: ${errorText(error)}`,
    cause: error,
  });
}
