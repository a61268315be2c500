// The daemon's one loop: a blocking epoll_wait over libc (ffi/libc.ts), measured in
// research/platform.md §9 to match a C epoll server where Deno's own socket layer costs ~1.7×. Both
// transports live in it side by side — the Unix-socket server (./socket_server.ts) and the ring server
// (./ring_server.ts) register their file descriptors here — so socket and ring requests are served in
// the same turns, and every connection's output leaves through one output stage:
//
//   wait for events → signals (fds that only say there is work: AIO completions)
//   → work left from earlier turns (rings past their budget or let go from a stall)
//   → the events, in epoll's order (event-channel signals: each served as it comes; readable sockets
//     are noted)
//   → backlogs (the noted sockets, read and served in event order; socket input held back)
//   → before-output hooks (store records the turn's replies depend on)
//   → the gate tags the turn's output with the record it waits for (group commit; 0 without a gate)
//   → the output stage marks every connection that got output and writes what is released
//   → turn-end hooks (ring notifications, parked rings)
//
// Output is released at turn ends only: each connection writes as far as its release marks allow
// (./release_marks.ts). Without group commit a turn's output is released at once; with it, it waits
// for the record it may depend on to be durable while the loop goes on serving (docs/backends.md).
//
// While JavaScript blocks in epoll_wait Deno's timers and signal handlers cannot run, so when the
// daemon is idle the loop makes its wait on a pool thread instead, and under load it lets Deno's event
// loop run at least every LOAD_YIELD_MS (run()): SIGTERM/SIGINT and timers are handled there. Each turn
// reads the clock once, after its wait (src/common/clock.ts): in a Xen PV dom0 every clock read may
// be a system call.
import * as libc from "../../ffi/libc.ts";
import { turnClock } from "../common/clock.ts";
import type { ReleaseMarks } from "./release_marks.ts";

/**
 * Holds output back (group commit: until the sync covering it; src/backend/group.ts). Each turn's
 * output is tagged with the record number it waits for; a connection writes as far as its tags are
 * durable (./release_marks.ts), so later turns' output never overtakes or leaks early.
 */
export interface OutputGate {
  /** Called once per turn before any output is written: 0 (write it now) or the number it waits for. */
  turnEnd(): number;
  /** Output waiting for numbers up to this may be written. */
  durable(): number;
  /** A group is being gathered: poll again without blocking. */
  readonly gathering: boolean;
  /** An fd that becomes readable when an asynchronous sync completed (null/absent: none). */
  readonly completionFd?: number | null;
  /** Collect the completed sync (called when completionFd is readable). */
  completed?(): void;
}

/** A connection's output as the output stage sees it (sockets and rings alike). */
export interface OutputSink {
  /** How far output may be written, per record it waits for. */
  readonly marks: ReleaseMarks;
  /** Where the queued output ends (bytes queued for sockets, messages for rings). */
  readonly queuedPosition: number;
  /** Closed: nothing more is written. */
  readonly closed: boolean;
  /** Write what the marks release, as far as the peer takes it. */
  flush(): void;
}

/**
 * The one output gate: connections that got output this turn are tagged with the turn's record
 * number; connections whose output waits for a record are kept until it is durable.
 */
export class OutputStage {
  /**
   * Connections that got output this turn: an array filled up to `dirtyCount`, membership marked in
   * the connection's marks (`queuedThisTurn`). A Set filled and cleared every turn allocated a new
   * hash table each time (issue 20).
   */
  private readonly dirty: OutputSink[] = [];
  private dirtyCount = 0;
  private readonly waiting = new Set<OutputSink>();
  private readonly flushed: Array<() => void> = [];

  /**
   * Run `fn` at the end of every release, after every sink's flush(): a transport whose sinks only
   * note what to write in flush() writes it there, all connections together (the socket server:
   * one system call for a turn's replies).
   */
  onFlushed(fn: () => void): void {
    this.flushed.push(fn);
  }

  /** `c` queued output this turn. */
  queued(c: OutputSink): void {
    const m = c.marks;
    if (m.queuedThisTurn) return;
    m.queuedThisTurn = true;
    this.dirty[this.dirtyCount++] = c;
  }

