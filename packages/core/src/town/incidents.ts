/**
 * The town's incidents, in one table: each kind of open report the town files, how its key is
 * built from what it is about, and how a key is read back. Every filing, lookup and resolution
 * of an incident builds its key here, so a key is never spelled twice.
 */

/** What each incident kind is about (the parts of its key). */
export interface IncidentSubjects {
  /** A gate's evaluator escalated it. */
  'gate-escalated': { gateId: string };
  /** An open gate is past its timeout with no result. */
  'gate-timeout': { gateId: string };
  /** A gate evaluator failed (`code`: TIMEOUT, EVALUATOR_FAILED, NO_EVALUATOR). */
  'gate-evaluator': { type: string; code: string };
  /** A rig's Witness stopped answering and was restarted. */
  'witness-unresponsive': { rig: string };
  /** A situation Boot was called for (`situation`: its kind). */
  boot: { situation: string; rig: string };
  /** A bead reached its respawn limit and was taken off its hook as blocked. */
  'respawn-limit': { beadId: string };
  /** A convoy landed (news). */
  'convoy-landed': { convoyId: string };
  /** A convoy made no progress for `convoyStallMs`. */
  'convoy-stalled': { convoyId: string };
  /** A user poller failed (per rig for a per-rig poller). */
  poller: { name: string; rig?: string };
  /** The Deacon is in a crash loop. */
  'deacon-crash-loop': Record<never, never>;
  /** A patrol ran past its budget and the Daemon restarted the Deacon. */
  'patrol-overdue': Record<never, never>;
  /** The Mayor sink failed or did not answer (filed, never sent to the sink). */
  'mayor-sink': Record<never, never>;
  /** A warrant was executed (news: filed and resolved at once). */
  'warrant-executed': { warrantId: string };
  /** Boot escalated a warrant, which stays pending. */
  'warrant-held': { warrantId: string };
  /** A warrant could not be executed; it stays pending. */
  'warrant-failed': { warrantId: string };
  /**
   * What ran sessions (a tmux server: `host` as the driver names it) is gone, and its sessions
   * with it: one incident however many sessions it took.
   */
  'session-host-lost': { host: string };
}

/** An incident kind. */
export type IncidentKind = keyof IncidentSubjects;

/** An incident: its kind and what it is about. */
export type Incident = {
  [K in IncidentKind]: { kind: K } & IncidentSubjects[K];
}[IncidentKind];

/** The key of an incident: what makes two reports the same incident. */
export function incidentKey(incident: Incident): string {
  switch (incident.kind) {
    case 'gate-escalated':
      return `gate:${incident.gateId}:escalated`;
    case 'gate-timeout':
      return `gate-timeout:${incident.gateId}`;
    case 'gate-evaluator':
      return `gate-evaluator:${incident.type}:${incident.code}`;
    case 'witness-unresponsive':
      return `witness-unresponsive:${incident.rig}`;
    case 'boot':
      return `boot:${incident.situation}:${incident.rig}`;
    case 'respawn-limit':
      return `respawn-limit:${incident.beadId}`;
    case 'convoy-landed':
      return `convoy-landed:${incident.convoyId}`;
    case 'convoy-stalled':
      return `convoy-stalled:${incident.convoyId}`;
    case 'poller':
      return `poller:${incident.name}${incident.rig === undefined ? '' : `:${incident.rig}`}`;
    case 'deacon-crash-loop':
    case 'patrol-overdue':
    case 'mayor-sink':
      return incident.kind;
    case 'warrant-executed':
    case 'warrant-held':
    case 'warrant-failed':
      return `${incident.kind}:${incident.warrantId}`;
    case 'session-host-lost':
      return `session-host-lost:${incident.host}`;
  }
}

/**
 * Reads an incident back from its key, or undefined for a key the town does not file (a user's
 * own report). Ids and names in keys hold no `:`, but a gate type may (`gh:run`).
 */
export function parseIncident(key: string): Incident | undefined {
  const [head, ...rest] = key.split(':');
  const one = rest.length === 1 ? rest[0] : undefined;
  switch (head) {
    case 'gate':
      return rest.length === 2 && rest[1] === 'escalated' && rest[0]
        ? { kind: 'gate-escalated', gateId: rest[0] }
        : undefined;
    case 'gate-timeout':
      return one ? { kind: 'gate-timeout', gateId: one } : undefined;
    case 'gate-evaluator': {
      // A gate type may hold ':' (`gh:run`); the code, last, never does.
      const code = rest.at(-1);
      const type = rest.slice(0, -1).join(':');
      return rest.length >= 2 && code && type ? { kind: 'gate-evaluator', type, code } : undefined;
    }
    case 'witness-unresponsive':
      return one ? { kind: 'witness-unresponsive', rig: one } : undefined;
    case 'boot':
      return rest.length === 2 && rest[0] && rest[1]
        ? { kind: 'boot', situation: rest[0], rig: rest[1] }
        : undefined;
    case 'respawn-limit':
      return one ? { kind: 'respawn-limit', beadId: one } : undefined;
    case 'convoy-landed':
      return one ? { kind: 'convoy-landed', convoyId: one } : undefined;
    case 'convoy-stalled':
      return one ? { kind: 'convoy-stalled', convoyId: one } : undefined;
    case 'poller':
      if (rest.length === 1 && rest[0]) return { kind: 'poller', name: rest[0] };
      return rest.length === 2 && rest[0] && rest[1]
        ? { kind: 'poller', name: rest[0], rig: rest[1] }
        : undefined;
    case 'deacon-crash-loop':
    case 'patrol-overdue':
    case 'mayor-sink':
      return rest.length === 0 ? { kind: head } : undefined;
    case 'warrant-executed':
    case 'warrant-held':
    case 'warrant-failed':
      return one ? { kind: head, warrantId: one } : undefined;
    case 'session-host-lost': {
      // A host's name may hold ':' (`tmux:<pid>:<start>`).
      const host = rest.join(':');
      return host ? { kind: 'session-host-lost', host } : undefined;
    }
    default:
      return undefined;
  }
}
