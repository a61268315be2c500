// The daemon's monotonic clock, read as few times as a loop turn allows. Natively a clock read costs
// nanoseconds (the vDSO), but in a Xen PV dom0 — where dxenstored runs in production — the kernel's
// Xen clock source often has no vDSO path and every clock_gettime is a real system call, as is each
// in QEMU-emulated Xen (docs/domains.md counted 4–11 of them per guest READ, against 2 for
// cxenstored; a system call there costs ~50 µs of emulated time, whatever it does). So the loop reads
// the clock once per turn, right after its wait, and work inside the turn that only needs "about now"
// (a request's start, the idle collector's activity stamp) takes that reading, or the latest one
// since, instead of reading it again. Where a read is a system call the daemon switches the clock's
// source to a coarse one the vDSO always answers, and elsewhere to CLOCK_MONOTONIC read through the C
// library binding, which costs half what performance.now() does (chooseTurnClock, src/cli/daemon.ts).

/** A clock in ms on performance.now()'s time base. */
export type ClockSource = () => number;

export class TurnClock {
  /** The latest reading, or NaN between turns (a reading then is no longer "now"). */
  private last = Number.NaN;
  /** Where readings come from (performance.now(), looked up at each read: tests replace it). */
  private source: ClockSource = () => performance.now();

  /** Read the clock (a system call where there is no vDSO); the reading becomes `recent()`. */
  read(): number {
    return (this.last = this.source());
  }

  /**
   * Take readings from `source` (on performance.now()'s time base) from now on. Readings never go
   * back across the switch.
   */
  useSource(source: ClockSource): void {
    const floor = this.source();
    this.source = () => Math.max(floor, source());
    this.last = Number.NaN;
  }

  /**
   * The latest reading of this turn (its start, or a later read()), without reading the clock; reads
   * it outside a turn.
   */
  recent(): number {
    const t = this.last;
    return t === t ? t : this.read(); // NaN !== NaN
  }

  /** A turn starts: read the clock. */
  turnStart(): number {
    return this.read();
  }

  /** The turn is over: until the next, recent() reads the clock again. */
  turnEnd(): void {
    this.last = Number.NaN;
  }
}

/**
 * The process's one turn clock: the event loop (src/transport/loop.ts) marks its turns; the dispatcher
 * and the idle collector take their "now" from it. One per process, not per daemon: turns are
 * synchronous, so two loops in one process (tests) never interleave inside a turn.
 */
export const turnClock = new TurnClock();

/**
 * A precise clock read costing this much more than a coarse one is a system call: natively both are
 * vDSO reads, a few tens of ns apart; a system call costs ~50 µs in a PV dom0 under QEMU TCG. (On
 * hardware a PV dom0's system call costs about a µs: left as it is, its price is small there.)
 */
export const SYSCALL_EXTRA_MS = 0.002;

/**
 * Whether reading the precise clock is a system call, from the cost per read of a few batches of
 * precise and coarse reads (the cheapest batch of each counts: a batch the scheduler interrupted says
 * nothing).
 */
export function clockReadIsSystemCall(preciseMs: readonly number[], coarseMs: readonly number[]): boolean {
  if (preciseMs.length === 0 || coarseMs.length === 0) return false;
  return Math.min(...preciseMs) - Math.min(...coarseMs) > SYSCALL_EXTRA_MS;
}

/** Times `batches` batches of `reads` reads of `clock`: the cost per read of each, in ms. */
export function timeClockReads(clock: ClockSource, batches = 5, reads = 16): number[] {
  const costs: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) clock();
    costs.push((performance.now() - t0) / reads);
  }
  return costs;
}

/**
 * A source on performance.now()'s time base from another clock in ms (`clockMs`: CLOCK_MONOTONIC or
 * CLOCK_MONOTONIC_COARSE through the C library binding): the offset between the two is taken once.
 */
export function onPerformanceTimeBase(clockMs: ClockSource): ClockSource {
  // The offset from the tightest of a few brackets of performance.now() readings around one of
  // `clockMs` (the first calls of a binding are slow: they would put the bases tens of µs apart).
  let offset = 0;
  let bracket = Infinity;
  for (let i = 0; i < 8; i++) {
    const before = performance.now();
    const reading = clockMs();
    const after = performance.now();
    if (after - before < bracket) {
      bracket = after - before;
      offset = (before + after) / 2 - reading;
    }
  }
  return () => clockMs() + offset;
}
