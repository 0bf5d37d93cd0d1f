import { type ActorSystem, type AnyActorRef, toPromise } from 'xstate';
import type { SessionStatus } from '../driver/SessionDriver';
import { ConfigError, GateError, StoreError, SupervisorError } from '../errors';
import { type GateDecision, isGateDecision } from '../gate/GateEvaluator';
import type { Gate, LifecycleRequest, Molecule, Rig, Warrant } from '../model/types';
import type { JsonObject, JsonValue } from '../store/Store';
import {
  deleteChild,
  restartChild,
  startChild,
  terminateChild,
  whichChildren,
} from '../supervisorApi';
import { bootLogic } from './boot';
import {
  clip,
  drainLifecycle,
  errorMessage,
  polecatName,
  type RunningPatrol,
  sessionName,
  type TownContext,
  withDeadline,
} from './context';
import { inFlight, stopRigSessions, stopSession, witnessWanted } from './stopSession';
import type { Assessment, PatrolSummary, Situation, TownHealth } from './types';
import { witnessId, witnessSpec } from './witness';

// biome-ignore lint/suspicious/noExplicitAny: xstate's own AnyActorSystem
type System = ActorSystem<any>;

/** The patrol molecule's formula name. */
export const PATROL = 'deacon-patrol';
/**
 * The patrol's steps, in order. Each is recorded on the patrol molecule as it finishes, so a
 * Deacon restarted mid-patrol resumes at the step it was on.
 */
export const PATROL_STEPS = [
  'witnesses',
  'warrants',
  'gates',
  'lifecycle',
  'dispatch',
  'convoys',
  'report',
] as const;

const RIG_ACTIONS = ['park', 'unpark', 'dock', 'undock'] as const;

function deaconRef(system: System): AnyActorRef {
  const ref = system.get('deacon') as AnyActorRef | undefined;
  if (!ref) throw new Error('the deacon is not running');
  return ref;
}

/** Bounds an evaluator call: aborts `abort` and rejects with a `TIMEOUT` GateError after `ms`. */
function withTimeout<T>(
  ctx: TownContext,
  work: Promise<T>,
  ms: number,
  abort: AbortController,
  what: string,
): Promise<T> {
  return withDeadline(
    ctx.clock,
    work,
    ms,
    abort,
    () => new GateError({ code: 'TIMEOUT', message: `${what} did not answer within ${ms} ms` }),
  );
}

// ------------------------------------------------------------------ 1. witnesses

const ACTIONS: readonly Assessment['action'][] = [
  'none',
  'stop-sessions',
  'restart-witness',
  'execute',
  'escalate',
];

/** The actions that answer a situation of this kind (see {@link Assessment}). */
function actionsFor(situation: Situation): readonly Assessment['action'][] {
  return situation.kind === 'warrant'
    ? ['execute', 'none', 'escalate']
    : ACTIONS.filter((a) => a !== 'execute');
}

function isAssessment(value: unknown): value is Assessment {
  const a = value as Assessment | null | undefined;
  return (
    typeof a === 'object' &&
    a !== null &&
    ACTIONS.includes(a.action) &&
    typeof a.reason === 'string' &&
    a.reason.trim().length > 0
  );
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return clip(JSON.stringify(value), 200);
  } catch {
    return String(value);
  }
}

async function runBoot(
  ctx: TownContext,
  system: System,
  situation: Situation,
): Promise<Assessment> {
  let assessment: Assessment;
  try {
    const info = await startChild(deaconRef(system), {
      id: `boot-${ctx.clock.now()}-${Math.floor(ctx.random() * 1e6)}`,
      logic: bootLogic(ctx),
      input: situation,
      restart: 'temporary',
    });
    const answer: unknown = await toPromise(info.ref as AnyActorRef);
    const allowed = actionsFor(situation);
    assessment = !isAssessment(answer)
      ? {
          action: 'escalate',
          reason: `the triage answered ${describeValue(answer)}, not an assessment ({ action: ${allowed.join(' | ')}, reason: non-empty string })`,
        }
      : allowed.includes(answer.action)
        ? { action: answer.action, reason: answer.reason }
        : {
            action: 'escalate',
            reason: `the triage answered ${answer.action} (${answer.reason}), which does not apply to a ${situation.kind} situation (allowed: ${allowed.join(', ')})`,
          };
  } catch (error) {
    assessment = { action: 'escalate', reason: `boot could not assess it: ${errorMessage(error)}` };
  }
  ctx.emit({ type: 'boot.assessed', situation, assessment });
  return assessment;
}

/**
 * Carries out Boot's assessment. A failure to act (a driver that cannot stop a session, say) is
 * reported and never fails the patrol: the next patrol sees the situation again.
 */
async function actOn(
  ctx: TownContext,
  system: System,
  situation: Situation,
  assessment: Assessment,
): Promise<void> {
  try {
    await carryOut(ctx, system, situation, assessment);
  } catch (error) {
    await ctx.report({
      incidentKey: `boot:${situation.kind}:${situation.rig}`,
      severity: 'high',
      title: `rig ${situation.rig}: could not ${assessment.action} (${assessment.reason}): ${errorMessage(error)}`,
      details: situation as unknown as JsonObject,
      source: 'boot',
    });
  }
}

