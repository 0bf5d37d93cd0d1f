import type { ExitReason, RestartType } from '@belfry/core';
import { describe, expect, it } from 'vitest';
import { harness, machine } from './helpers';

const trigger: Record<Exclude<ExitReason, 'killed'>, string> = {
  normal: 'EXIT_NORMAL',
  shutdown: 'EXIT_SHUTDOWN',
  error: 'CRASH',
};

// OTP's table: permanent always restarts; transient only after an abnormal exit; temporary never.
const cases: Array<[RestartType, Exclude<ExitReason, 'killed'>, boolean]> = [
  ['permanent', 'normal', true],
  ['permanent', 'shutdown', true],
  ['permanent', 'error', true],
  ['transient', 'normal', false],
  ['transient', 'shutdown', false],
  ['transient', 'error', true],
  ['temporary', 'normal', false],
  ['temporary', 'shutdown', false],
  ['temporary', 'error', false],
];

describe('restart types judged by exit reason', () => {
  it.each(cases)('%s child exiting with %s: restarted = %s', async (restart, reason, restarted) => {
    const h = harness({ children: [machine('w', {}, { restart }), machine('other')] });
    const first = h.ref('w');
    first.send({ type: trigger[reason] });
    await h.clock.advance(0);
    const exited = h.rec.ofType('child.exited');
    expect(exited.map((e) => [e.childId, e.reason, e.initiatedBy, e.willRestart])).toEqual([
      ['w', reason, 'child', restarted],
    ]);
    const info = h.sup.whichChildren().find((c) => c.id === 'w');
    if (restarted) {
      expect(info?.state).toBe('running');
      expect(info?.ref).not.toBe(first);
      expect(info?.restarts).toBe(1);
      expect(info?.lastExit?.reason).toBe(reason);
    } else if (restart === 'temporary') {
      expect(info).toBeUndefined(); // a temporary child's spec goes when it ends
    } else {
      expect(info?.state).toBe('stopped');
      expect(info?.ref).toBeUndefined();
      expect(info?.lastExit?.reason).toBe(reason);
    }
    expect(h.state('other')).toBe('running');
    expect(h.rec.ofType('child.restarting')).toHaveLength(restarted ? 1 : 0);
  });

  it('records a shutdown exit only for output made by shutdownExit()', async () => {
    const h = harness({
      children: [
        machine('n', {}, { restart: 'transient' }),
        machine('s', {}, { restart: 'transient' }),
      ],
    });
    h.ref('n').send({ type: 'EXIT_NORMAL' });
    h.ref('s').send({ type: 'EXIT_SHUTDOWN' });
    expect(h.sup.whichChildren().map((c) => c.lastExit?.reason)).toEqual(['normal', 'shutdown']);
  });
});