  /** `c` is closed: forget it (a closed connection left in this turn's list is skipped). */
  forget(c: OutputSink): void {
    this.waiting.delete(c);
  }

  /** Turn end: this turn's output waits for record `tag`; held output for records up to `durable`. */
  release(tag: number, durable: number): void {
    const dirty = this.dirty;
    // Connections that get output meanwhile (from a flush) are taken in the same pass, as a Set's
    // iteration would.
    for (let i = 0; i < this.dirtyCount; i++) {
      const c = dirty[i];
      if (c.closed) continue;
      c.marks.add(tag, c.queuedPosition);
      if (c.marks.waiting) this.waiting.add(c);
      else c.flush();
    }
    for (let i = 0; i < this.dirtyCount; i++) {
      dirty[i].marks.queuedThisTurn = false;
      dirty[i] = undefined as unknown as OutputSink; // no closed connection kept alive
    }
    this.dirtyCount = 0;
    for (const c of this.waiting) {
      c.marks.release(durable);
      if (!c.marks.waiting || c.closed) this.waiting.delete(c);
      if (!c.closed) c.flush();
    }
    for (const fn of this.flushed) fn();
  }
}

export interface EventLoopOptions {
  /** Group commit's gate (absent: output is released at each turn's end). */
  readonly gate?: OutputGate | null;
  /** Called between loop turns, e.g. to run timers; returns ms until it next wants to run, or -1. */
  readonly onIdle?: () => number;
}

/**
 * An idle daemon's wait lasts at most this long: then the loop looks again (a live update's probe,
 * settled meanwhile in Deno's event loop, is noticed at the turn's end).
 */
const IDLE_WAIT_MS = 100;
/**
 * Under load Deno's event loop runs at least this often (timers, signal handlers: a SIGTERM is
 * handled within this time). Not more often: each such yield is a hand-off to a pool thread and back,
 * and a request that arrives meanwhile waits for it — under QEMU-emulated Xen some milliseconds,
 * which every 100 ms (as it was) met ~3% of a busy guest's READs, enough to set their p99
 * (docs/domains.md, "Third pass").
 */
export const LOAD_YIELD_MS = 500;
/** eventfd's counter increment (a u64, as write(2) on an eventfd takes it). */
const WAKE = new Uint8Array(new BigUint64Array([1n]).buffer);

/** When in a turn a transport serves work it holds (EventLoop.onServe). */
export type ServePhase = "first" | "backlog";

export class EventLoop {
  readonly output = new OutputStage();
  private readonly ep = new libc.Epoll(256);
  private readonly handlers = new Map<number, (mask: number) => void>();
  /** Fds whose readiness only records work (handled before anything is served). */
  private readonly signals = new Set<number>();
  private readonly servers: Record<ServePhase, Array<() => void>> = { first: [], backlog: [] };
  private readonly busyChecks: Array<() => boolean> = [];
  private readonly beforeOutput: Array<() => void> = [];
  private readonly turnEnd: Array<() => void> = [];
  private readonly stopped: Array<() => void> = [];
  private readonly gate: OutputGate | null;
  /** The record number this turn's output waits for (0: none). */
  private tag = 0;
  private stopping = false;
  private closed = false;
  /** Whether the current turn's wait was a poll because work was waiting (set by waitTimeout). */
  private turnBusy = false;
  /** When the current (or last) turn started: the turn clock's reading after its wait. */
  private turnStartedAt = 0;
  /** Turns served by run(), and those whose wait let Deno's event loop run (tests, diagnostics). */
  readonly stats = { turns: 0, yields: 0 };
  /** Readable when stop() was called: ends the wait at once (it may last IDLE_WAIT_MS). */
  private readonly wakeFd = libc.eventfd();
  private readonly wakeBuf = new Uint8Array(8);

  constructor(private readonly opts: EventLoopOptions = {}) {
    this.gate = opts.gate ?? null;
    this.addSignalFd(this.wakeFd, () => libc.read(this.wakeFd, this.wakeBuf));
    // Asynchronous group writes: their completion wakes the loop, which then releases the output.
    const fd = this.gate?.completionFd ?? null;
    if (fd !== null) this.addSignalFd(fd, () => this.gate!.completed?.());
  }