async function carryOut(
  ctx: TownContext,
  system: System,
  situation: Situation,
  assessment: Assessment,
): Promise<void> {
  switch (assessment.action) {
    case 'stop-sessions':
      await stopRigSessions(
        ctx,
        situation.rig,
        `boot: ${assessment.reason}`,
        system.get(witnessId(situation.rig)) as AnyActorRef | undefined,
      );
      return;
    case 'restart-witness': {
      const deacon = deaconRef(system);
      try {
        await terminateChild(deacon, witnessId(situation.rig));
        await restartChild(deacon, witnessId(situation.rig));
      } catch (error) {
        if (!(error instanceof SupervisorError)) throw error;
      }
      return;
    }
    case 'escalate':
      await ctx.report({
        incidentKey: `boot:${situation.kind}:${situation.rig}`,
        severity: 'high',
        title: `rig ${situation.rig}: ${assessment.reason}`,
        details: situation as unknown as JsonObject,
        source: 'boot',
      });
      return;
    case 'none':
    // Warrants are executed by the warrants step; runBoot lets `execute` through for them only.
    case 'execute':
      return;
  }
}

async function checkWitnesses(ctx: TownContext, system: System): Promise<JsonObject> {
  const deacon = deaconRef(system);
  const now = ctx.clock.now();
  const started: string[] = [];
  const stopped: string[] = [];
  const triaged: JsonObject[] = [];
  // Witnesses the Deacon restarted since the last patrol: Boot assesses, then the Mayor hears.
  for (const [rig, error] of [...ctx.witnessRestarts]) {
    const situation: Situation = { kind: 'witness-restarted', rig, error };
    const assessment = await runBoot(ctx, system, situation);
    await ctx.report({
      incidentKey: `witness-unresponsive:${rig}`,
      severity: assessment.action === 'escalate' ? 'high' : 'medium',
      title: `the witness of rig ${rig} stopped answering and was restarted; boot: ${assessment.reason}`,
      details: { rig, error, action: assessment.action, assessment: assessment.reason },
      source: 'deacon',
    });
    ctx.witnessRestarts.delete(rig);
    if (assessment.action !== 'escalate') await actOn(ctx, system, situation, assessment);
    triaged.push({ rig, kind: situation.kind, action: assessment.action });
  }
  /** Boot assesses a situation, the Deacon acts on the answer. */
  const triage = async (situation: Situation) => {
    const assessment = await runBoot(ctx, system, situation);
    await actOn(ctx, system, situation, assessment);
    triaged.push({ rig: situation.rig, kind: situation.kind, action: assessment.action });
  };
  const children = new Map(whichChildren(deacon).map((c) => [c.id, c]));
  for (const rig of await ctx.model.rigs.list()) {
    const id = witnessId(rig.id);
    const child = children.get(id);
    // A parked rig with nothing in flight and a drained docked rig cost no Witness (the Deacon
    // ignores them); a draining docked rig keeps its Witness, which ends the drain.
    if (!(await witnessWanted(ctx, rig))) {
      if (await stopWitness(ctx, system, rig.id)) stopped.push(rig.id);
      if (rig.state !== 'docked') continue;
      // From the town's shared reading: one driver.list() per interval, not one per docked rig.
      const running = (await ctx.sessions.sessionsOf(rig.id)).filter((s) => s.state === 'running');
      if (running.length > 0)
        await triage({
          kind: 'docked-rig-with-sessions',
          rig: rig.id,
          sessions: running.map((s) => s.name),
        });
      continue;
    }
    if (!child) {
      if (await startWitness(ctx, system, rig.id)) started.push(rig.id);
      continue;
    }
    if (child.state === 'stopped') {
      await restartChild(deacon, id);
      started.push(rig.id);
      (system.get('lifecycle') as AnyActorRef | undefined)?.send({ type: 'WAKE' });
      continue;
    }
    // A Witness up for two patrol cycles has answered its pings (a silent one is restarted
    // within two): only then is an unresponsive-witness incident over.
    if (
      child.state === 'running' &&
      now - (child.startedAt ?? now) >= 2 * ctx.timings.patrolIntervalMs
    ) {
      await ctx.model.reports.resolve(`witness-unresponsive:${rig.id}`);
    }
    // Hooked work in an operational rig whose sessions all stayed down past the spawn grace.
    if (
      rig.state === 'operational' &&
      child.state === 'running' &&
      now - (child.startedAt ?? now) > ctx.timings.spawnGraceMs
    ) {
      const hooks = await ctx.model.hooks.list({ rig: rig.id });
      if (hooks.length > 0) {
        const statuses = await Promise.all(
          hooks.map((h) => ctx.sessions.status(sessionName(rig.id, polecatName(h.id)))),
        );
        if (statuses.every((s) => s.state !== 'running'))
          await triage({
            kind: 'hooks-without-sessions',
            rig: rig.id,
            agents: hooks.map((h) => h.id),
          });
      }
    }
  }
  return { started, stopped, triaged };
}

// ------------------------------------------------------------------ warrants

/**
 * Executes one warrant Boot said to execute (or that a run before a crash had begun): unless the
 * target moved on to other work, the decision is recorded, the target's session is stopped (whole
 * process tree, with the stop grace; stopping a session that is gone does nothing), then one
 * transaction releases the warranted work and marks the warrant executed. A crash anywhere in
 * between leaves it pending, and the next run finishes it, once.
 */
