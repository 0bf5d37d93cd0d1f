import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_FILE, EXIT } from '@belfry/cli';
import { describe, expect, it } from 'vitest';
import { LINES_RULE, parseNumeric, TIMEOUT_RULE } from '../src/numericOption';
import { runMain } from './folder';

function town(): string {
  const dir = mkdtempSync(join(tmpdir(), 'belfry-num-'));
  writeFileSync(
    join(dir, CONFIG_FILE),
    'driver:\n  kind: memory\nrigs: [main]\nagent:\n  command: ["agent"]\n',
  );
  return dir;
}

const belfry = (dir: string, ...argv: string[]) => runMain(dir, argv);

describe('numeric options: one parser, decimal integers in a stated range', () => {
  it('parses decimal integers, with a unit for times', () => {
    expect(parseNumeric('15000', TIMEOUT_RULE)).toBe(15_000);
    expect(parseNumeric('15s', TIMEOUT_RULE)).toBe(15_000);
    expect(parseNumeric('250ms', TIMEOUT_RULE)).toBe(250);
    expect(parseNumeric('2m', TIMEOUT_RULE)).toBe(120_000);
    expect(parseNumeric('0', LINES_RULE)).toBe(0);
    expect(parseNumeric('16', LINES_RULE)).toBe(16);
  });

  it.each([
    'abc',
    '-5',
    '0',
    '',
    ' 5',
    '5 ',
    '0x10',
    '1e3',
    '1.5',
    '+5',
    '010',
    '5h',
    '2h',
    '61m',
    '99999999999999999999',
  ])('--timeout %j is refused', (text) => {
    expect(() => parseNumeric(text, TIMEOUT_RULE)).toThrow(
      /allowed: a whole number of milliseconds/,
    );
  });

  it.each(['0x10', '-1', '', '1e2', '1.0', '5s', '1000001'])('-n %j is refused', (text) => {
    expect(() => parseNumeric(text, LINES_RULE)).toThrow(/allowed: a whole number from 0/);
  });

  it.each([
    ['daemon', 'start', '--timeout', 'abc'],
    ['daemon', 'start', '--timeout', '-5'],
    ['daemon', 'start', '--timeout', '0'],
    ['daemon', 'start', '--timeout', ''],
    ['daemon', 'stop', '--timeout', '1.5'],
    ['daemon', 'logs', '-n', '0x10'],
    ['daemon', 'logs', '--lines', '-3'],
  ])(
    'belfry %s %s %s %j: usage error (2) naming the option, the value and what is allowed',
    async (...argv) => {
      const dir = town();
      const r = await belfry(dir, ...argv);
      expect(r.code).toBe(EXIT.USAGE);
      const option = argv[2] as string;
      expect(r.err).toContain(option === '-n' ? '-n, --lines' : option);
      expect(r.err).toContain(JSON.stringify(argv[3]));
      expect(r.err).toMatch(/allowed: a whole number/);
      expect(r.out).toBe('');
    },
  );

  it('daemon logs -n 0 prints nothing and -n 2 the last two lines', async () => {
    const dir = town();
    await belfry(dir, 'init', '--force');
    writeFileSync(
      join(dir, CONFIG_FILE),
      'driver:\n  kind: memory\nagent:\n  command: ["agent"]\n',
    );
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, '.belfry'), { recursive: true });
    writeFileSync(join(dir, '.belfry', 'daemon.log'), 'one\ntwo\nthree\n');
    expect(await belfry(dir, 'daemon', 'logs', '-n', '0')).toMatchObject({ code: 0, out: '' });
    expect(await belfry(dir, 'daemon', 'logs', '-n', '2')).toMatchObject({
      code: 0,
      out: 'two\nthree\n',
    });
  });
});
