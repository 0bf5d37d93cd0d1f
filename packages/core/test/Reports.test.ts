import { describe, expect, it } from 'vitest';
import { expectInvalid, generatedId, ids, makeTown, T0 } from './modelHelpers';

const TIMEOUT = {
  incidentKey: 'gate-timeout:gt-1',
  severity: 'medium' as const,
  title: 'gate gt-1 overdue',
  source: 'deacon',
};

describe('Reports', () => {
  it('opens an incident on the first report', async () => {
    const { model, clock } = makeTown();
    clock.advanceSync(10);
    const { report, created } = await model.reports.file({ ...TIMEOUT, details: { gate: 'gt-1' } });
    expect(created).toBe(true);
    expect(report.id).toMatch(generatedId('rp'));
    expect(report).toStrictEqual({
      id: report.id,
      ...TIMEOUT,
      details: { gate: 'gt-1' },
      status: 'open',
      firstAt: T0 + 10,
      lastAt: T0 + 10,
      count: 1,
    });
    expect(await model.reports.get(report.id)).toEqual(report);
    expect(await model.reports.byIncident(TIMEOUT.incidentKey)).toEqual(report);
  });

  it('counts repeats of an open incident on one report, with the latest title', async () => {
    const { model, clock } = makeTown();
    const first = await model.reports.file(TIMEOUT);
    clock.advanceSync(60_000);
    const second = await model.reports.file({ ...TIMEOUT, title: 'gate gt-1 overdue 1h' });
    expect(second.created).toBe(false);
    expect(second.report).toStrictEqual({
      ...first.report,
      title: 'gate gt-1 overdue 1h',
      lastAt: T0 + 60_000,
      count: 2,
    });
    expect(await model.reports.open()).toEqual([second.report]);
  });

  it('only raises the severity of an open incident, never lowers it', async () => {
    const { model } = makeTown();
    const severities = ['low', 'high', 'info', 'medium', 'critical', 'low'] as const;
    const seen: string[] = [];
    for (const severity of severities) {
      seen.push((await model.reports.file({ ...TIMEOUT, severity })).report.severity);
    }
    expect(seen).toEqual(['low', 'high', 'high', 'high', 'critical', 'critical']);
  });

  it('keeps incidents with different keys apart, least recently reported first', async () => {
    const { model, clock } = makeTown();
    const a = await model.reports.file(TIMEOUT);
    clock.advanceSync(10);
    const b = await model.reports.file({ ...TIMEOUT, incidentKey: 'stuck:api/toast' });
    clock.advanceSync(10);
    expect([a.created, b.created]).toEqual([true, true]);
    expect(ids(await model.reports.open())).toEqual([a.report.id, b.report.id]);
    await model.reports.file(TIMEOUT);
    expect(ids(await model.reports.open())).toEqual([b.report.id, a.report.id]);
    expect(ids(await model.reports.open({ limit: 1 }))).toEqual([b.report.id]);
  });

  it('after resolve, the next report of the key is a new incident', async () => {
    const { model, clock } = makeTown();
    const first = await model.reports.file({ ...TIMEOUT, severity: 'critical' });
    await model.reports.file(TIMEOUT);
    clock.advanceSync(10);
    const resolved = await model.reports.resolve(TIMEOUT.incidentKey);
    expect(resolved).toStrictEqual({
      ...first.report,
      count: 2,
      status: 'resolved',
      resolvedAt: T0 + 10,
    });
    expect(await model.reports.byIncident(TIMEOUT.incidentKey)).toBeUndefined();
    expect(await model.reports.open()).toEqual([]);
    expect(await model.reports.resolve(TIMEOUT.incidentKey)).toBeUndefined();

    clock.advanceSync(10);
    const next = await model.reports.file({ ...TIMEOUT, severity: 'low' });
    expect(next.created).toBe(true);
    expect(next.report).toMatchObject({ severity: 'low', count: 1, firstAt: T0 + 20 });
    expect(next.report.id).not.toBe(first.report.id);
    expect(await model.reports.get(first.report.id)).toEqual(resolved);
  });

  it('refuses bad fields with a ConfigError at the field', async () => {
    const town = makeTown();
    const file = (input: unknown) => () => town.model.reports.file(input as never);
    await expectInvalid(town, file({ ...TIMEOUT, severity: 'urgent' }), 'report.severity', {
      message: "must be one of 'info', 'low', 'medium', 'high', 'critical'",
    });
    await expectInvalid(town, file({ ...TIMEOUT, incidentKey: '' }), 'report.incidentKey');
    await expectInvalid(town, file({ ...TIMEOUT, title: ' ' }), 'report.title');
    await expectInvalid(town, file({ ...TIMEOUT, source: 'the deacon' }), 'report.source');
  });
});

describe('repeated reports', () => {
  it('keep the details given earlier when a repeat brings none', async () => {
    const { model } = makeTown();
    const input = { incidentKey: 'k', severity: 'low' as const, title: 'first', source: 'deacon' };
    await model.reports.file({ ...input, details: { gate: 'gt-1' } });
    const { report } = await model.reports.file({ ...input, title: 'again' });
    expect(report).toMatchObject({ title: 'again', details: { gate: 'gt-1' }, count: 2 });
    const { report: third } = await model.reports.file({ ...input, details: { gate: 'gt-2' } });
    expect(third.details).toEqual({ gate: 'gt-2' });
  });
});