async function executeWarrant(
  ctx: TownContext,
  system: System,
  warrant: Warrant,
  legacy: boolean,
): Promise<void> {
  const { target: agent, rig } = warrant;
  const hook = await ctx.model.hooks.get(agent);
  // A warrant filed before warrants recorded their work is about the work on the hook now.
  const movedOn =
    !legacy &&
    hook !== undefined &&
    (hook.beadId !== warrant.beadId || hook.epoch !== warrant.hookEpoch);
  let session: string | undefined;
  if (!movedOn) {
    await ctx.model.warrants.beginStop(warrant.id);
    session = sessionName(rig, polecatName(agent));
    // On purpose, through the one stop path: recorded (the work's next spawn is no respawn),
    // the polecat's actor retired first (its probe does not take the stop for a crash), the end
    // recorded with its last output, `polecat.stopped` announced.
    const witness = system.get(witnessId(rig)) as AnyActorRef | undefined;
    await stopSession(ctx, {
      session,
      rig,
      agent,
      reason: `warrant ${warrant.id}: ${warrant.reason}`,
      ...(witness === undefined ? {} : { witness }),
    });
  }
  const executed = await ctx.model.warrants.execute(warrant.id, {
    by: 'deacon',
    ...(session === undefined ? {} : { session }),
  });
  const outcome = executed.outcome as NonNullable<Warrant['outcome']>;
  ctx.emit({ type: 'warrant.executed', warrantId: warrant.id, agent, rig, outcome });
  // News, like a convoy landing: the Mayor hears of each executed warrant once.
  const key = `warrant-executed:${warrant.id}`;
  await ctx.report({
    incidentKey: key,
    severity: 'medium',
    title: `warrant ${warrant.id} against ${agent} executed (${warrant.reason}): ${outcome.summary}`,
    details: {
      warrantId: warrant.id,
      agent,
      rig,
      filedBy: warrant.filedBy,
      reason: warrant.reason,
      outcome: outcome as unknown as JsonObject,
    },
    source: 'deacon',
  });
  await ctx.model.reports.resolve(key);
  // The released work's polecat actor is retired by its Witness's next survey: do it now.
  (system.get(`watch-${rig}`) as AnyActorRef | undefined)?.send({ type: 'SURVEY' });
}

/**
 * The pending warrants, oldest first: Boot assesses each (`execute`, `none` = hold it for a later
 * patrol, `escalate` = report it and hold it), and the Deacon executes those Boot said to. A
 * warrant whose execution had begun before a crash is finished without asking again. A failure
 * to execute one (a driver that cannot stop the session) is reported; it stays pending.
 */
async function processWarrants(ctx: TownContext, system: System): Promise<JsonObject> {
  const executed: string[] = [];
  const held: string[] = [];
  const escalated: string[] = [];
  const failed: string[] = [];
  for (const stored of await ctx.model.warrants.pending()) {
    // Warrants filed before warrants were executed lack the rig, the release and the work they
    // are about: derive the first two here; beginStop records the work.
    const legacy = (stored as Partial<Warrant>).release === undefined;
    const warrant: Warrant = {
      ...stored,
      rig: stored.rig ?? stored.target.slice(0, stored.target.indexOf('/')),
      release: stored.release ?? 'open',
    };
    const { id, target: agent, rig } = warrant;
    if (warrant.stoppingAt === undefined) {
      const situation: Situation = {
        kind: 'warrant',
        rig,
        agent,
        warrantId: id,
        reason: warrant.reason,
        filedBy: warrant.filedBy,
        beadId: warrant.beadId ?? null,
        release: warrant.release,
      };
      const assessment = await runBoot(ctx, system, situation);
      if (assessment.action === 'none') {
        held.push(id);
        continue;
      }
      if (assessment.action !== 'execute') {
        escalated.push(id);
        await ctx.report({
          incidentKey: `warrant-held:${id}`,
          severity: 'high',
          title: `warrant ${id} against ${agent} (${warrant.reason}) is held pending: ${assessment.reason}`,
          details: situation as unknown as JsonObject,
          source: 'boot',
        });
        continue;
      }
    }
    try {
      await executeWarrant(ctx, system, warrant, legacy);
      executed.push(id);
    } catch (error) {
      failed.push(id);
      await ctx.report({
        incidentKey: `warrant-failed:${id}`,
        severity: 'high',
        title: `warrant ${id} against ${agent} could not be executed: ${errorMessage(error)}`,
        details: { warrantId: id, agent, rig },
        source: 'deacon',
      });
    }
  }
  return { executed, held, escalated, failed };
}

// ------------------------------------------------------------------ 2. gates

async function escalateGate(ctx: TownContext, gate: Gate, said: string): Promise<boolean> {
  const reason = clip(said, 1_000);
  const { isNew } = await ctx.model.gates.escalate(gate.id, reason);
  if (isNew) {
    ctx.emit({ type: 'gate.escalated', gateId: gate.id, gateType: gate.type, reason });
  }
  // One incident per gate while its evaluator keeps escalating, whatever the wording of each
  // reason (it may carry an attempt number or a time); the report shows the latest.
  const { created } = await ctx.report({
    incidentKey: `gate:${gate.id}:escalated`,
    severity: 'medium',
    title: `gate ${gate.id} (${gate.type}): ${reason}`,
    details: { gateId: gate.id, type: gate.type, waiters: [...gate.waiters] },
    source: 'deacon',
  });
  return created;
}

