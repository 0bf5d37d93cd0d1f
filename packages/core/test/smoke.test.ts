import { createSupervisor } from '@belfry/core';
import { SimulatedClock } from '@belfry/testing';
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';

describe('smoke', () => {
  it('starts and restarts', async () => {
    const clock = new SimulatedClock();
    const m = createMachine({
      on: {
        CRASH: {
          actions: () => {
            throw new Error('boom');
          },
        },
      },
    });
    const sup = createSupervisor({ clock, children: [{ id: 'a', logic: m }] }).start();
    expect(sup.whichChildren().map((c) => c.state)).toEqual(['running']);
    sup.whichChildren()[0]?.ref?.send({ type: 'CRASH' });
    expect(sup.whichChildren()[0]?.restarts).toBe(1);
    const stopped = sup.stop();
    await clock.advance(5_000);
    await expect(stopped).resolves.toEqual({ reason: 'shutdown' });
    expect(sup.whichChildren()[0]?.lastExit?.reason).toBe('killed');
  });
});
