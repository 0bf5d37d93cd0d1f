import type { Clock } from '../Clock';
import type { SessionDriver, SessionStatus } from '../driver/SessionDriver';

/**
 * One reading of the driver's sessions, shared by the whole town: one `driver.list()` per
 * interval, whatever the number of rigs and polecats ("discover, don't track", and cheap on a
 * driver where each call is a process). A session the town just acted on (started, stopped) is
 * `forget`-ten: its next status comes from `driver.status(name)`, so one spawn never costs a
 * reading of every session.
 */
export class SessionSurvey {
  private reading: Promise<Map<string, SessionStatus>> | undefined;
  /** The reading's sessions grouped by their `rig` label, built on first use. */
  private byRig:
    | { of: Promise<Map<string, SessionStatus>>; rigs: Map<string, SessionStatus[]> }
    | undefined;
  private readAt = Number.NEGATIVE_INFINITY;
  /** Sessions changed since the reading began, each with the token of its latest change. */
  private readonly stale = new Map<string, number>();
  private changes = 0;

  constructor(
    private readonly driver: SessionDriver,
    private readonly clock: Clock,
    private readonly maxAgeMs: number,
  ) {}

  /**
   * The sessions labelled with this rig, from the current reading (at most `maxAgeMs` old; those
   * the town changed since are left out, their state being unknown until asked).
   */
  async sessionsOf(rig: string): Promise<SessionStatus[]> {
    const reading = this.current();
    const sessions = await reading;
    if (this.byRig?.of !== reading) {
      const rigs = new Map<string, SessionStatus[]>();
      for (const s of sessions.values()) {
        const label = s.labels?.rig;
        if (label === undefined) continue;
        const list = rigs.get(label);
        if (list) list.push(s);
        else rigs.set(label, [s]);
      }
      this.byRig = { of: reading, rigs };
    }
    return (this.byRig.rigs.get(rig) ?? []).filter((s) => !this.stale.has(s.name));
  }

  /** The session's status from a reading at most `maxAgeMs` old (or fresh, if forgotten). */
  async status(name: string): Promise<SessionStatus> {
    const reading = this.current();
    const sessions = await reading;
    const token = this.stale.get(name);
    if (token === undefined) return sessions.get(name) ?? { name, state: 'missing' };
    const fresh = await this.driver.status(name);
    // Keep it only if nothing changed the session (or the reading) while we asked.
    if (this.reading === reading && this.stale.get(name) === token) {
      sessions.set(name, fresh);
      this.stale.delete(name);
      this.byRig = undefined;
    }
    return fresh;
  }

  private current(): Promise<Map<string, SessionStatus>> {
    const now = this.clock.now();
    if (!this.reading || now - this.readAt >= this.maxAgeMs) {
      this.readAt = now;
      this.stale.clear();
      const reading = this.driver.list().then((all) => new Map(all.map((s) => [s.name, s])));
      this.reading = reading;
      // A failed reading is not kept: the next call reads again.
      reading.catch(() => {
        if (this.reading === reading) this.reading = undefined;
      });
    }
    return this.reading;
  }

  /** The town changed this session: its next status is asked of the driver. */
  forget(name: string): void {
    this.stale.set(name, ++this.changes);
  }

  /** Forgets the whole reading, so the next call reads every session again. */
  invalidate(): void {
    this.reading = undefined;
    this.stale.clear();
  }
}
