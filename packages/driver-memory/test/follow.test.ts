/**
 * Following a memory session's output by place (issue 14: `agent logs -f` misses no line and
 * repeats none, however alike the lines are).
 */
import { DriverError } from '@belfry/core/driver';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { createMemoryDriver, type MemorySession } from '../src';

function driven(maxOutputLines = 1_000) {
  let session: MemorySession | undefined;
  const driver = createMemoryDriver({
    clock: new SimulatedClock(),
    programs: { held: (s) => void (session = s) },
    maxOutputLines,
  });
  const write = (...lines: string[]) => {
    for (const line of lines) session?.write(line);
  };
  return { driver, write };
}

describe('MemoryDriver.follow', () => {
  it('gives exactly the lines after a place, identical ones included', async () => {
    const { driver, write } = driven();
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    write('same', 'same');
    let at = await driver.follow('s');
    expect(at).toEqual({ lines: ['same', 'same'], end: 2, continuous: false });
    const got: string[] = [];
    for (const burst of [3, 0, 1, 5]) {
      write(...Array.from({ length: burst }, () => 'same'));
      at = await driver.follow('s', { after: at.end, last: at.lines.at(-1) ?? 'same' });
      expect(at.continuous).toBe(true);
      got.push(...at.lines);
    }
    expect(got).toHaveLength(9);
    expect(at.end).toBe(11);
  });

  it('says when the place cannot be counted on: lines dropped, a different line there, too many since', async () => {
    const { driver, write } = driven(5);
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    write('a', 'b', 'c');
    const at = await driver.follow('s');
    write('d', 'e', 'f', 'g');
    // 'a' and 'b' were dropped (5 kept): the place 3 still holds, so it follows on.
    expect(await driver.follow('s', { after: at.end, last: 'c' })).toEqual({
      lines: ['d', 'e', 'f', 'g'],
      end: 7,
      continuous: true,
    });
    expect(await driver.follow('s', { after: 1, last: 'a' })).toMatchObject({ continuous: false });
    expect(await driver.follow('s', { after: 7, last: 'not g' })).toMatchObject({
      continuous: false,
      lines: ['c', 'd', 'e', 'f', 'g'],
    });
    expect(await driver.follow('s', { after: 4, lines: 2 })).toEqual({
      lines: ['f', 'g'],
      end: 7,
      continuous: false,
    });
    expect(await driver.follow('s', { after: 9 })).toMatchObject({ continuous: false });
  });

  it('refuses options out of range and a missing session', async () => {
    const { driver } = driven();
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    for (const bad of [{ after: -1 }, { after: 1.5 }, { lines: 0 }, { last: 3 }])
      await expect(driver.follow('s', bad as never)).rejects.toMatchObject({
        code: 'INVALID_SPEC',
      });
    await expect(driver.follow('nobody')).rejects.toBeInstanceOf(DriverError);
  });
});