/** Resolves the incidents of a gate that closed. */
export async function resolveGateIncidents(ctx: TownContext, gateId: string): Promise<void> {
  await ctx.model.reports.resolve(`gate:${gateId}:escalated`);
  await ctx.model.reports.resolve(`gate-timeout:${gateId}`);
}

/** Reschedules a gate unless it closed meanwhile (by hand, during its evaluation). */
async function rescheduleIfOpen(ctx: TownContext, id: string, at: number): Promise<void> {
  try {
    await ctx.model.gates.reschedule(id, at);
  } catch (error) {
    if (!(error instanceof StoreError && error.code === 'INVALID_TRANSITION')) throw error;
    if ((await ctx.model.gates.get(id))?.status === 'open') throw error;
  }
}

/** Closes a gate as its evaluator (or a person, through a GateHost) decided, with what follows. */
export async function closeGate(
  ctx: TownContext,
  gate: Pick<Gate, 'id' | 'type'>,
  outcome: { result?: JsonValue; failure?: string },
): Promise<Gate> {
  const closed = await ctx.model.gates.close(
    gate.id,
    outcome.result,
    outcome.failure === undefined ? {} : { failure: outcome.failure },
  );
  ctx.emit({
    type: 'gate.closed',
    gateId: gate.id,
    gateType: gate.type,
    ...(outcome.failure === undefined ? {} : { failure: closed.gate.failure as string }),
  });
  await resolveGateIncidents(ctx, gate.id);
  return closed.gate;
}

/**
 * Keeps an open gate open until `nextCheckAt` (null: on demand; absent: the gate interval) with
 * the evaluator's memo. A memo the model refuses (too large) is escalated, not stored.
 */
async function keepOpen(
  ctx: TownContext,
  gate: Gate,
  decision: { nextCheckAt?: number | null; memo?: JsonObject },
  next: number,
): Promise<void> {
  const at = decision.nextCheckAt === undefined ? next : decision.nextCheckAt;
  try {
    await ctx.model.gates.reschedule(gate.id, at, decision.memo);
  } catch (error) {
    if (!(error instanceof ConfigError) || decision.memo === undefined) throw error;
    await escalateGate(ctx, gate, `its evaluator's memo was refused: ${error.message}`);
    await ctx.model.gates.reschedule(gate.id, at);
  }
}

/**
 * Applies one evaluator decision to a gate. The gate may have been closed by hand while its
 * evaluator ran: then there is nothing left to apply, and the patrol carries on.
 */
async function applyDecision(
  ctx: TownContext,
  gate: Gate,
  decision: GateDecision | undefined,
  next: number,
): Promise<'closed' | 'escalated' | 'pending' | 'gone'> {
  try {
    if (decision === undefined || !isGateDecision(decision)) {
      const escalated = await escalateGate(
        ctx,
        gate,
        `its evaluator answered ${describeValue(decision)}, not a decision`,
      );
      await ctx.model.gates.reschedule(gate.id, next);
      return escalated ? 'escalated' : 'pending';
    }
    if (decision.kind === 'close') {
      await closeGate(ctx, gate, decision);
      return 'closed';
    }
    if (decision.kind === 'escalate') {
      const escalated = await escalateGate(ctx, gate, decision.reason);
      await keepOpen(ctx, gate, decision, next);
      return escalated ? 'escalated' : 'pending';
    }
    // Pending again: an escalation the evaluator made is over (a re-run, say).
    await ctx.model.reports.resolve(`gate:${gate.id}:escalated`);
    await keepOpen(ctx, gate, decision, next);
    return 'pending';
  } catch (error) {
    if (error instanceof StoreError && error.code === 'INVALID_TRANSITION') {
      const now = await ctx.model.gates.get(gate.id);
      if (now && now.status !== 'open') return 'gone';
    }
    throw error;
  }
}

