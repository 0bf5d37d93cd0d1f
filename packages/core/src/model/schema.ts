import type { IndexKey, StoreSchema } from '../store/Store';
import type {
  Bead,
  Convoy,
  Gate,
  Hook,
  LifecycleRequest,
  Molecule,
  Polecat,
  Report,
  Rig,
  Warrant,
} from './types';

const none: readonly IndexKey[] = [];
const one = (...key: IndexKey): readonly IndexKey[] => [key];

/** A number larger than any clock time, for "not scheduled" in a sorted index. */
export const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * The town's collections and the indexes its queries use. Every query a patrol makes is a range
 * over one of these, so its cost grows with what it returns, not with what is stored.
 */
export const townSchema: StoreSchema = {
  name: 'belfry.town',
  // 2: convoys track molecules (the `finished` index counts them; `byMolecule`).
  // 3: lifecycle requests by target, so requests on one target run in the order they were made.
  version: 3,
  collections: {
    rigs: {
      indexes: {
        byState: (r: Rig) => one(r.state, r.id),
        byName: (r: Rig) => one(r.id),
      },
    },
    beads: {
      indexes: {
        byStatus: (b: Bead) => one(b.status, b.createdAt),
        byRig: (b: Bead) => (b.rig === undefined ? none : one(b.rig, b.status)),
        // A finished molecule's digest, by molecule name then age: what retention prunes.
        digests: (b: Bead) =>
          b.labels.includes('digest') && typeof b.metadata.name === 'string'
            ? one(b.metadata.name, b.createdAt)
            : none,
      },
    },
    hooks: {
      indexes: {
        byRig: (h: Hook) => one(h.rig, h.id),
        byBead: (h: Hook) => one(h.beadId),
      },
    },
    gates: {
      indexes: {
        // Open gates by when they are due; the patrol reads the range up to now.
        openDue: (g: Gate) => (g.status === 'open' && g.dueAt !== undefined ? one(g.dueAt) : none),
        openByType: (g: Gate) => (g.status === 'open' ? one(g.type, g.dueAt ?? NEVER) : none),
        openTimeout: (g: Gate) =>
          g.status === 'open' && g.timeoutAt !== undefined ? one(g.timeoutAt) : none,
        byStatus: (g: Gate) => one(g.status, g.createdAt),
      },
    },
    molecules: {
      indexes: {
        byStatus: (m: Molecule) => one(m.status, m.updatedAt),
        byName: (m: Molecule) => one(m.name, m.status, m.createdAt),
        byGate: (m: Molecule) => (m.waitingOn === undefined ? none : one(m.waitingOn)),
      },
    },
    convoys: {
      indexes: {
        open: (c: Convoy) => (c.status === 'open' ? one(c.createdAt) : none),
        // Open convoys whose tracked beads are all terminal and whose tracked molecules have all
        // finished: the ones a patrol closes.
        finished: (c: Convoy) =>
          c.status === 'open' &&
          c.openCount === 0 &&
          (c.openMolecules ?? 0) === 0 &&
          c.beadIds.length + (c.moleculeIds?.length ?? 0) > 0
            ? one(c.createdAt)
            : none,
        openByProgress: (c: Convoy) => (c.status === 'open' ? one(c.lastProgressAt) : none),
        byBead: (c: Convoy) => c.beadIds.map((id) => [id] as IndexKey),
        byMolecule: (c: Convoy) => (c.moleculeIds ?? []).map((id) => [id] as IndexKey),
      },
    },
    warrants: {
      indexes: {
        pending: (w: Warrant) => (w.status === 'pending' ? one(w.filedAt) : none),
        pendingByTarget: (w: Warrant) => (w.status === 'pending' ? one(w.target) : none),
      },
    },
    reports: {
      indexes: {
        openByKey: (r: Report) => (r.status === 'open' ? one(r.incidentKey) : none),
        open: (r: Report) => (r.status === 'open' ? one(r.lastAt) : none),
      },
    },
    lifecycle: {
      indexes: {
        requested: (r: LifecycleRequest) => (r.status === 'requested' ? one(r.seq) : none),
        requestedByAction: (r: LifecycleRequest) =>
          r.status === 'requested' ? one(r.action, r.seq) : none,
        claimed: (r: LifecycleRequest) => (r.status === 'claimed' ? one(r.seq) : none),
        // The unfinished requests of each target, in order: a later one waits for an earlier one.
        unfinishedByTarget: (r: LifecycleRequest) =>
          r.status === 'requested' || r.status === 'claimed' ? one(r.target, r.seq) : none,
      },
    },
    respawns: { indexes: {} },
    polecats: {
      indexes: {
        byRig: (p: Polecat) => one(p.rig, p.name),
      },
    },
  },
};
