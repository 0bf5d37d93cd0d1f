import { humanGate } from '@belfry/gate-human';
import { runGateConformance } from '@belfry/testing';

runGateConformance(() => humanGate(), {
  name: 'humanGate conformance',
  validSpecs: [{}, { prompt: 'ship 1.4?', approvers: ['ada', 'grace'], deadlineMs: 3_600_000 }],
  invalidSpecs: [
    { prompt: '' },
    { approvers: [] },
    { approvers: ['ada', ''] },
    { approvers: 'ada' },
    { deadlineMs: 0 },
    { deadlineMs: 1.5 },
    { prompt: 'ship?', auto: true },
  ],
  staysOpen: { spec: { prompt: 'ship?', deadlineMs: 60_000 }, ageMs: 1_000 },
  damagedSpec: { deadlineMs: 'soon' },
});
