import { describe, expect, it } from 'vitest';
import { type Incident, incidentKey, parseIncident } from '../src/town/incidents';

/** One incident of every kind the town files, with the key stores hold for it today. */
const EVERY_KIND: ReadonlyArray<readonly [Incident, string]> = [
  [{ kind: 'gate-escalated', gateId: 'gt-1' }, 'gate:gt-1:escalated'],
  [{ kind: 'gate-timeout', gateId: 'gt-1' }, 'gate-timeout:gt-1'],
  [{ kind: 'gate-evaluator', type: 'timer', code: 'TIMEOUT' }, 'gate-evaluator:timer:TIMEOUT'],
  [
    { kind: 'gate-evaluator', type: 'gh:run', code: 'EVALUATOR_FAILED' },
    'gate-evaluator:gh:run:EVALUATOR_FAILED',
  ],
  [{ kind: 'witness-unresponsive', rig: 'api' }, 'witness-unresponsive:api'],
  [
    { kind: 'boot', situation: 'hooks-without-sessions', rig: 'api' },
    'boot:hooks-without-sessions:api',
  ],
  [{ kind: 'respawn-limit', beadId: 'bd-7' }, 'respawn-limit:bd-7'],
  [{ kind: 'convoy-landed', convoyId: 'cv-1' }, 'convoy-landed:cv-1'],
  [{ kind: 'convoy-stalled', convoyId: 'cv-1' }, 'convoy-stalled:cv-1'],
  [{ kind: 'poller', name: 'inbox' }, 'poller:inbox'],
  [{ kind: 'poller', name: 'inbox', rig: 'web' }, 'poller:inbox:web'],
  [{ kind: 'deacon-crash-loop' }, 'deacon-crash-loop'],
  [{ kind: 'patrol-overdue' }, 'patrol-overdue'],
  [{ kind: 'mayor-sink' }, 'mayor-sink'],
  [{ kind: 'warrant-executed', warrantId: 'wr-1' }, 'warrant-executed:wr-1'],
  [{ kind: 'warrant-held', warrantId: 'wr-1' }, 'warrant-held:wr-1'],
  [{ kind: 'warrant-failed', warrantId: 'wr-1' }, 'warrant-failed:wr-1'],
];

describe('incident keys', () => {
  it.each(EVERY_KIND)('%o is filed under %s and read back from it', (incident, key) => {
    expect(incidentKey(incident)).toBe(key);
    expect(parseIncident(key)).toEqual(incident);
  });

  it('the table above covers every kind', () => {
    const kinds = new Set(EVERY_KIND.map(([i]) => i.kind));
    // IncidentSubjects' keys, spelled out: a new kind must be added to the table above.
    expect([...kinds].sort()).toEqual(
      [
        'boot',
        'convoy-landed',
        'convoy-stalled',
        'deacon-crash-loop',
        'gate-escalated',
        'gate-evaluator',
        'gate-timeout',
        'mayor-sink',
        'patrol-overdue',
        'poller',
        'respawn-limit',
        'warrant-executed',
        'warrant-failed',
        'warrant-held',
        'witness-unresponsive',
      ].sort(),
    );
  });

  it.each([
    'my-own-report',
    'gate:gt-1',
    'gate:gt-1:closed',
    'gate-timeout:',
    'gate-evaluator:TIMEOUT',
    'boot:api',
    'poller:a:b:c',
    'deacon-crash-loop:again',
    'warrant-held:',
    '',
  ])('a key the town does not file (%j) reads back as undefined', (key) => {
    expect(parseIncident(key)).toBeUndefined();
  });
});
