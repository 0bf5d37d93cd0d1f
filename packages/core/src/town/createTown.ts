import EventEmitter from 'eventemitter3';
import { type Clock, realClock } from '../Clock';
import { checkFollowOptions } from '../driver/checks';
import type { FollowedOutput, FollowOptions, SessionDriver } from '../driver/SessionDriver';
import { StoreError, SupervisorError } from '../errors';
import type { SupervisorEventBus } from '../events';
import type { GateEvaluator, GateHost } from '../gate/GateEvaluator';
import { checkRandom } from '../internal/random';
import type { CreateGateInput } from '../model/Gates';
import { createTownModel, type TownModel } from '../model/TownModel';
import type {
  Convoy,
  Gate,
  LifecycleAction,
  LifecycleRequest,
  Rig,
  Warrant,
  WarrantRelease,
} from '../model/types';
import { createSupervisor, type Supervisor } from '../Supervisor';
import { MemoryStore } from '../store/MemoryStore';
import type { JsonObject, JsonValue } from '../store/Store';
import { surveyRig, wakeLifecycle, wakePatrol, witnessOf } from './actors';
import { mechanicalTriage } from './boot';
import { boundDriver } from './boundedDriver';
import { createContext, type TownContext } from './context';
import { type CrashLoopState, crashLoopStep, DEACON_CRASH_LOOP, STEADY } from './crashLoop';
import { heartbeatLogic, lifecycleLogic, overduePatrol, pollerLogic } from './daemon';
import { deaconLogic } from './deacon';
import { incidentKey } from './incidents';
import { checkRigName, pollerChildId, rigOfWitness, SYSTEM, sessionName } from './names';
import { slingStep } from './patrolDispatch';
import { closeGate } from './patrolGates';
import { stopSession } from './stopSession';
import { townDriver } from './townDriver';
import { checkDockOptions, checkOptions } from './townOptions';
import { townStatus } from './townStatus';
import type { TownEvent, TownEventBus, TownOptions, TownStatus } from './types';

/**
 * A running town: Gas Town's tree (Daemon → Deacon → Witness → Polecat, plus Boot) on the
 * supervisor, the town model and a session driver. See docs/town.md.
 *
 * @example
 * ```ts
 * const town = createTown({ driver: createMemoryDriver(), rigs: ['api'] });
 * await town.start();
 * const bead = await town.model.beads.create({ title: 'fix the login bug', rig: 'api' });
 * await town.sling(bead.id, 'api');
 * ```
 */
export class Town {
  /** The records. */
  readonly model: TownModel;
  /** The town's events. */
  readonly events: TownEventBus;
  /** The supervision tree's lifecycle events. */
  readonly supervision: SupervisorEventBus;
  readonly clock: Clock;
  readonly driver: SessionDriver;
  /** The town's id ({@link TownOptions.id}), or undefined for a town without one. */
  readonly id: string | undefined;
  private readonly ctx: TownContext;
  private readonly root: Supervisor;
  private readonly rigNames: readonly string[];
  /** The Daemon's crash-loop policy for the Deacon, as its small machine ({@link crashLoopStep}). */
  private crashLoop: CrashLoopState = STEADY;
  private state: 'new' | 'started' | 'stopped' = 'new';
  /** The overdue patrol the Daemon's last look found, if any. */
  private overdue: { moleculeId: string; step: string; runningMs: number } | undefined;
  private readonly detachers: Array<() => void> = [];