async function evaluateGates(ctx: TownContext): Promise<JsonObject> {
  const now = ctx.clock.now();
  const next = now + ctx.timings.gateIntervalMs;
  const byType = new Map<string, Gate[]>();
  for (const gate of await ctx.model.gates.due({ now })) {
    const list = byType.get(gate.type) ?? [];
    list.push(gate);
    byType.set(gate.type, list);
  }
  let evaluated = 0;
  let closed = 0;
  let escalated = 0;
  const failed: string[] = [];
  for (const [type, gates] of byType) {
    evaluated += gates.length;
    const evaluator = ctx.evaluators.get(type);
    let decisions: ReadonlyMap<string, GateDecision>;
    try {
      if (!evaluator)
        throw new GateError({
          code: 'NO_EVALUATOR',
          message: `no gate evaluator is registered for type ${type}`,
        });
      const abort = new AbortController();
      decisions = await withTimeout(
        ctx,
        Promise.resolve().then(() =>
          evaluator.evaluate(gates, { now, clock: ctx.clock, signal: abort.signal }),
        ),
        ctx.timings.gateTimeoutMs,
        abort,
        `the ${type} gate evaluator`,
      );
      if (!(decisions instanceof Map))
        throw new GateError({
          code: 'EVALUATOR_FAILED',
          message: `the ${type} gate evaluator did not return a Map of decisions`,
        });
      // It answers again: its earlier outage is over, and a later one is a new incident.
      for (const code of ['TIMEOUT', 'EVALUATOR_FAILED', 'NO_EVALUATOR']) {
        await ctx.model.reports.resolve(`gate-evaluator:${type}:${code}`);
      }
    } catch (cause) {
      // Only this evaluator's gates are affected: they stay open and are looked at again later.
      const error =
        cause instanceof GateError
          ? cause
          : new GateError({
              code: 'EVALUATOR_FAILED',
              message: `the ${type} gate evaluator failed: ${errorMessage(cause)}`,
              cause,
            });
      failed.push(type);
      ctx.emit({ type: 'gate.evaluatorFailed', gateType: type, error, gates: gates.length });
      await ctx.report({
        incidentKey: `gate-evaluator:${type}:${error.code}`,
        severity: 'medium',
        title: error.message,
        details: { type, gates: gates.length },
        source: 'deacon',
      });
      for (const gate of gates) await rescheduleIfOpen(ctx, gate.id, next);
      continue;
    }
    for (const gate of gates) {
      const outcome = await applyDecision(
        ctx,
        gate,
        decisions.has(gate.id) ? decisions.get(gate.id) : { kind: 'pending' },
        next,
      );
      if (outcome === 'closed') closed++;
      else if (outcome === 'escalated') escalated++;
    }
  }
  // Open gates past their timeout with no result are escalated once (and stay open).
  let overdue = 0;
  for (const gate of await ctx.model.gates.overdue({ now })) {
    const reason = 'past its timeout with no result';
    // The open incident (not the gate's bounded list of reasons) says it was escalated already.
    if (await ctx.model.reports.byIncident(`gate-timeout:${gate.id}`)) continue;
    overdue++;
    await ctx.model.gates.escalate(gate.id, reason);
    ctx.emit({ type: 'gate.escalated', gateId: gate.id, gateType: gate.type, reason });
    await ctx.report({
      incidentKey: `gate-timeout:${gate.id}`,
      severity: 'medium',
      title: `gate ${gate.id} (${gate.type}) is past its timeout with no result`,
      details: { gateId: gate.id, type: gate.type, timeoutAt: gate.timeoutAt ?? null },
      source: 'deacon',
    });
  }
  return { evaluated, closed, escalated, overdue, failed };
}

// ------------------------------------------------------------------ 3. lifecycle

/** Starts the rig's Witness unless it runs. @returns whether it was started. */
async function startWitness(ctx: TownContext, system: System, rig: string): Promise<boolean> {
  const deacon = deaconRef(system);
  if (whichChildren(deacon).some((c) => c.id === witnessId(rig))) return false;
  await startChild(deacon, witnessSpec(ctx, rig));
  ctx.emit({ type: 'witness.started', rig });
  // A session request waiting for this Witness (it owns the rig's sessions) can go on now.
  (system.get('lifecycle') as AnyActorRef | undefined)?.send({ type: 'WAKE' });
  return true;
}

/** Stops and removes the rig's Witness (and its polecat actors), if it has one. */
async function stopWitness(ctx: TownContext, system: System, rig: string): Promise<boolean> {
  const deacon = deaconRef(system);
  if (!whichChildren(deacon).some((c) => c.id === witnessId(rig))) return false;
  await terminateChild(deacon, witnessId(rig));
  await deleteChild(deacon, witnessId(rig));
  ctx.emit({ type: 'witness.stopped', rig });
  return true;
}

/** Starts or stops the rig's Witness as its state wants it ({@link witnessWanted}). */
async function syncWitness(ctx: TownContext, system: System, rig: Rig): Promise<void> {
  if (await witnessWanted(ctx, rig)) await startWitness(ctx, system, rig.id);
  else await stopWitness(ctx, system, rig.id);
}

/** A dock request's `immediate` argument; anything else in its args is refused. */
function immediateOf(request: LifecycleRequest): boolean {
  const { immediate, ...rest } = request.args;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new ConfigError({
      code: 'UNKNOWN_OPTION',
      path: `args.${unknown[0]}`,
      message: `dock ${request.target}: args.${unknown[0]} is not an argument of dock; allowed: immediate`,
    });
  if (immediate !== undefined && typeof immediate !== 'boolean')
    throw new ConfigError({
      code: 'INVALID_OPTION',
      path: 'args.immediate',
      message: `dock ${request.target}: args.immediate must be true or false; got ${describeValue(immediate)}`,
    });
  return immediate === true;
}

/**
 * Carries out one rig request, quickly (it holds a short lease): the state changes, and the
 * Witness is started or stopped as the new state wants it. A dock with work in flight records
 * its drain deadline and keeps the Witness, which ends the drain in later surveys; an immediate
 * dock (or one with nothing in flight) stops the rig's sessions now. Hooks always stay.
 */
