/**
 * Following a memory session's output by cursor (issue 14: `agent logs -f` misses no line and
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
    programs: {
      held: (s) => {
        session = s;
      },
    },
    maxOutputLines,
  });
  const write = (...lines: string[]) => {
    for (const line of lines) session?.write(line);
  };
  return { driver, write };
}

describe('MemoryDriver.follow', () => {
  it('gives exactly the lines after a cursor, identical ones included', async () => {
    const { driver, write } = driven();
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    write('same', 'same');
    let at = await driver.follow('s');
    expect(at).toMatchObject({ lines: ['same', 'same'], continuous: false });
    const got: string[] = [];
    for (const burst of [3, 0, 1, 5]) {
      write(...Array.from({ length: burst }, () => 'same'));
      at = await driver.follow('s', { after: at.end });
      expect(at.continuous).toBe(true);
      got.push(...at.lines);
    }
    expect(got).toHaveLength(9);
  });

  it('says when the cursor cannot be counted on: lines dropped, too many since, another run', async () => {
    const { driver, write } = driven(5);
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    write('a', 'b', 'c');
    const first = await driver.follow('s');
    write('d', 'e');
    const second = await driver.follow('s', { after: first.end });
    expect(second).toMatchObject({ lines: ['d', 'e'], continuous: true });
    write('f', 'g', 'h', 'i', 'j', 'k');
    // 'd' and 'e' were dropped (5 kept) before they were followed.
    expect(await driver.follow('s', { after: second.end })).toMatchObject({
      lines: ['g', 'h', 'i', 'j', 'k'],
      continuous: false,
    });
    const now = await driver.follow('s');
    write('l', 'm', 'n');
    expect(await driver.follow('s', { after: now.end, lines: 2 })).toMatchObject({
      lines: ['m', 'n'],
      continuous: false,
    });
    // Another run of the session starts counting again: an old cursor never continues it.
    await driver.stop('s');
    await driver.start({ name: 's', epoch: 2, command: ['held'] });
    write('new');
    expect(await driver.follow('s', { after: now.end })).toMatchObject({
      lines: ['new'],
      continuous: false,
    });
  });

  it('refuses options out of range, a cursor it did not give, and a missing session', async () => {
    const { driver } = driven();
    await driver.start({ name: 's', epoch: 1, command: ['held'] });
    for (const bad of [{ after: '' }, { after: 3 }, { after: 'x.1' }, { lines: 0 }, 'all'])
      await expect(driver.follow('s', bad as never)).rejects.toMatchObject({
        code: 'INVALID_SPEC',
      });
    await expect(driver.follow('nobody')).rejects.toBeInstanceOf(DriverError);
  });
});