  /** @param options - see {@link TownOptions}. @throws ConfigError for bad options. */
  constructor(options: TownOptions) {
    const timings = checkOptions(options);
    const random = checkRandom(options.random, 'options.random');
    this.clock = options.clock ?? realClock;
    this.driver = options.driver;
    this.id = options.id;
    const evaluators = new Map<string, GateEvaluator>(
      (options.gates ?? []).map((g) => [g.type, g]),
    );
    this.model = createTownModel({
      store: options.store ?? new MemoryStore(),
      clock: this.clock,
      gateTypes: [...evaluators.values()],
      ...(options.statuses === undefined ? {} : { statuses: options.statuses }),
      ...(options.terminalStatuses === undefined
        ? {}
        : { terminalStatuses: options.terminalStatuses }),
      ...(options.beadPrefix === undefined ? {} : { beadPrefix: options.beadPrefix }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    this.events = new EventEmitter();
    this.supervision = new EventEmitter();
    this.rigNames = options.rigs ?? [];
    this.ctx = createContext({
      model: this.model,
      // Every driver call of the town goes through the one bounded wrapper, and for a town with
      // an id through the view that shows it only its own sessions.
      driver: boundDriver(
        this.id === undefined ? this.driver : townDriver(this.driver, this.id),
        this.clock,
        timings.callTimeoutMs,
        timings.stopGraceMs,
      ),
      clock: this.clock,
      events: this.events,
      timings,
      evaluators,
      pollers: options.pollers ?? [],
      polecatNames: options.polecatNames,
      launch: options.agent?.launch ?? (() => ({ command: ['agent'] })),
      prime:
        options.agent?.prime ??
        (({ bead, polecat }) =>
          `You are ${polecat.id}. Your hook holds bead ${bead.id}: ${bead.title}. Run it to completion, then report done.`),
      triage: options.triage ?? mechanicalTriage,
      mayor: options.mayor,
      random: random ?? Math.random,
    });
    const ctx = this.ctx;
    this.root = createSupervisor({
      id: 'town',
      clock: this.clock,
      events: this.supervision,
      // Every supervisor below inherits it: the backoff jitter of the Deacon, Witnesses, Polecats.
      ...(options.random === undefined ? {} : { random: options.random }),
      // The Daemon never gives up: a failing Deacon is retried with growing backoff instead.
      maxRestarts: Number.MAX_SAFE_INTEGER,
      withinMs: 1,
      children: [
        {
          id: SYSTEM.deacon,
          logic: deaconLogic(ctx),
          systemId: SYSTEM.deacon,
          shutdown: 'infinity',
          // Gas Town's measured policy: 30 s doubling to 10 min, reset after 30 min up. By
          // the time five restarts make a crash loop, restarts are at the maximum.
          backoff: {
            minMs: 30_000,
            maxMs: 600_000,
            factor: 2,
            jitter: 0.1,
            resetAfterMs: DEACON_CRASH_LOOP.quietMs,
          },
          probes: {
            // The Daemon's look at the Deacon, once a heartbeat: a patrol past its budget makes
            // the Deacon unhealthy, so the tree restarts it (counted, backed off, crash-loop
            // rules) and the new Deacon resumes the patrol at its step.
            liveness: {
              check: () => {
                this.overdue = this.findOverduePatrol();
                return this.overdue === undefined;
              },
              periodMs: timings.heartbeatMs,
              timeoutMs: 1_000,
              failureThreshold: 1,
            },
          },
        },
        {
          id: SYSTEM.lifecycle,
          logic: lifecycleLogic(ctx),
          systemId: SYSTEM.lifecycle,
          shutdown: 'brutal',
        },
        {
          id: SYSTEM.heartbeat,
          logic: heartbeatLogic(ctx),
          systemId: SYSTEM.heartbeat,
          shutdown: 'brutal',
        },
        ...(options.pollers ?? []).map((p) => ({
          id: pollerChildId(p.name),
          logic: pollerLogic(ctx, p),
          shutdown: 'brutal' as const,
        })),
      ],
    });
    this.supervision.on('child.restarting', (e) => {
      if (e.supervisor !== 'town' || e.childId !== SYSTEM.deacon) return;
      const next = crashLoopStep(DEACON_CRASH_LOOP, this.crashLoop, { type: 'restart', at: e.at });
      const entered = this.crashLoop.kind === 'steady' && next.kind === 'looping';
      this.crashLoop = next;
      if (entered) void this.checkCrashLoop();
    });
    this.supervision.on('child.unhealthy', (e) => {
      if (e.supervisor === 'town' && e.childId === SYSTEM.deacon && this.overdue)
        void this.reportOverdue(this.overdue);
      const rig = e.supervisor === 'town/deacon' ? rigOfWitness(e.childId) : undefined;
      if (rig === undefined) return;
      ctx.emit({ type: 'witness.restarted', rig });
      // The seed's sequence: restart, then Boot's triage, then the Mayor hears (with Boot's
      // assessment). The patrol runs Boot; wake it rather than wait for the next heartbeat.
      ctx.witnessRestarts.set(rig, e.error.message);
      this.wake();
    });
    this.events.on('heartbeat', () => void this.checkCrashLoop());
  }

  /** Creates missing rigs and starts the tree. Sessions that are already running are adopted. */
  async start(): Promise<this> {
    if (this.state === 'started') return this;
    if (this.state === 'stopped')
      throw new SupervisorError({
        code: 'NOT_RUNNING',
        message:
          'this town was stopped and cannot start again: create a new one with createTown on the same store and driver (it adopts the running sessions)',
      });
    this.state = 'started';
    this.attachEvaluators();
    for (const name of this.rigNames) {
      if (!(await this.model.rigs.get(name))) await this.model.rigs.create({ name });
    }
    this.ctx.daemon.startedAt = this.clock.now();
    this.root.start();
    return this;
  }

  /**
   * Stops the tree gracefully. Agent sessions keep running: a stopped (or crashed) daemon is a
   * non-event for them, and the next start adopts them.
   */
  async stop(): Promise<void> {
    const was = this.state;
    this.state = 'stopped';
    this.detachEvaluators();
    if (was === 'started') await this.root.stop();
  }

  /** Stops the tree at once (as a crash would; sessions keep running). */
  kill(): void {
    const was = this.state;
    this.state = 'stopped';
    this.detachEvaluators();
    if (was === 'started') this.root.kill();
  }

  /** Gives each evaluator with `attach` this town as its host (a human gate's approvals). */
  private attachEvaluators(): void {
    const host: GateHost = {
      clock: this.clock,
      get: (id) => this.model.gates.get(id),
      close: (id, outcome) => this.gates.resolve(id, outcome.result, outcome),
    };
    for (const evaluator of this.ctx.evaluators.values()) {
      if (typeof evaluator.attach !== 'function') continue;
      const detach = evaluator.attach(host);
      if (typeof detach === 'function') this.detachers.push(detach);
    }
  }

  private detachEvaluators(): void {
    for (const detach of this.detachers.splice(0)) {
      try {
        detach();
      } catch {
        // A detach that throws must not keep the town from stopping.
      }
    }
  }

  /** Settles when the tree stops; rejects if the root failed. */
  whenStopped(): Promise<unknown> {
    return this.root.whenStopped();
  }

  /** Nudges the Deacon's patrol and the lifecycle worker now instead of at the next heartbeat. */
  wake(): void {
    const system = this.root.actor.system;
    wakePatrol(system);
    wakeLifecycle(system);
  }

  /**
   * Rigs: create, list, and the operator's park / unpark / dock / undock. Park and dock let
   * in-flight work finish: a parked rig keeps its running sessions; a dock drains for
   * `timings.drainMs` (the deadline is the rig's `drainUntil`), then stops what is left, keeping
   * the hooks. `dock(rig, { immediate: true })` stops the rig's sessions at once. Undock during a
   * drain cancels it (nothing is stopped). See docs/town.md.
   */
  readonly rigs = {
    create: async (name: string): Promise<Rig> =>
      this.model.rigs.create({ name: checkRigName(name, 'name') }),
    list: (): Promise<Rig[]> => this.model.rigs.list(),
    park: (rig: string) => this.request('park', rig),
    unpark: (rig: string) => this.request('unpark', rig),
    dock: async (rig: string, options: { immediate?: boolean } = {}) =>
      this.request('dock', rig, checkDockOptions(options)),
    undock: (rig: string) => this.request('undock', rig),
  };

  /**
   * Queues a lifecycle request, wakes the town, and resolves once it was carried out (rejects if
   * it failed). The request is durable: while the town is down it waits, and is carried out when
   * the town starts.
   *
   * @param args - the request's arguments (a dock's `{ immediate: true }`).
   */
  async request(
    action: LifecycleAction,
    target: string,
    args?: JsonObject,
  ): Promise<LifecycleRequest> {
    const queued = await this.model.lifecycle.request({
      action,
      target,
      requestedBy: 'operator',
      ...(args === undefined ? {} : { args }),
    });
    const finished = new Promise<LifecycleRequest>((resolve, reject) => {
      const onDone = (e: Extract<TownEvent, { type: 'lifecycle.done' }>) => {
        if (e.requestId !== queued.id) return;
        cleanup();
        void this.model.lifecycle.get(queued.id).then((r) => resolve(r as LifecycleRequest));
      };
      const onFailed = (e: Extract<TownEvent, { type: 'lifecycle.failed' }>) => {
        if (e.requestId !== queued.id) return;
        cleanup();
        reject(
          new StoreError({
            code: 'INVALID_TRANSITION',
            message: `${action} ${target} failed: ${e.error}`,
          }),
        );
      };
      const cleanup = () => {
        this.events.off('lifecycle.done', onDone);
        this.events.off('lifecycle.failed', onFailed);
      };
      this.events.on('lifecycle.done', onDone);
      this.events.on('lifecycle.failed', onFailed);
    });
    this.wake();
    return finished;
  }

  /**
   * Gives a bead to a rig: onto an idle polecat's hook or a new polecat's. The rig's Witness
   * spawns the session. Refused for parked and docked rigs.
   */
  async sling(
    beadId: string,
    rig: string,
  ): Promise<{ agent: string; beadId: string; created: boolean }> {
    // Its sessions are named after it: a rig made through the model with a name no session can
    // have (a '.', over 32 characters) takes no work from the town.
    checkRigName(rig, 'rig');
    const { polecat, created } = await this.model.polecats.sling(
      beadId,
      rig,
      this.ctx.polecatNames ? { names: this.ctx.polecatNames } : {},
    );
    surveyRig(this.root.actor.system, rig);
    return { agent: polecat.id, beadId, created };
  }

  /** Sends text to an agent's session (delivery verified by the driver). */
  async nudge(agent: string, text: string): Promise<void> {
    const polecat = await this.model.polecats.get(agent);
    if (!polecat)
      throw new StoreError({
        code: 'NOT_FOUND',
        message: `unknown polecat ${JSON.stringify(agent)}`,
      });
    await this.ctx.driver.nudge(sessionName(polecat.rig, polecat.name), text);
  }

  /**
   * The last lines an agent's session wrote (its pane, for tmux), oldest first.
   *
   * @param options.lines - how many (an integer >= 1). @defaultValue 50
   * @throws StoreError `NOT_FOUND` for an unknown agent; DriverError `NOT_RUNNING` when it has no
   *   session.
   */
  async output(agent: string, options: { lines?: number } = {}): Promise<string[]> {
    return this.ctx.driver.capture(await this.sessionOf(agent), {
      lines: options.lines ?? 50,
    });
  }

  /**
   * An agent's finished lines after the cursor a previous call returned, to follow its output
   * (see {@link SessionDriver.follow}): with a driver that can follow, no line is missed or given
   * twice while `continuous` is true, however alike the lines are. With one that cannot, the
   * latest `lines` lines, never continuous and with no `end`: the reader compares them with what
   * it has shown.
   *
   * @example
   * ```ts
   * let at = await town.followOutput('api/toast');
   * for (;;) {
   *   await new Promise((r) => setTimeout(r, 500));
   *   at = await town.followOutput('api/toast', at.end === undefined ? {} : { after: at.end });
   *   if (at.continuous) for (const line of at.lines) console.log(line);
   * }
   * ```
   * @throws StoreError `NOT_FOUND` for an unknown agent; DriverError `NOT_RUNNING` when it has no
   *   session, `INVALID_SPEC` for options out of range.
   */
  async followOutput(
    agent: string,
    options: FollowOptions = {},
  ): Promise<Omit<FollowedOutput, 'end'> & { end?: string }> {
    const session = await this.sessionOf(agent);
    const { lines, after } = checkFollowOptions(options);
    if (typeof this.ctx.driver.follow === 'function')
      return this.ctx.driver.follow(session, { lines, ...(after === undefined ? {} : { after }) });
    return { lines: await this.ctx.driver.capture(session, { lines }), continuous: false };
  }

  /** The session name of a polecat the store knows. */
  private async sessionOf(agent: string): Promise<string> {
    const polecat = await this.model.polecats.get(agent);
    if (!polecat)
      throw new StoreError({
        code: 'NOT_FOUND',
        message: `unknown polecat ${JSON.stringify(agent)}`,
      });
    return sessionName(polecat.rig, polecat.name);
  }

  /**
   * An agent finished its bead: the bead moves to `status` (default `done`) and leaves the hook,
   * then the session stops. A molecule step's bead completes that step and the molecule's next
   * step goes to the rig, in the same transaction.
   *
   * `beadId` is the bead the agent says it finished: a late or repeated `done` for a bead the
   * polecat no longer holds is refused (`CONFLICT`), never applied to its new work. The record
   * comes first: if the daemon dies before the stop, the Witness stops the leftover session
   * (its bead is off the hook) instead of respawning finished work.
   *
   * @throws StoreError `NOT_FOUND` (no work on the hook), `CONFLICT` (another bead is hooked).
   */
  async done(
    agent: string,
    beadId: string,
    options: { status?: string; result?: JsonValue } = {},
  ): Promise<void> {
    const polecat = await this.model.polecats.get(agent);
    const hook = await this.model.hooks.get(agent);
    if (!polecat || !hook)
      throw new StoreError({ code: 'NOT_FOUND', message: `${agent} has no work on its hook` });
    if (hook.beadId !== beadId)
      throw new StoreError({
        code: 'CONFLICT',
        message: `${agent} holds bead ${hook.beadId}, not ${JSON.stringify(beadId)}: a done for other work is refused`,
      });
    const status = options.status ?? 'done';
    const session = sessionName(polecat.rig, polecat.name);
    await this.model.transaction(async (m) => {
      // Checked again inside the transaction: a concurrent done or sling may have changed it.
      const current = await m.hooks.get(agent);
      if (current?.beadId !== beadId || current.epoch !== hook.epoch)
        throw new StoreError({
          code: 'CONFLICT',
          message: `${agent}'s hook changed while bead ${beadId} was being finished`,
        });
      const { bead } = await m.hooks.detach(agent, { status });
      const meta = bead.metadata as { molecule?: unknown; step?: unknown; epoch?: unknown };
      if (
        typeof meta.molecule !== 'string' ||
        typeof meta.step !== 'number' ||
        typeof meta.epoch !== 'number'
      )
        return;
      const molecule = await m.molecules.get(meta.molecule);
      if (
        molecule?.status !== 'running' ||
        molecule.epoch !== meta.epoch ||
        molecule.cursor !== meta.step
      )
        return;
      if (!m.isTerminal(status) || status !== 'done') {
        await m.molecules.fail(molecule.id, {
          epoch: molecule.epoch,
          reason: `step ${molecule.cursor} ended ${status}`,
        });
        return;
      }
      const next = await m.molecules.completeStep(molecule.id, {
        step: meta.step,
        epoch: meta.epoch,
        ...(options.result === undefined ? {} : { result: options.result }),
      });
      if (next.status === 'running' && next.rig !== undefined)
        await slingStep({ ...this.ctx, model: m }, next);
    });
    // The polecat's actor is retired first (its session goes on purpose, not as a crash); if the
    // polecat got new work in the same transaction (a molecule's next step), the survey starts a
    // fresh one.
    const system = this.root.actor.system;
    const witness = witnessOf(system, polecat.rig);
    await stopSession(this.ctx, {
      session,
      rig: polecat.rig,
      agent,
      reason: `done: bead ${beadId} ${status}`,
      announce: false,
      ...(witness === undefined ? {} : { witness }),
    });
    this.ctx.emit({ type: 'polecat.done', agent, rig: polecat.rig, beadId: hook.beadId, status });
    surveyRig(system, polecat.rig);
  }

  /** Gates: create, list, and resolve (close by hand, as a person approving). */
  readonly gates = {
    create: (input: CreateGateInput): Promise<Gate> => this.model.gates.create(input),
    list: (options: { type?: string } = {}): Promise<Gate[]> => this.model.gates.open(options),
    /**
     * Closes an open gate by hand with its result; with `failure` (why it failed) its molecules
     * fail instead of moving on.
     */
    resolve: async (
      id: string,
      result?: JsonValue,
      options: { failure?: string } = {},
    ): Promise<Gate> => {
      const gate = await this.model.gates.require(id);
      const closed = await closeGate(this.ctx, gate, {
        ...(result === undefined ? {} : { result }),
        ...(options.failure === undefined ? {} : { failure: options.failure }),
      });
      this.wake();
      return closed;
    },
  };

  /**
   * Warrants: orders to stop a stuck agent. A filed warrant is executed at the Deacon's next
   * patrol, through Boot's triage: the agent's session is stopped and the bead on its hook at
   * filing is released (`open`, back to the pool, or `blocked`). See docs/town.md.
   */
  readonly warrants = {
    /**
     * Files a warrant against an agent (`<rig>/<name>`), or returns its pending one
     * (`created: false`); a new one is announced as `warrant.filed`.
     *
     * @param input.filedBy - who files it. @defaultValue 'operator'
     * @param input.release - what becomes of the agent's bead. @defaultValue 'open'
     * @throws StoreError `NOT_FOUND` for an agent the town does not know; ConfigError for a bad field.
     * @example
     * ```ts
     * await town.warrants.file({ target: 'api/toast', reason: 'no output for 2h', release: 'blocked' });
     * ```
     */
    file: async (input: {
      target: string;
      reason: string;
      filedBy?: string;
      release?: WarrantRelease;
    }): Promise<{ warrant: Warrant; created: boolean }> => {
      const filed = await this.model.warrants.file({ filedBy: 'operator', ...input });
      if (filed.created) {
        const w = filed.warrant;
        this.ctx.emit({
          type: 'warrant.filed',
          warrantId: w.id,
          agent: w.target,
          rig: w.rig,
          reason: w.reason,
          filedBy: w.filedBy,
          release: w.release,
        });
      }
      return filed;
    },
    /** The pending warrants, oldest first. */
    list: (): Promise<Warrant[]> => this.model.warrants.pending(),
  };

  /** Convoys: create, add to, list and follow. */
  readonly convoys = {
    /** A convoy of beads and molecules (at least one); see {@link Convoys.create}. */
    create: (input: {
      title: string;
      beadIds?: readonly string[];
      moleculeIds?: readonly string[];
    }): Promise<Convoy> => this.model.convoys.create(input),
    status: (id: string): Promise<Convoy> => this.model.convoys.require(id),
    /**
     * Tracks more beads and molecules in a convoy; a closed one reopens when any of them is not
     * finished. See {@link Convoys.add}.
     */
    add: (
      id: string,
      input: { beadIds?: readonly string[]; moleculeIds?: readonly string[] },
    ): Promise<Convoy> =>
      this.model.convoys.add(
        id,
        input.beadIds ?? [],
        input.moleculeIds === undefined ? {} : { moleculeIds: input.moleculeIds },
      ),
    /** The open convoys, oldest first. */
    list: (options: { limit?: number } = {}): Promise<Convoy[]> => this.model.convoys.open(options),
  };

  /** The whole tree as data: daemon, deacon, rigs with their witnesses and polecats, and counts. */
  status(): Promise<TownStatus> {
    const running = this.state === 'started' && this.root.actor.getSnapshot().status === 'active';
    return townStatus(this.ctx, this.root, { running, crashLoop: () => this.inCrashLoop() });
  }

  /** The running patrol, when it is past its budget (see {@link overduePatrol}). */
  private findOverduePatrol(): { moleculeId: string; step: string; runningMs: number } | undefined {
    const deacon = this.root.whichChildren().find((c) => c.id === SYSTEM.deacon);
    return overduePatrol(this.ctx, deacon?.startedAt);
  }

  /**
   * One report per stuck patrol (the incident stays open while the resumed patrol is stuck
   * again, and is resolved when a patrol finishes).
   */
  private async reportOverdue(overdue: {
    moleculeId: string;
    step: string;
    runningMs: number;
  }): Promise<void> {
    const { moleculeId, step, runningMs } = overdue;
    this.ctx.emit({ type: 'patrol.overdue', moleculeId, step, runningMs });
    const budget = this.ctx.timings.patrolBudgetMs;
    try {
      await this.ctx.report({
        incidentKey: incidentKey({ kind: 'patrol-overdue' }),
        severity: 'high',
        title: `the deacon's patrol ${moleculeId} was stuck on step ${step} for ${Math.round(runningMs / 1_000)} s (budget ${Math.round(budget / 1_000)} s); the daemon restarted the deacon, which resumes the patrol at that step`,
        details: { moleculeId, step, runningMs, budgetMs: budget },
        source: 'daemon',
      });
    } catch (error) {
      console.error('[belfry] could not report the overdue patrol', error);
    }
  }

  /**
   * In a crash loop from the fifth Deacon restart within 15 min until the Deacon has gone 30 min
   * without a restart: however far apart the backoff spreads the restarts, a Deacon that keeps
   * failing stays in it.
   */
  private inCrashLoop(): boolean {
    this.crashLoop = crashLoopStep(DEACON_CRASH_LOOP, this.crashLoop, {
      type: 'tick',
      at: this.clock.now(),
    });
    return this.crashLoop.kind === 'looping';
  }

  private async checkCrashLoop(): Promise<void> {
    if (this.inCrashLoop()) {
      await this.ctx.report({
        incidentKey: incidentKey({ kind: 'deacon-crash-loop' }),
        severity: 'critical',
        title: `the deacon is in a crash loop: ${DEACON_CRASH_LOOP.restarts} or more restarts within ${DEACON_CRASH_LOOP.windowMs / 60_000} min; it is restarted at most every ${600_000 / 60_000} min until it stays up`,
        source: 'daemon',
      });
    } else {
      await this.model.reports.resolve(incidentKey({ kind: 'deacon-crash-loop' }));
    }
  }
}

/**
 * Creates a town (not started; call `start()`).
 *
 * @param options - see {@link TownOptions}.
 * @returns the {@link Town}.
 * @throws ConfigError for bad options, naming the option and what is allowed.
 * @example
 * ```ts
 * const town = await createTown({ driver, rigs: ['api', 'web'], mayor: (m) => console.log(m) }).start();
 * ```
 */
export function createTown(options: TownOptions): Town {
  return new Town(options);
}
