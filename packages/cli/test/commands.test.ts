import { describe, expect, it } from 'vitest';
import { folder } from './folder';

describe('operator commands (no daemon: requests wait in the store)', () => {
  it('bead create and sling hang the bead on a polecat; an unknown bead is refused (1)', async () => {
    const { belfry } = folder();
    const bead = (
      await belfry('bead', 'create', 'fix the login bug', '--rig', 'api', '--json')
    ).json() as { id: string; rig: string };
    expect(bead.rig).toBe('api');
    const slung = await belfry('sling', bead.id, 'api', '--json');
    expect(slung.code).toBe(0);
    expect(slung.json()).toMatchObject({
      agent: expect.stringMatching(/^api\//),
      bead: bead.id,
      created: true,
    });
    const unknown = await belfry('sling', 'bd-nope', 'api');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('bd-nope');
  });

  it('rig dock and undock are stored as requests for the daemon', async () => {
    const { belfry, model } = folder();
    const docked = (await belfry('rig', 'dock', 'web', '--json')).json() as {
      request: { id: string };
      daemon: string;
    };
    expect(docked.daemon).toBe('not running');
    const undocked = (await belfry('rig', 'undock', 'web', '--json')).json() as {
      request: { id: string };
    };
    const pending = await model((m) => m.lifecycle.pending());
    expect(pending.map((r) => [r.id, r.action, r.target, r.requestedBy])).toEqual([
      [docked.request.id, 'dock', 'web', 'cli'],
      [undocked.request.id, 'undock', 'web', 'cli'],
    ]);
    expect((await belfry('rig', 'park', 'Not A Rig')).code).toBe(2);
  });

  it('convoy status shows how many beads are open; an unknown convoy is refused', async () => {
    const { belfry, model } = folder();
    const convoy = await model(async (m) => {
      const a = await m.beads.create({ title: 'a', rig: 'api' });
      const b = await m.beads.create({ title: 'b', rig: 'web' });
      await m.beads.setStatus(a.id, 'done');
      return m.convoys.create({ title: 'release 1.4', beadIds: [a.id, b.id] });
    });
    const status = await belfry('convoy', 'status', convoy.id);
    expect(status.out).toContain(`${convoy.id} open: release 1.4; 1 of 2 beads open`);
    expect((await belfry('convoy', 'status', convoy.id, '--json')).json()).toMatchObject({
      id: convoy.id,
      openCount: 1,
    });
    expect((await belfry('convoy', 'status', 'cv-nope')).code).toBe(1);
  });

  it('convoy add tracks more beads and convoy list shows the open convoys; an unknown convoy is refused', async () => {
    const { belfry, model } = folder();
    const [a, b] = await model(async (m) => [
      await m.beads.create({ title: 'a', rig: 'api' }),
      await m.beads.create({ title: 'b', rig: 'web' }),
    ]);
    const convoy = (await belfry('convoy', 'create', 'release 1.5', a.id, '--json')).json() as {
      id: string;
    };
    const added = await belfry('convoy', 'add', convoy.id, b.id);
    expect(added.code).toBe(0);
    expect(added.out).toContain(`${convoy.id} open: release 1.5; 2 of 2 beads open`);
    const list = (await belfry('convoy', 'list', '--json')).json() as Array<{ id: string }>;
    expect(list.map((c) => c.id)).toEqual([convoy.id]);
    expect((await belfry('convoy', 'add', 'cv-nope', a.id)).code).toBe(1);
  });

  it('gate create stores a gate checked by its type; a bad spec, a bad timeout and an unknown type are refused', async () => {
    const { belfry, model } = folder();
    const created = await belfry(
      'gate',
      'create',
      'timer',
      '--spec',
      '{"durationMs": 60000}',
      '--timeout',
      '2h',
      '--json',
    );
    expect(created.code).toBe(0);
    const gate = created.json() as {
      id: string;
      type: string;
      timeoutAt: number;
      createdAt: number;
    };
    expect(gate.type).toBe('timer');
    expect(gate.timeoutAt - gate.createdAt).toBe(7_200_000);
    expect((await model((m) => m.gates.require(gate.id))).status).toBe('open');
    const notJson = await belfry('gate', 'create', 'timer', '--spec', '{durationMs: 1}');
    expect(notJson.code).toBe(2);
    expect(notJson.err).toContain('not JSON');
    const negative = await belfry('gate', 'create', 'timer', '--spec', '{"durationMs": -1}');
    expect(negative.code).toBe(2);
    expect(negative.err).toContain('spec.durationMs');
    expect((await belfry('gate', 'create', 'timer', '--spec', '{}', '--timeout', '2y')).code).toBe(
      2,
    );
    const unknown = await belfry('gate', 'create', 'nosuch', '--spec', '{}');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('registered');
  });

  it('warrant file once per target (a second is already pending), and warrant list shows it', async () => {
    const { belfry, model } = folder();
    const agent = await model(async (m) => {
      const bead = await m.beads.create({ title: 'stuck work', rig: 'api' });
      return (await m.polecats.sling(bead.id, 'api', { names: ['toast'] })).polecat.id;
    });
    expect(agent).toBe('api/toast');
    const first = await belfry('warrant', 'file', 'api/toast', '--reason', 'stuck for an hour');
    expect(first.out).toMatch(/^filed: warrant \S+ against api\/toast \(release open\)/);
    expect((await belfry('warrant', 'file', 'api/toast', '--reason', 'again')).out).toMatch(
      /^already pending/,
    );
    const list = (await belfry('warrant', 'list', '--json')).json() as Array<{
      target: string;
      reason: string;
    }>;
    expect(list).toEqual([
      expect.objectContaining({ target: 'api/toast', reason: 'stuck for an hour' }),
    ]);
    expect((await belfry('warrant', 'file', 'api/toast')).code).toBe(2); // --reason is required
  });

  it('warrant file --release blocked is recorded; a bad release and an unknown agent are refused', async () => {
    const { belfry, model } = folder();
    await model(async (m) => {
      const bead = await m.beads.create({ title: 'stuck work', rig: 'api' });
      await m.polecats.sling(bead.id, 'api', { names: ['toast'] });
    });
    const bad = await belfry('warrant', 'file', 'api/toast', '--reason', 'x', '--release', 'done');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('must be one of open, blocked');
    const ghost = await belfry('warrant', 'file', 'api/ghost', '--reason', 'x');
    expect(ghost.code).toBe(1);
    expect(ghost.err).toContain('unknown agent "api/ghost"; known: api/toast');
    const filed = await belfry(
      'warrant',
      'file',
      'api/toast',
      '--reason',
      'x',
      '--release',
      'blocked',
      '--json',
    );
    expect(filed.json()).toMatchObject({
      target: 'api/toast',
      release: 'blocked',
      status: 'pending',
    });
  });

  it('gate list filters by type and by open, and gate approve refuses a gate that is not human', async () => {
    const { belfry, model } = folder();
    const { timer, human } = await model(async (m) => ({
      timer: await m.gates.create({ type: 'timer', spec: { durationMs: 60_000 } }),
      human: await m.gates.create({ type: 'human', spec: { prompt: 'ship?' } }),
    }));
    const ids = (args: string[]) =>
      belfry('gate', 'list', ...args, '--json').then((r) =>
        (r.json() as Array<{ id: string }>).map((g) => g.id),
      );
    expect((await ids([])).sort()).toEqual([timer.id, human.id].sort());
    expect(await ids(['--type', 'human'])).toEqual([human.id]);
    const wrong = await belfry('gate', 'approve', timer.id, '--by', 'ada');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('only human gates');
    expect((await belfry('gate', 'approve', human.id, '--by', 'ada')).code).toBe(0);
    expect(await ids(['--open'])).toEqual([timer.id]);
    const twice = await belfry('gate', 'reject', human.id, '--by', 'grace');
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/closed/);
  });

  it('status before any daemon ran says so (4); daemon logs without a log says so (1)', async () => {
    const { belfry } = folder();
    const status = await belfry('status');
    expect(status.code).toBe(4);
    expect(status.err).toContain('no daemon runs');
    expect((await belfry('daemon', 'logs')).code).toBe(1);
  });
});