  /**
   * Watch `fd`, whose readiness only records work to do (an AIO completion): `onSignal` runs first in
   * the turn, before anything is served.
   */
  addSignalFd(fd: number, onSignal: () => void): void {
    this.signals.add(fd);
    this.addFd(fd, onSignal);
  }

  /**
   * Watch `fd` for `mask` (EPOLLIN by default): `onEvent(mask)` runs inside the loop. The caller owns
   * and closes the fd.
   */
  addFd(fd: number, onEvent: (mask: number) => void, mask = libc.EPOLLIN): void {
    this.handlers.set(fd, onEvent);
    this.ep.add(fd, mask);
  }

  modifyFd(fd: number, mask: number): void {
    this.ep.modify(fd, mask);
  }

  removeFd(fd: number): void {
    this.signals.delete(fd);
    if (this.handlers.delete(fd)) this.ep.remove(fd);
  }

  /**
   * Run `serve` every turn in `phase`: "first" after the signals and before the turn's events (work
   * left from earlier turns), "backlog" after the events (socket input held back). While `busy()`
   * holds, the loop does not sleep: the next turn has work without an event.
   */
  onServe(phase: ServePhase, serve: () => void, busy: () => boolean): void {
    this.servers[phase].push(serve);
    this.busyChecks.push(busy);
  }

  /**
   * Run `fn` at the end of every turn before the turn's output is tagged for group commit: work that
   * stores records the turn's replies depend on (a guest's new watch in its domain record).
   */
  onBeforeOutput(fn: () => void): void {
    this.beforeOutput.push(fn);
  }

  /** Run `fn` at the end of every turn, after the output is released (ring notifications...). */
  onTurnEnd(fn: () => void): void {
    this.turnEnd.push(fn);
  }

  /** Run `fn` when run() ends (stop()): a transport closes its connections. */
  onStop(fn: () => void): void {
    this.stopped.push(fn);
  }

  /** The record number this turn's output waits for (0: none). */
  get outputTag(): number {
    return this.tag;
  }

  /** Output tagged up to this number may be written (group commit; without a gate: everything). */
  get durable(): number {
    return this.gate === null ? Number.MAX_SAFE_INTEGER : this.gate.durable();
  }

  stop(): void {
    this.stopping = true;
    if (!this.closed) libc.write(this.wakeFd, WAKE);
  }

  /** One turn: wait up to `timeoutMs` for events, serve, release output. Returns the events seen. */
  turn(timeoutMs: number): number {
    return this.serveTurn(this.ep.wait(timeoutMs));
  }

  /** Serve the `n` events the wait returned, release output, run the turn-end hooks. */
  private serveTurn(n: number): number {
    this.turnStartedAt = turnClock.turnStart();
    if (this.signals.size > 0) {
      for (let i = 0; i < n; i++) {
        const fd = this.ep.eventFd(i);
        if (this.signals.has(fd)) this.handlers.get(fd)!(this.ep.eventMask(i));
      }
    }
    for (const serve of this.servers.first) serve();
    for (let i = 0; i < n; i++) {
      const fd = this.ep.eventFd(i);
      if (this.signals.has(fd)) continue;
      const h = this.handlers.get(fd);
      if (h !== undefined) h(this.ep.eventMask(i));
    }
    for (const serve of this.servers.backlog) serve();
    for (const fn of this.beforeOutput) fn();
    this.tag = this.gate === null ? 0 : this.gate.turnEnd();
    this.output.release(this.tag, this.durable);
    for (const fn of this.turnEnd) fn();
    turnClock.turnEnd();
    return n;
  }

