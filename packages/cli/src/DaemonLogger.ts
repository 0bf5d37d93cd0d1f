import type { TownEvent } from '@belfry/core';
import { type Logger, pino } from 'pino';
import { describeEvent } from './api/events';
import type { LogLevel } from './logFormat';

/** What a secret is replaced by in the daemon's log. */
export const REDACTED = '[REDACTED]';

/**
 * Field names whose values never reach the log, at any depth: a name that is or ends with one of
 * these words (`token`, `githubToken`, `client_secret`; not `tokenFile`, a path).
 */
const SECRET_FIELD =
  /(token|authorization|password|passwd|secret|secret[-_]?key|api[-_]?key|cookie)$/i;

/** The same names as pino redaction paths (the field itself, and one level down). */
const REDACT_PATHS = [
  'token',
  'apiToken',
  'githubToken',
  'authorization',
  'password',
  'secret',
  'headers.authorization',
].flatMap((name) => [name, `*.${name}`]);

/**
 * A secret shorter than this is redacted only where a field's name says it is one: replacing a
 * few characters wherever they appear would garble the log and hide nothing.
 */
export const MIN_SCRUBBED_SECRET = 8;

/** The level of each town event: routine at debug, ordinary changes at info, trouble above. */
const EVENT_LEVELS: {
  [K in TownEvent['type']]: LogLevel | ((e: Extract<TownEvent, { type: K }>) => LogLevel);
} = {
  heartbeat: 'debug',
  'patrol.started': 'debug',
  'patrol.step': 'trace',
  'patrol.finished': 'debug',
  'patrol.overdue': 'warn',
  'mayor.failed': 'error',
  'gate.closed': (e) => (e.failure === undefined ? 'info' : 'warn'),
  'gate.escalated': 'warn',
  'gate.evaluatorFailed': 'error',
  'lifecycle.done': 'info',
  'lifecycle.failed': 'error',
  'molecule.dispatched': 'info',
  'convoy.closed': 'info',
  'warrant.filed': 'info',
  'warrant.executed': 'info',
  'convoy.stalled': 'warn',
  'polecat.spawned': 'info',
  'polecat.adopted': 'info',
  'polecat.stopped': 'info',
  'polecat.exited': (e) => (e.reason === 'stopped' ? 'info' : 'warn'),
  'polecat.escalated': 'error',
  'polecat.done': 'info',
  'witness.started': 'info',
  'witness.restarted': 'warn',
  'witness.stopped': 'info',
  'rig.drained': 'info',
  'boot.assessed': (e) => (e.assessment.action === 'none' ? 'debug' : 'info'),
  report: (e) => severityLevel(e.report.severity),
  'poller.failed': 'error',
};

/**
 * The level a town event is logged at: `trace` for each patrol step, `debug` for the routine
 * (heartbeats, patrols started and finished, a triage that found nothing to do), `info` for
 * ordinary changes, `warn` when the town copes with trouble (a session exited, a gate escalated),
 * `error` for failures (an escalated polecat, a failed lifecycle request or evaluator).
 *
 * @param e - the event.
 * @returns its level.
 * @example
 * ```ts
 * eventLevel({ type: 'heartbeat', count: 3, at: Date.now() }); // 'debug'
 * ```
 */
export function eventLevel(e: TownEvent): LogLevel {
  const level = EVENT_LEVELS[e.type] as LogLevel | ((e: TownEvent) => LogLevel);
  return typeof level === 'function' ? level(e) : level;
}

/** The level of a report to the Mayor, by its severity. */
export function severityLevel(severity: string): LogLevel {
  return severity === 'high' || severity === 'critical'
    ? 'error'
    : severity === 'medium'
      ? 'warn'
      : 'info';
}

/** Options of {@link DaemonLogger}. */
export interface DaemonLoggerOptions {
  /** The least severe level written. @defaultValue `'info'` */
  level?: LogLevel;
  /** Takes each entry: one JSON object and its newline. Called synchronously. */
  write: (line: string) => void;
  /** Values that never reach the log (tokens), wherever they appear; more with {@link DaemonLogger.addSecret}. */
  secrets?: Iterable<string | undefined>;
}

/**
 * The daemon's log: JSON lines through pino (`level`, `time`, `pid`, `hostname`, `msg`, and the
 * entry's fields), at a level (`info` by default). Secrets never reach it: fields named like a
 * token, authorization, password or secret are written as `[REDACTED]` (pino's `redact`, and the
 * same names at any depth), and the known secret values (the GitHub token, the API token) are
 * replaced wherever they appear in a string, the message included.
 *
 * @example
 * ```ts
 * const log = new DaemonLogger({ level: 'debug', write: (line) => file.write(line) });
 * log.addSecret(process.env.GITHUB_TOKEN);
 * log.event({ type: 'heartbeat', count: 1, at: Date.now() });
 * log.warn('the API listens on 0.0.0.0', { host: '0.0.0.0' });
 * ```
 */
export class DaemonLogger {
  /** The pino logger underneath. */
  readonly pino: Logger;
  private readonly secrets = new Set<string>();

  constructor(options: DaemonLoggerOptions) {
    for (const secret of options.secrets ?? []) this.addSecret(secret);
    const scrub = (value: unknown) => this.scrub(value);
    this.pino = pino(
      {
        level: options.level ?? 'info',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACT_PATHS, censor: REDACTED },
        // Every argument (the fields and the message) is scrubbed of the known secret values.
        hooks: {
          logMethod(args, method) {
            method.apply(this, args.map(scrub) as Parameters<typeof method>);
          },
        },
      },
      { write: options.write },
    );
  }

  /** Adds a value never to be written (ignored when empty; see {@link MIN_SCRUBBED_SECRET}). */
  addSecret(value: string | undefined): void {
    if (value !== undefined && value.length >= MIN_SCRUBBED_SECRET) this.secrets.add(value);
  }

  /** Whether entries of `level` are written. */
  enabled(level: LogLevel): boolean {
    return this.pino.isLevelEnabled(level);
  }

  /** Writes `msg` at `level`, with `fields` as JSON fields. */
  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    this.pino[level](fields, msg);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }

  /**
   * Writes a town event at its level ({@link eventLevel}): its type as `event`, its fields as
   * JSON fields (an error as its message), and {@link describeEvent}'s line as `msg`.
   */
  event(e: TownEvent): void {
    const level = eventLevel(e);
    if (!this.enabled(level)) return;
    const { type, at: _at, ...rest } = e as TownEvent & Record<string, unknown>;
    const fields: Record<string, unknown> = { event: type };
    for (const [key, value] of Object.entries(rest))
      fields[key] = value instanceof Error ? value.message : value;
    this.log(level, describeEvent(e), fields);
  }

  /** A copy of `value` with every secret replaced (the caller's objects are never changed). */
  private scrub(value: unknown, depth = 0): unknown {
    if (typeof value === 'string') {
      let text = value;
      for (const secret of this.secrets) text = text.split(secret).join(REDACTED);
      return text;
    }
    if (typeof value !== 'object' || value === null || depth > 8) return value;
    if (value instanceof Error) return this.scrub(value.message, depth + 1);
    if (Array.isArray(value)) return value.map((v) => this.scrub(v, depth + 1));
    const copy: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value))
      copy[key] = SECRET_FIELD.test(key) && v !== undefined ? REDACTED : this.scrub(v, depth + 1);
    return copy;
  }
}
