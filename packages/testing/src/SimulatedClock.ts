import type { Clock } from '@belfry/core';

const noop = () => {};

interface Timer {
  id: number;
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * Waits for one turn of the event loop, so promise chains that do no real I/O settle.
 *
 * @example
 * ```ts
 * void somethingAsync();
 * await settle();
 * ```
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A clock that only moves when a test moves it. Timers fire in deadline order (ties in the order
 * they were set) as time is advanced; `advance` lets promise chains settle between timers, so a
 * probe check or a `fromPromise` child resolving "now" is seen before the next timer fires.
 *
 * It is also a valid xstate clock: pass it to `createSupervisor({ clock })` (or
 * `createActor(logic, { clock })`) and the `after` delays of supervised machines follow it too.
 *
 * @example
 * ```ts
 * const clock = new SimulatedClock();
 * const sup = createSupervisor({ clock, children: [...] }).start();
 * await clock.advance(5_000); // five simulated seconds, no real waiting
 * ```
 */
export class SimulatedClock implements Clock {
  private current: number;
  private heap: Timer[] = [];
  private readonly live = new Map<number, Timer>();
  private nextId = 1;
  private nextSeq = 0;

  /** @param startAt - the initial time in ms. @defaultValue 0 */
  constructor(startAt = 0) {
    if (!Number.isFinite(startAt))
      throw new RangeError(`startAt must be a finite number; got ${startAt}`);
    this.current = startAt;
  }

  /** The simulated time in ms. */
  now(): number {
    return this.current;
  }

  /** Schedules `callback` at `now() + ms` (negative or NaN delays count as 0). */
  setTimeout(callback: () => void, ms: number): number {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : ms === Number.POSITIVE_INFINITY ? ms : 0;
    const timer: Timer = {
      id: this.nextId++,
      at: this.current + delay,
      seq: this.nextSeq++,
      callback,
    };
    this.live.set(timer.id, timer);
    this.push(timer);
    return timer.id;
  }

  /**
   * Cancels a scheduled callback; unknown or fired handles are ignored. The callback is let go
   * at once, and once cancelled entries make up most of the queue it is rebuilt from the live
   * timers, so a test that sets and cancels far-future timers for hours of simulated time (a
   * patrol's interval, say) keeps a queue as large as what is really scheduled.
   */
  clearTimeout(handle: unknown): void {
    if (typeof handle !== 'number') return;
    const timer = this.live.get(handle);
    if (!timer) return;
    this.live.delete(handle);
    timer.callback = noop;
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) {
      // A list sorted by (at, seq) is a valid binary heap.
      this.heap = [...this.live.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
    }
  }

  /** How many callbacks are scheduled and not yet fired or cancelled. */
  pendingTimers(): number {
    return this.live.size;
  }

  /** When the next callback is due, or undefined when none is scheduled. */
  nextTimerAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
  }

  /**
   * Moves time forward by `ms`, firing every callback due on the way, in order, and letting
   * promise chains settle before and after each one.
   *
   * @param ms - how far to move, >= 0.
   */
  async advance(ms: number): Promise<void> {
    const target = this.targetOf(ms);
    await settle();
    for (;;) {
      const timer = this.popDue(target);
      if (!timer) break;
      this.current = timer.at;
      timer.callback();
      await settle();
    }
    this.current = target;
    await settle();
  }

  /**
   * Moves time forward by `ms` and fires due callbacks synchronously, without waiting for
   * promises in between. For purely synchronous code and benchmarks.
   *
   * @param ms - how far to move, >= 0.
   */
  advanceSync(ms: number): void {
    const target = this.targetOf(ms);
    for (;;) {
      const timer = this.popDue(target);
      if (!timer) break;
      this.current = timer.at;
      timer.callback();
    }
    this.current = target;
  }

  /**
   * Advances to each next scheduled callback until none is left (or `limit` callbacks fired),
   * settling promises in between. Useful to run a test to quiescence.
   *
   * @param limit - safety cap on callbacks fired. @defaultValue 10_000
   * @returns how many callbacks fired.
   */
  async runAll(limit = 10_000): Promise<number> {
    let fired = 0;
    await settle();
    for (;;) {
      const at = this.nextTimerAt();
      if (at === undefined) return fired;
      if (fired >= limit) {
        throw new Error(
          `SimulatedClock.runAll: still busy after ${limit} callbacks; is something rescheduling forever?`,
        );
      }
      const timer = this.popDue(at);
      if (!timer) continue;
      this.current = Math.max(this.current, timer.at);
      timer.callback();
      fired++;
      await settle();
    }
  }

  private targetOf(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0)
      throw new RangeError(`advance needs a finite number of ms >= 0; got ${ms}`);
    return this.current + ms;
  }

  private popDue(target: number): Timer | undefined {
    this.dropCancelled();
    const top = this.heap[0];
    if (!top || top.at > target) return undefined;
    this.pop();
    this.live.delete(top.id);
    return top;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && !this.live.has((this.heap[0] as Timer).id)) this.pop();
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i] as Timer, heap[parent] as Timer)) break;
      [heap[i], heap[parent]] = [heap[parent] as Timer, heap[i] as Timer];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Timer;
    if (heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < heap.length && this.less(heap[l] as Timer, heap[smallest] as Timer)) smallest = l;
      if (r < heap.length && this.less(heap[r] as Timer, heap[smallest] as Timer)) smallest = r;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as Timer, heap[i] as Timer];
      i = smallest;
    }
  }
}