async function applyRigRequest(
  ctx: TownContext,
  system: System,
  request: LifecycleRequest,
): Promise<JsonValue> {
  const { model } = ctx;
  const rig = request.target;
  let record: Rig;
  switch (request.action) {
    case 'park':
      record = await model.rigs.park(rig);
      break;
    case 'unpark':
      record = await model.rigs.unpark(rig);
      break;
    case 'dock': {
      const immediate = immediateOf(request);
      const draining = immediate ? [] : await inFlight(ctx, rig);
      record = await model.rigs.dock(
        rig,
        draining.length === 0 ? {} : { drainUntil: ctx.clock.now() + ctx.timings.drainMs },
      );
      if (record.drainUntil === undefined) {
        await stopWitness(ctx, system, rig);
        const stopped = await stopRigSessions(
          ctx,
          rig,
          `rig ${rig} docked${immediate ? ' (immediate)' : ''}`,
        );
        return { state: record.state, stopped };
      }
      await startWitness(ctx, system, rig);
      (system.get(`watch-${rig}`) as AnyActorRef | undefined)?.send({ type: 'SURVEY' });
      return { state: record.state, drainUntil: record.drainUntil, draining };
    }
    case 'undock':
      record = await model.rigs.undock(rig);
      break;
    default:
      throw new Error(`the deacon does not carry out ${request.action} requests`);
  }
  await syncWitness(ctx, system, record);
  (system.get(`watch-${rig}`) as AnyActorRef | undefined)?.send({ type: 'SURVEY' });
  return { state: record.state };
}

async function processRigRequests(ctx: TownContext, system: System): Promise<JsonObject> {
  return drainLifecycle(ctx, 'deacon', RIG_ACTIONS, (request) =>
    applyRigRequest(ctx, system, request),
  );
}

// ------------------------------------------------------------------ 4. dispatch

/** The bead that carries a molecule's step `step` of dispatch `epoch`: a deterministic id. */
export function stepBeadId(molecule: Molecule, step: number, epoch: number): string {
  return `${molecule.id}.s${step}.e${epoch}`;
}

/**
 * Hands a molecule's current step to its rig, exactly once: the claim, the step's bead (with a
 * deterministic id) and the sling are one transaction.
 */
export async function slingStep(ctx: TownContext, molecule: Molecule): Promise<string> {
  const step = molecule.steps[molecule.cursor];
  const beadId = stepBeadId(molecule, molecule.cursor, molecule.epoch);
  // The step a gate released carries the gate's result (the CI run, the approval) to its agent.
  const gate = molecule.releasedBy ? await ctx.model.gates.get(molecule.releasedBy) : undefined;
  await ctx.model.beads.create({
    id: beadId,
    title: `${molecule.name}: ${step?.name ?? `step ${molecule.cursor}`}`,
    rig: molecule.rig as string,
    labels: ['molecule-step'],
    metadata: {
      molecule: molecule.id,
      step: molecule.cursor,
      epoch: molecule.epoch,
      ...(gate ? { gate: { id: gate.id, type: gate.type, result: gate.result ?? null } } : {}),
    },
  });
  await ctx.model.polecats.sling(
    beadId,
    molecule.rig as string,
    ctx.polecatNames ? { names: ctx.polecatNames } : {},
  );
  return beadId;
}

async function dispatchMolecules(ctx: TownContext, system: System): Promise<JsonObject> {
  const dispatched: string[] = [];
  for (const ready of await ctx.model.molecules.ready()) {
    if (ready.rig === undefined) continue; // nobody to hand it to: the user runs it
    const rig = await ctx.model.rigs.get(ready.rig);
    if (rig?.state !== 'operational') continue; // it waits: the operator wins
    const beadId = await ctx.model.transaction(async (m) => {
      const claimed = await m.molecules.dispatch(ready.id, { by: 'deacon' });
      return slingStep({ ...ctx, model: m }, claimed);
    });
    dispatched.push(ready.id);
    ctx.emit({
      type: 'molecule.dispatched',
      moleculeId: ready.id,
      step: ready.cursor,
      beadId,
      rig: ready.rig,
    });
    (system.get(`watch-${ready.rig}`) as AnyActorRef | undefined)?.send({ type: 'SURVEY' });
  }
  return { dispatched };
}

// ------------------------------------------------------------------ 5. convoys

async function checkConvoys(ctx: TownContext): Promise<JsonObject> {
  const now = ctx.clock.now();
  const closed = await ctx.model.convoys.closeFinished();
  for (const convoy of closed) {
    ctx.emit({ type: 'convoy.closed', convoyId: convoy.id });
    // News, not an incident: the Mayor hears it once per landing, and it is closed at once (a
    // convoy that reopens and lands again is news again).
    await ctx.report({
      incidentKey: `convoy-landed:${convoy.id}`,
      severity: 'info',
      title: `convoy ${convoy.id} landed: ${convoy.title}`,
      details: { convoyId: convoy.id, beads: convoy.beadIds.length },
      source: 'deacon',
    });
    await ctx.model.reports.resolve(`convoy-landed:${convoy.id}`);
    await ctx.model.reports.resolve(`convoy-stalled:${convoy.id}`);
  }
  // A stall is over once the convoy made progress (or closed): a later stall is a new incident.
  for (const report of await ctx.model.reports.open()) {
    if (!report.incidentKey.startsWith('convoy-stalled:')) continue;
    const convoy = await ctx.model.convoys.get(report.incidentKey.slice('convoy-stalled:'.length));
    if (convoy?.status !== 'open' || convoy.lastProgressAt > report.firstAt)
      await ctx.model.reports.resolve(report.incidentKey);
  }
  let stalled = 0;
  for (const convoy of await ctx.model.convoys.stalled(now - ctx.timings.convoyStallMs)) {
    const key = `convoy-stalled:${convoy.id}`;
    if (await ctx.model.reports.byIncident(key)) continue;
    stalled++;
    ctx.emit({ type: 'convoy.stalled', convoyId: convoy.id, sinceMs: now - convoy.lastProgressAt });
    await ctx.report({
      incidentKey: key,
      severity: 'medium',
      title: `convoy ${convoy.id} (${convoy.title}) has made no progress for ${Math.round((now - convoy.lastProgressAt) / 60_000)} min`,
      details: {
        convoyId: convoy.id,
        openBeads: convoy.openCount,
        lastProgressAt: convoy.lastProgressAt,
      },
      source: 'deacon',
    });
  }
  return { closed: closed.map((c) => c.id), stalled };
}

