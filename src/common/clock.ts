// The daemon's monotonic clock, read as few times as a loop turn allows. Natively a clock read costs
// nanoseconds (the vDSO), but in a Xen PV dom0 — where dxenstored runs in production — the kernel's
// Xen clock source often has no vDSO path and every clock_gettime is a real system call, as is each
// in QEMU-emulated Xen (docs/domains.md counted 4–11 of them per guest READ, against 2 for
// cxenstored). So the loop reads the clock once per turn, right after its wait, and work inside the
// turn that only needs "about now" (a request's start, the idle collector's activity stamp) takes that
// reading, or the latest one since, instead of reading it again.

export class TurnClock {
  /** The latest reading, or NaN between turns (a reading then is no longer "now"). */
  private last = Number.NaN;

  /** Read the clock (a system call where there is no vDSO); the reading becomes `recent()`. */
  read(): number {
    return (this.last = performance.now());
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
