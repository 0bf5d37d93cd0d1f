import type { TownContext } from './context';

/**
 * A `start` or `restart` of a polecat's session, handed by the Daemon to the session's one
 * owner: the polecat's actor under its rig's Witness.
 */
export interface SessionRequest {
  /** A restart stops the session on purpose and starts a new one; a start only ensures one. */
  readonly restart: boolean;
  /**
   * For a restart: the epoch of the session to replace, as the Daemon saw it running. A session
   * of another epoch by the time the owner acts was already replaced (say, after a crash): it is
   * kept, so a restart racing a respawn never starts two sessions.
   */
  readonly replaceEpoch: number | undefined;
  /** Settles the request with the epoch of the session now running. */
  resolve(epoch: number | undefined): void;
  /** Settles the request as failed, saying why. */
  reject(error: Error): void;
}

/**
 * The in-process machinery of session ownership, per town: a lock per agent (one of its
 * owner's steps at a time: a polecat actor restarted by its supervisor waits for the step of
 * the actor it replaces) and a mailbox per agent of requests for its owner. Kept beside the
 * actors in a WeakMap, never in a snapshot.
 */
export class SessionOwners {
  /** Per agent: the last step queued (the lock's tail). */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Per agent: when its running step began. */
  private readonly running = new Map<string, number>();
  private readonly mailboxes = new Map<string, SessionRequest[]>();
  private readonly listeners = new Map<string, () => void>();

  constructor(private readonly now: () => number) {}

  /** Runs `step` once no other step on this agent's session is running. */
  exclusive<T>(agent: string, step: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(agent) ?? Promise.resolve();
    const run = previous
      .catch(() => undefined)
      .then(async () => {
        this.running.set(agent, this.now());
        try {
          return await step();
        } finally {
          this.running.delete(agent);
        }
      });
    this.tails.set(agent, run);
    const release = () => {
      if (this.tails.get(agent) === run) this.tails.delete(agent);
    };
    run.then(release, release);
    return run;
  }

  /** Since when a step on this agent's session has been running (undefined: none is). */
  busySince(agent: string): number | undefined {
    return this.running.get(agent);
  }

  /** Queues a request for the agent's owner and wakes the owner if it is waiting. */
  post(agent: string, request: SessionRequest): void {
    const box = this.mailboxes.get(agent);
    if (box) box.push(request);
    else this.mailboxes.set(agent, [request]);
    this.listeners.get(agent)?.();
  }

  /** Takes every queued request of the agent. */
  take(agent: string): SessionRequest[] {
    const box = this.mailboxes.get(agent) ?? [];
    this.mailboxes.delete(agent);
    return box;
  }

  /** Puts requests back at the head of the queue (their owner stopped before acting). */
  requeue(agent: string, requests: readonly SessionRequest[]): void {
    if (requests.length === 0) return;
    this.mailboxes.set(agent, [...requests, ...(this.mailboxes.get(agent) ?? [])]);
    this.listeners.get(agent)?.();
  }

  /** Removes a request nobody took (its deadline passed). */
  withdraw(agent: string, request: SessionRequest): void {
    const box = this.mailboxes.get(agent);
    if (!box) return;
    const rest = box.filter((r) => r !== request);
    if (rest.length > 0) this.mailboxes.set(agent, rest);
    else this.mailboxes.delete(agent);
  }

  /** Registers the owner's wake-up; returns its removal (only removes its own). */
  listen(agent: string, wake: () => void): () => void {
    this.listeners.set(agent, wake);
    return () => {
      if (this.listeners.get(agent) === wake) this.listeners.delete(agent);
    };
  }
}

const owners = new WeakMap<TownContext, SessionOwners>();

/** The town's session owners. */
export function sessionOwners(ctx: TownContext): SessionOwners {
  let found = owners.get(ctx);
  if (!found) {
    found = new SessionOwners(() => ctx.clock.now());
    owners.set(ctx, found);
  }
  return found;
}