// ------------------------------------------------------------------ 6. report

/**
 * Closes the incidents whose cause is gone, so open reports stay the ones that need someone: a
 * gate closed (by its evaluator or by hand), a situation Boot was called for that this patrol no
 * longer found, a blocked bead that was put back to work. The rest resolve where they are
 * detected (evaluator, poller and witness outages, stalls, the crash loop).
 */
async function reviewIncidents(ctx: TownContext, results: JsonObject): Promise<number> {
  const seen = new Set(
    (
      (results.witnesses as { triaged?: Array<{ rig: string; kind: string }> } | undefined)
        ?.triaged ?? []
    ).map((t) => `boot:${t.kind}:${t.rig}`),
  );
  let resolved = 0;
  for (const report of await ctx.model.reports.open()) {
    const key = report.incidentKey;
    let over = false;
    if (key.startsWith('gate:') || key.startsWith('gate-timeout:')) {
      const id = key.startsWith('gate:') ? key.slice(5, key.lastIndexOf(':')) : key.slice(13);
      over = (await ctx.model.gates.get(id))?.status !== 'open';
    } else if (key.startsWith('boot:')) {
      over = !seen.has(key);
    } else if (key.startsWith('warrant-held:') || key.startsWith('warrant-failed:')) {
      const warrant = await ctx.model.warrants.get(key.slice(key.indexOf(':') + 1));
      over = warrant?.status !== 'pending';
    } else if (key.startsWith('respawn-limit:')) {
      const bead = await ctx.model.beads.get(key.slice('respawn-limit:'.length));
      over = bead === undefined || bead.status !== 'blocked';
    }
    if (over && (await ctx.model.reports.resolve(key))) resolved++;
  }
  return resolved;
}

// ------------------------------------------------------------------ the patrol

const STEPS: Record<
  (typeof PATROL_STEPS)[number],
  (ctx: TownContext, system: System, results: JsonObject) => Promise<JsonObject>
> = {
  witnesses: checkWitnesses,
  warrants: processWarrants,
  gates: (ctx) => evaluateGates(ctx),
  lifecycle: processRigRequests,
  dispatch: dispatchMolecules,
  convoys: (ctx) => checkConvoys(ctx),
  report: async (ctx, _system, results) => {
    const { molecule, startedAt, ...steps } = results as {
      molecule: string;
      startedAt: number;
    } & JsonObject;
    const patrol: PatrolSummary = {
      moleculeId: molecule,
      startedAt,
      finishedAt: ctx.clock.now(),
      steps,
    };
    const resolved = await reviewIncidents(ctx, results);
    const health = await readHealth(ctx);
    await ctx.tellMayor({ kind: 'summary', at: ctx.clock.now(), patrol: { ...patrol, health } });
    return { sent: true, resolved, health: health as unknown as JsonObject };
  },
};

/** How many unhealthy agents a rig's health names. */
const TROUBLE_LISTED = 20;

/**
 * The town's health for the Mayor's summary: each rig's hooked agents, healthy or not by their
 * session (from the town's shared reading), and the open incidents by severity.
 */
async function readHealth(ctx: TownContext): Promise<TownHealth> {
  const health: TownHealth = {
    healthy: 0,
    unhealthy: 0,
    unknown: 0,
    rigs: [],
    incidents: { open: 0, info: 0, low: 0, medium: 0, high: 0, critical: 0 },
  };
  for (const rig of await ctx.model.rigs.list()) {
    const entry: TownHealth['rigs'][number] = {
      rig: rig.id,
      state: rig.state,
      healthy: 0,
      unhealthy: 0,
      unknown: 0,
      trouble: [],
    };
    for (const hook of await ctx.model.hooks.list({ rig: rig.id })) {
      let status: SessionStatus;
      try {
        status = await ctx.sessions.status(sessionName(rig.id, polecatName(hook.id)));
      } catch {
        // A driver that cannot tell now (its own outage is reported where it is found): the
        // summary says so rather than guess, and the patrol's report still goes out.
        entry.unknown++;
        continue;
      }
      if (ctx.healthy(status)) {
        entry.healthy++;
        continue;
      }
      entry.unhealthy++;
      if (entry.trouble.length < TROUBLE_LISTED)
        entry.trouble.push({ agent: hook.id, session: status.state });
    }
    health.healthy += entry.healthy;
    health.unhealthy += entry.unhealthy;
    health.unknown += entry.unknown;
    health.rigs.push(entry);
  }
  for (const report of await ctx.model.reports.open()) {
    health.incidents.open++;
    health.incidents[report.severity]++;
  }
  return health;
}

function count(value: unknown): number {
  return Array.isArray(value) ? value.length : typeof value === 'number' ? value : 0;
}

