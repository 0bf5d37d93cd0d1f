/**
 * The restart-intensity window: the times of recent restarts, oldest first, in a ring so adding
 * and expiring are O(1) amortised however many restarts a storm brings.
 */
export class RestartWindow {
  private times: number[] = [];
  private head = 0;

  constructor(private readonly withinMs: number) {}

  /**
   * Records a restart at `now` and returns how many restarts fall in the window
   * `[now - withinMs, now]`, this one included: as OTP, a restart exactly `withinMs` before
   * still counts.
   */
  add(now: number): number {
    const times = this.times;
    times.push(now);
    const oldest = now - this.withinMs;
    while (this.head < times.length && (times[this.head] as number) < oldest) this.head++;
    if (this.head > 1024 && this.head * 2 > times.length) {
      this.times = times.slice(this.head);
      this.head = 0;
    }
    return this.times.length - this.head;
  }
}
