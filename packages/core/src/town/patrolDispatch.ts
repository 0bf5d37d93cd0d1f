import type { Molecule } from '../model/types';
import type { JsonObject } from '../store/Store';
import { surveyRig, type TownSystem } from './actors';
import type { TownContext } from './context';

/* The patrol's `dispatch` step: ready molecules hand their current step to their rig. */

/** The bead that carries a molecule's step `step` of dispatch `epoch`: a deterministic id. */
export function stepBeadId(molecule: Molecule, step: number, epoch: number): string {
  return `${molecule.id}.s${step}.e${epoch}`;
}

/**
 * Hands a molecule's current step to its rig, exactly once: the claim, the step's bead (with a
 * deterministic id) and the sling are one transaction.
 */
export async function slingStep(ctx: TownContext, molecule: Molecule): Promise<string> {
  const step = molecule.steps[molecule.cursor];
  const beadId = stepBeadId(molecule, molecule.cursor, molecule.epoch);
  // The step a gate released carries the gate's result (the CI run, the approval) to its agent.
  const gate = molecule.releasedBy ? await ctx.model.gates.get(molecule.releasedBy) : undefined;
  await ctx.model.beads.create({
    id: beadId,
    title: `${molecule.name}: ${step?.name ?? `step ${molecule.cursor}`}`,
    rig: molecule.rig as string,
    labels: ['molecule-step'],
    metadata: {
      molecule: molecule.id,
      step: molecule.cursor,
      epoch: molecule.epoch,
      ...(gate ? { gate: { id: gate.id, type: gate.type, result: gate.result ?? null } } : {}),
    },
  });
  await ctx.model.polecats.sling(
    beadId,
    molecule.rig as string,
    ctx.polecatNames ? { names: ctx.polecatNames } : {},
  );
  return beadId;
}

/**
 * The `dispatch` step: each ready molecule of an operational rig gets its current step slung to
 * the rig (claim and sling in one transaction), and the rig's Witness is asked to survey now.
 */
export async function dispatchMolecules(ctx: TownContext, system: TownSystem): Promise<JsonObject> {
  const dispatched: string[] = [];
  for (const ready of await ctx.model.molecules.ready()) {
    if (ready.rig === undefined) continue; // nobody to hand it to: the user runs it
    const rig = await ctx.model.rigs.get(ready.rig);
    if (rig?.state !== 'operational') continue; // it waits: the operator wins
    const beadId = await ctx.model.transaction(async (m) => {
      const claimed = await m.molecules.dispatch(ready.id, { by: 'deacon' });
      return slingStep({ ...ctx, model: m }, claimed);
    });
    dispatched.push(ready.id);
    ctx.emit({
      type: 'molecule.dispatched',
      moleculeId: ready.id,
      step: ready.cursor,
      beadId,
      rig: ready.rig,
    });
    surveyRig(system, ready.rig);
  }
  return { dispatched };
}