/**
 * One line for the digest, as the seed's squash summary ("Patrol: 3 gates evaluated, 1 closed,
 * 0 issues"). The step results themselves, lists included, are on the digest as `steps`; the
 * line stays short however many gates, molecules or convoys a patrol handled.
 */
export function describePatrol(steps: JsonObject): string {
  const get = (step: string) => (steps[step] ?? {}) as Record<string, unknown>;
  const w = get('witnesses');
  const wr = get('warrants');
  const g = get('gates');
  const l = get('lifecycle');
  const c = get('convoys');
  const r = get('report');
  const h = r.health as Record<string, unknown> | undefined;
  return [
    `Patrol: witnesses ${count(w.started)} started, ${count(w.stopped)} stopped, ${count(w.triaged)} triaged`,
    `warrants ${count(wr.executed)} executed, ${count(wr.held) + count(wr.escalated) + count(wr.failed)} pending`,
    `gates ${count(g.evaluated)} evaluated, ${count(g.closed)} closed, ${count(g.escalated)} escalated, ${count(g.overdue)} overdue, ${count(g.failed)} evaluators failed`,
    `lifecycle ${count(l.done)} done, ${count(l.failed)} failed`,
    `dispatched ${count(get('dispatch').dispatched)}`,
    `convoys ${count(c.closed)} closed, ${count(c.stalled)} stalled`,
    `incidents resolved ${count(r.resolved)}`,
    ...(h === undefined
      ? []
      : [
          `agents ${count(h.healthy)} healthy, ${count(h.unhealthy)} unhealthy${count(h.unknown) > 0 ? `, ${count(h.unknown)} unknown` : ''}`,
          `${count((h.incidents as Record<string, unknown> | undefined)?.open)} open incidents`,
        ]),
  ].join('; ');
}

/**
 * Runs one patrol: resumes an unfinished one at its next step, or starts a new one. Each step's
 * result is recorded as the molecule's step; the finished patrol is squashed into a digest.
 * The patrol it runs is on `ctx.daemon.patrol` (with its step) for the Daemon to watch; once
 * `signal` is aborted (the Deacon was stopped, as for an overdue patrol) a run whose step
 * settles late does nothing more, the new Deacon's patrol carrying on from the record.
 */
export async function runPatrol(
  ctx: TownContext,
  system: System,
  signal?: AbortSignal,
): Promise<void> {
  const { model } = ctx;
  let molecule =
    (await model.molecules.list({ status: 'running', name: PATROL, limit: 1 }))[0] ??
    (await model.transaction(async (m) => {
      const created = await m.molecules.create({
        name: PATROL,
        steps: PATROL_STEPS.map((name) => ({ name })),
      });
      return m.molecules.dispatch(created.id, { by: 'deacon' });
    }));
  if (signal?.aborted) return;
  const running: RunningPatrol = {
    moleculeId: molecule.id,
    step: PATROL_STEPS[molecule.cursor] ?? 'squash',
    startedAt: molecule.dispatchedAt ?? ctx.clock.now(),
  };
  ctx.daemon.patrol = running;
  ctx.emit({ type: 'patrol.started', moleculeId: molecule.id, resumedAt: molecule.cursor });
  const results: JsonObject = {
    molecule: molecule.id,
    startedAt: molecule.dispatchedAt ?? ctx.clock.now(),
  };
  for (const done of molecule.completed) results[done.name] = (done.result ?? null) as JsonValue;
  while (molecule.status === 'running') {
    // By the stored molecule's own step names, not by position: a patrol poured by an earlier
    // version (with other steps) resumes where it was. A step this version lacks is recorded as
    // skipped rather than wedging the patrol.
    const name = molecule.steps[molecule.cursor]?.name ?? `step ${molecule.cursor}`;
    running.step = name;
    const result = Object.hasOwn(STEPS, name)
      ? await STEPS[name as (typeof PATROL_STEPS)[number]](ctx, system, results)
      : { skipped: `this version has no patrol step ${JSON.stringify(name)}` };
    if (signal?.aborted) return;
    results[name] = result;
    molecule = await model.molecules.completeStep(molecule.id, {
      step: molecule.cursor,
      epoch: molecule.epoch,
      result,
    });
    ctx.emit({ type: 'patrol.step', moleculeId: molecule.id, step: name, result });
  }
  const {
    molecule: id,
    startedAt,
    ...steps
  } = results as { molecule: string; startedAt: number } & JsonObject;
  const health = (steps.report as { health?: TownHealth } | null | undefined)?.health;
  const summary: PatrolSummary = {
    moleculeId: id,
    startedAt,
    finishedAt: ctx.clock.now(),
    steps,
    ...(health === undefined ? {} : { health }),
  };
  running.step = 'squash';
  const digest = await model.molecules.squash(molecule.id, { summary: describePatrol(steps) });
  // Digests are the patrol's audit trail; without a bound a daemon's store would grow by one
  // every few minutes for as long as it runs.
  await model.molecules.pruneDigests(PATROL, { keep: ctx.timings.keepPatrolDigests });
  // A patrol finished: an overdue one before it is over.
  await model.reports.resolve('patrol-overdue');
  if (ctx.daemon.patrol === running) ctx.daemon.patrol = undefined;
  ctx.daemon.lastPatrolAt = ctx.clock.now();
  ctx.emit({ type: 'patrol.finished', moleculeId: molecule.id, digestBeadId: digest.id, summary });
}
