import { describe, expect, it } from 'vitest';
import { folder } from './folder';

describe('belfry rig dock', () => {
  it('stores a draining dock by default, and an immediate one with --now', async () => {
    const { belfry, model } = folder();
    const drained = (await belfry('rig', 'dock', 'web', '--json')).json() as {
      request: { id: string };
    };
    const now = (await belfry('rig', 'dock', 'api', '--now', '--json')).json() as {
      request: { id: string };
    };
    const pending = await model((m) => m.lifecycle.pending());
    expect(pending.map((r) => [r.id, r.action, r.target, r.args])).toEqual([
      [drained.request.id, 'dock', 'web', {}],
      [now.request.id, 'dock', 'api', { immediate: true }],
    ]);
    // --now belongs to dock only.
    expect((await belfry('rig', 'undock', 'api', '--now')).code).not.toBe(0);
  });
});
