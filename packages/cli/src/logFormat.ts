/**
 * The levels of the daemon's log, least severe first: `trace` (each patrol step), `debug` (routine
 * events: heartbeats, patrols started and finished), `info` (ordinary changes, the default),
 * `warn` (something went wrong and the town copes: a session exited, a gate escalated), `error`
 * (a failure: a polecat or a lifecycle request escalated, an evaluator or the Mayor failing).
 */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Whether `value` names a level of the daemon's log. */
export function isLogLevel(value: unknown): value is LogLevel {
  return LOG_LEVELS.includes(value as LogLevel);
}

/** pino's numbers for its levels: an entry written by another pino setup may carry one. */
const LEVEL_NAMES: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** The terminal colour of each level (SGR codes): routine dim, trouble yellow or red. */
const LEVEL_COLOURS: Record<string, string> = {
  trace: '2',
  debug: '2',
  info: '32',
  warn: '33',
  error: '31',
  fatal: '1;31',
};

/** Fields every entry has that the readable line shows in its own place, or not at all. */
const SHOWN_APART = new Set(['time', 'level', 'msg', 'pid', 'hostname']);

/** A field's value as `key=value` text: strings bare unless they need quotes, the rest as JSON. */
function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One line of the daemon's log (a JSON object, as pino writes it) made readable:
 * `<time> <LEVEL> <msg> key=value…`, leaving out the fields the message already says. A line that
 * is not such an object (an older daemon's plain text) is returned unchanged.
 *
 * @param line - one line of `daemon.log`, without its newline.
 * @param paint - colours the text with an SGR code (or returns it as it is, off a terminal).
 * @returns the readable line.
 * @example
 * ```ts
 * formatLogLine('{"level":"warn","time":"2026-05-01T10:00:00.000Z","msg":"polecat.exited agent=api/nux","exitCode":3}');
 * // '2026-05-01T10:00:00.000Z WARN  polecat.exited agent=api/nux exitCode=3'
 * ```
 */
export function formatLogLine(
  line: string,
  paint: (code: string, text: string) => string = (_code, text) => text,
): string {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return line;
  const e = entry as Record<string, unknown>;
  if (e.level === undefined || e.time === undefined) return line;
  const level =
    typeof e.level === 'number' ? (LEVEL_NAMES[e.level] ?? String(e.level)) : String(e.level);
  const time = typeof e.time === 'number' ? new Date(e.time).toISOString() : String(e.time);
  const msg = typeof e.msg === 'string' ? e.msg : '';
  const fields = Object.entries(e)
    .filter(([key, value]) => {
      if (SHOWN_APART.has(key) || value === undefined) return false;
      if (key === 'event' && typeof value === 'string' && msg.startsWith(value)) return false;
      return !msg.includes(`${key}=${fieldText(value)}`);
    })
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const label = paint(LEVEL_COLOURS[level] ?? '0', level.toUpperCase().padEnd(5));
  return [paint('2', time), label, msg, ...fields].filter((part) => part !== '').join(' ');
}