  /**
   * Serve until stop(). A blocking epoll_wait is the cheapest wait there is, but while JavaScript
   * blocks in it Deno's event loop cannot run: signal handlers, timers and promises (a policy reload,
   * a live update's probe) wait. So:
   *  - idle (the last wait found nothing in IDLE_WAIT_MS): the next wait is made on a pool thread, and
   *    Deno's event loop runs meanwhile, for as long as the daemon stays idle;
   *  - under load, after a turn that ends LOAD_YIELD_MS or more after Deno's event loop last ran: one poll
   *    on a pool thread that does not block (Deno's event loop runs once before it resolves; what it
   *    finds is served). It comes after the turn's replies are out, so no request waits for it.
   * (The loop used to yield with setTimeout(0), which kept the daemon away from its descriptors for
   * ~2 ms natively — Deno's timers have millisecond granularity — every 50 ms under load and after
   * every idle wait; docs/domains.md.)
   *
   * The turns between two yields run in serveUntilYield(), a synchronous function of their own: V8
   * compiles a hot loop while it runs (on-stack replacement), before the yields — every 500 ms, or
   * after an idle spell — have ever run, and with them in the same function each yield path's first
   * run after a compilation threw the loop's optimised code away for want of type feedback, and
   * TurboFan compiled it again (5 times in 12 000 paced guest READs natively, 8–25 ms of compiler time
   * each; under QEMU's emulation many times that, on a dom0 CPU the guests' requests wait for).
   */
  async run(): Promise<void> {
    let lastYield = turnClock.read();
    turnClock.turnEnd();
    while (!this.stopping) {
      const becameIdle = this.serveUntilYield(lastYield);
      if (this.stopping) break;
      if (becameIdle) {
        // Idle: wait on a pool thread, for as long as the daemon stays idle.
        let idle = true;
        while (idle && !this.stopping) {
          const timeout = this.waitTimeout();
          const n: number = await this.ep.waitAsync(timeout);
          this.serveTurn(n);
          this.stats.turns++;
          this.stats.yields++;
          lastYield = this.turnStartedAt;
          idle = this.wasIdle(n);
        }
      } else {
        const m: number = await this.ep.waitAsync(0);
        this.stats.yields++;
        if (m > 0) {
          this.serveTurn(m);
          this.stats.turns++;
          lastYield = this.turnStartedAt;
        } else {
          lastYield = turnClock.read();
          turnClock.turnEnd();
        }
      }
    }
    for (const fn of this.stopped) fn();
  }

  /**
   * Turns with blocking waits until the daemon is idle (true), Deno's event loop is due (false: a
   * turn ended LOAD_YIELD_MS or more after `lastYield`) or stop() was called.
   */
  private serveUntilYield(lastYield: number): boolean {
    while (!this.stopping) {
      const n = this.ep.wait(this.waitTimeout());
      this.serveTurn(n);
      this.stats.turns++;
      if (this.wasIdle(n)) return true;
      if (this.turnStartedAt - lastYield >= LOAD_YIELD_MS) return false;
    }
    return false;
  }

  /**
   * The next wait's timeout: 0 when work is waiting without an event (a group commit gathering,
   * rings past their budget, input held back), else until the next timer (onIdle), at most
   * IDLE_WAIT_MS. Runs the onIdle hook, once per turn.
   */
  private waitTimeout(): number {
    const idleMs = this.opts.onIdle ? this.opts.onIdle() : -1;
    let busy = this.gate !== null && this.gate.gathering;
    for (let i = 0; !busy && i < this.busyChecks.length; i++) busy = this.busyChecks[i]();
    this.turnBusy = busy;
    return busy ? 0 : idleMs < 0 ? IDLE_WAIT_MS : Math.min(idleMs, IDLE_WAIT_MS);
  }

  /**
   * After a turn of `n` events: was the daemon idle? Not after a turn that polled without blocking
   * because work was waiting: no event was to be expected.
   */
  private wasIdle(n: number): boolean {
    // Every load runs whatever `n` is: a load that only idle turns reached had no type feedback when
    // V8 compiled the loop under load, and its first idle turn then deoptimised it.
    const busy = this.turnBusy;
    const gathering = this.gate !== null && this.gate.gathering;
    return n === 0 && !busy && !gathering;
  }

  /** Release the epoll instance (the transports closed their descriptors first). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.removeFd(this.wakeFd);
    libc.close(this.wakeFd);
    this.ep.close();
  }
}
