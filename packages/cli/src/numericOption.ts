import { InvalidArgumentError } from 'commander';

/** What a numeric command-line option accepts. */
export interface NumericRule {
  /** The smallest value allowed (after the unit is applied). */
  min: number;
  /** The largest value allowed (after the unit is applied). */
  max: number;
  /**
   * `ms`: a time, in milliseconds, written as a decimal integer with an optional unit
   * (`ms`, `s`, `m`, `h`, `d`; a bare number is milliseconds). `count`: a plain decimal integer.
   */
  kind: 'ms' | 'count';
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DECIMAL = /^(0|[1-9][0-9]{0,14})(ms|s|m|h|d)?$/;

function describeRule(rule: NumericRule): string {
  return rule.kind === 'ms'
    ? `a whole number of milliseconds from ${rule.min} to ${rule.max}, optionally with a unit (ms, s, m, h, d), e.g. 15000 or 15s`
    : `a whole number from ${rule.min} to ${rule.max} (decimal digits only)`;
}

/**
 * Parses the text of a numeric option: a decimal integer (no sign, no hex, no exponent, no
 * blanks), with a unit where it is a time, within the rule's range. The one parser every numeric
 * option of `belfry` goes through.
 *
 * @param text - what was given on the command line.
 * @param rule - what is allowed.
 * @returns the value (milliseconds for a time).
 * @throws InvalidArgumentError saying what was given and what is allowed; commander adds the
 *   option's name and `belfry` exits with 2 (bad usage).
 * @example
 * ```ts
 * parseNumeric('15s', { kind: 'ms', min: 1, max: 3_600_000 }); // 15000
 * parseNumeric('0x10', { kind: 'count', min: 0, max: 100 }); // throws
 * ```
 */
export function parseNumeric(text: string, rule: NumericRule): number {
  const match = DECIMAL.exec(text);
  const unit = match?.[2];
  const value = match ? Number(match[1]) * (UNITS[unit ?? ''] as number) : Number.NaN;
  if (
    !match ||
    (unit !== undefined && rule.kind !== 'ms') ||
    !Number.isSafeInteger(value) ||
    value < rule.min ||
    value > rule.max
  )
    throw new InvalidArgumentError(`got ${JSON.stringify(text)}; allowed: ${describeRule(rule)}.`);
  return value;
}

/**
 * A commander argument parser for a numeric option, for `Option.argParser`.
 *
 * @param rule - what is allowed.
 * @returns the parser.
 * @example
 * ```ts
 * new Option('--timeout <time>', 'how long to wait').argParser(numeric({ kind: 'ms', min: 1, max: 3_600_000 }));
 * ```
 */
export function numeric(rule: NumericRule): (text: string) => number {
  return (text) => parseNumeric(text, rule);
}

/** The wait of `daemon start --timeout` and `daemon stop --timeout`: 1 ms to 1 hour. */
export const TIMEOUT_RULE: NumericRule = { kind: 'ms', min: 1, max: 3_600_000 };
/** `daemon logs -n`: 0 to 1,000,000 lines. */
export const LINES_RULE: NumericRule = { kind: 'count', min: 0, max: 1_000_000 };
/** How long a gate may stay open before it is overdue (`gate create --timeout`): 1 s to 365 days. */
export const GATE_TIMEOUT_RULE: NumericRule = { kind: 'ms', min: 1_000, max: 365 * 86_400_000 };
