// The Unix-socket transport: one blocking epoll loop over libc (src/server/libc.ts). It frames bytes
// into messages, hands each to the core in arrival order, and writes replies back — a read's worth of
// pipelined requests is answered with one write(). It owns file descriptors and buffers, nothing else.
//
// Bounds: a connection's unconsumed input is at most one read (READ_SIZE) because a connection whose
// output is backed up (> OUT_HIGH) is not read until it drains; its output is capped at `maxOutBytes`
// bytes and `maxOutEvents` unwritten watch events, past either of which the peer is considered stuck
// and is disconnected (socket clients can reconnect); see docs/watches.md.
import { log } from "../common/log.ts";
import { Framer, isFrameError, type Message } from "../protocol/codec.ts";
import { replaceOversized } from "../protocol/outgoing.ts";
import { HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { UnsentEvents } from "../watch/queue.ts";
import { ReleaseMarks } from "../common/release_marks.ts";
import { OutBuffer } from "./outbuf.ts";
import * as libc from "./libc.ts";

/** What the transport needs from the daemon core. */
export interface ConnectionHandler<C> {
  open(sink: { send(type: number, reqId: number, txId: number, payload: string): boolean }, label: string): C;
  /**
   * Handle one request. `false`: not now (a live update holds it, src/live_update): it stays the
   * connection's unprocessed input and the connection is not served until `resumeHeld()`.
   */
  message(c: C, m: Message): void | boolean;
  close(c: C): void;
}

export interface UnixServerOptions {
  readonly path: string;
  /** Output bytes above which a connection is disconnected as stuck (default 8 MiB). */
  readonly maxOutBytes?: number;
  /** Unwritten WATCH_EVENT messages above which a connection is disconnected as stuck (default 65536). */
  readonly maxOutEvents?: number;
  /** Called between loop turns, e.g. to run timers; returns ms until it next wants to run, or -1. */
  readonly onIdle?: () => number;
}

/**
 * Holds output back (group commit: until the sync covering it; src/backend/group.ts). Each turn's
 * output is tagged with the record number it waits for; a connection writes as far as its tags are
 * durable (src/common/release_marks.ts), so later turns' output never overtakes or leaks early.
 */
export interface OutputGate {
  /** Called once per turn before any output is written: 0 (write it now) or the number it waits for. */
  turnEnd(): number;
  /** Output waiting for numbers up to this may be written. */
  durable(): number;
  /** A group is being gathered: poll again without blocking. */
  readonly gathering: boolean;
}

const READ_SIZE = 65536;
const OUT_HIGH = 256 * 1024;

class Conn<C> {
  readonly framer = new Framer();
  readonly out = new OutBuffer();
  client!: C;
  closed = false;
  /** Reading suspended because output is backed up or input is pending. */
  paused = false;
  wantOut = false;
  /** Bytes ever queued / written on this connection: stream offsets for `events`. */
  queuedBytes = 0;
  writtenBytes = 0;
  /** Watch events queued in `out` and not yet written. */
  readonly events = new UnsentEvents();
  /** How far (in queuedBytes) output may be written: set at turn ends, held for group commit. */
  readonly marks = new ReleaseMarks();
  /** The core held a request (live update): not served until resumed. */
  held = false;
  constructor(readonly fd: number, readonly id: number) {}

  get label(): string {
    return `socket#${this.id}`;
  }

  transportState(): SocketState {
    return {
      kind: "socket",
      fd: this.fd,
      input: this.framer.pendingBytes(),
      output: this.out.pending().slice(),
      partial: this.out.partial,
      releasedOutput: Math.max(0, this.marks.released - this.writtenBytes),
    };
  }
}

/** A socket connection's transport state (live update carries it across exec; src/live_update). */
export interface SocketState {
  readonly kind: "socket";
  readonly fd: number;
  /** Bytes read and not yet handed to the core (at most one partial message, or a backlog). */
  readonly input: Uint8Array;
  /** Bytes queued and not yet written: `partial` bytes finishing a message, then whole messages. */
  readonly output: Uint8Array;
  readonly partial: number;
  /** How many of `output`'s bytes are released (the rest waits for group commit). */
  readonly releasedOutput: number;
}

/** What a live update sees of a connection. */
export interface SocketConnection<C> {
  readonly client: C;
  readonly label: string;
  transportState(): SocketState;
}

export interface UnixServerStats {
  /** Connections disconnected for exceeding maxOutBytes or maxOutEvents. */
  outputLimitDisconnects: number;
}

export class UnixServer<C> {
  readonly stats: UnixServerStats = { outputLimitDisconnects: 0 };
  private readonly ep = new libc.Epoll(256);
  private readonly conns = new Map<number, Conn<C>>();
  private listenFd = -1;
  private readonly readBuf = new Uint8Array(READ_SIZE);
  private nextId = 1;
  private stopping = false;
  private readonly maxOut: number;
  private readonly maxOutEvents: number;
  /** Connections with unprocessed input (paused mid-batch), served again next turn. */
  private readonly backlog = new Set<Conn<C>>();
  /** Connections given output this turn (replies, or watch events caused by others). */
  private readonly dirty = new Set<Conn<C>>();
  private readonly extraFds = new Map<number, () => void>();
  private readonly turnEnd: Array<() => void> = [];
  private readonly beforeOutput: Array<() => void> = [];
  private gate: OutputGate | null = null;
  /** The record number this turn's output waits for (0: none). */
  private tag = 0;
  /** Connections with output held for group commit. */
  private readonly waiting = new Set<Conn<C>>();

  constructor(private readonly opts: UnixServerOptions, private readonly handler: ConnectionHandler<C>) {
    this.maxOut = opts.maxOutBytes ?? 8 * 1024 * 1024;
    this.maxOutEvents = opts.maxOutEvents ?? 65536;
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  listen(): void {
    this.listenFd = libc.listenUnix(this.opts.path);
    this.ep.add(this.listenFd, libc.EPOLLIN);
  }

  /** The listening socket (-1 before listen()). */
  get listenerFd(): number {
    return this.listenFd;
  }

  /** The live connections (live update, diagnostics). */
  connections(): Iterable<SocketConnection<C>> {
    return this.conns.values();
  }

  /** Serve an inherited listening socket instead of creating one (live update: -U). */
  adoptListener(fd: number): void {
    this.listenFd = fd;
    this.ep.add(fd, libc.EPOLLIN);
  }

  /**
   * Serve an inherited, connected socket (live update: -U) as a new connection: `output` (after
   * `partial` bytes finishing a message) is sent first, `input` is served before anything read
   * later. The descriptor must be non-blocking.
   */
  adopt(fd: number, input: Uint8Array, output: Uint8Array, partial: number): C {
    const c = this.accepted(fd);
    if (output.length > 0) {
      c.out.appendRaw(output, partial);
      c.queuedBytes += output.length;
      this.dirty.add(c); // released at the turn's end, as any output
    }
    if (input.length > 0) {
      c.framer.feed(input.slice());
      c.framer.release();
      this.backlog.add(c);
    }
    return c.client;
  }

  /** Serve again the connections whose request the core held (live update ended). */
  resumeHeld(): void {
    for (const c of this.conns.values()) {
      if (!c.held) continue;
      c.held = false;
      this.backlog.add(c);
    }
  }

  /** Output held for group commit on some connection. */
  get outputHeld(): boolean {
    return this.waiting.size > 0;
  }

  stop(): void {
    this.stopping = true;
  }

  /**
   * Serve until stop(). epoll_wait blocks the JS thread, so the loop yields to Deno's event loop
   * whenever it is idle and at least every YIELD_MS under load: signal handlers and timers run there.
   */
  async run(): Promise<void> {
    const YIELD_MS = 50;
    let lastYield = performance.now();
    while (!this.stopping) {
      const idleMs = this.opts.onIdle ? this.opts.onIdle() : -1;
      // A group commit gathering: poll without blocking.
      const gathering = this.gate !== null && this.gate.gathering;
      const busy = this.backlog.size > 0 || gathering;
      const timeout = busy ? 0 : idleMs < 0 ? YIELD_MS : Math.min(idleMs, YIELD_MS);
      const n = this.ep.wait(timeout);
      for (let i = 0; i < n; i++) this.onEvent(this.ep.eventFd(i), this.ep.eventMask(i));
      for (const c of [...this.backlog]) this.serve(c);
      for (const fn of this.beforeOutput) fn();
      this.tag = this.gate === null ? 0 : this.gate.turnEnd();
      this.releaseOutput();
      for (const fn of this.turnEnd) fn();
      const now = performance.now();
      // Idle: yield. Not while a group commit gathers: that poll was non-blocking.
      if ((n === 0 && !gathering && !(this.gate?.gathering ?? false)) || now - lastYield >= YIELD_MS) {
        await new Promise((r) => setTimeout(r, 0));
        lastYield = performance.now();
      }
    }
    this.shutdown();
  }

  private shutdown(): void {
    for (const c of [...this.conns.values()]) this.closeConn(c, "daemon stopping");
    if (this.listenFd >= 0) {
      this.ep.remove(this.listenFd);
      libc.closeFd(this.listenFd);
      this.listenFd = -1;
    }
    libc.closeFd(this.ep.fd);
  }

  /**
   * Watch another file descriptor in the same epoll set (the Xen event channel, a timerfd...):
   * `onReadable` runs inside the loop, like a socket read. The caller owns and closes the fd.
   */
  addFd(fd: number, onReadable: () => void): void {
    this.extraFds.set(fd, onReadable);
    this.ep.add(fd, libc.EPOLLIN);
  }

  removeFd(fd: number): void {
    if (this.extraFds.delete(fd)) this.ep.remove(fd);
  }

  /** Run `fn` at the end of every loop turn, after replies are flushed (ring I/O, group commit...). */
  onTurnEnd(fn: () => void): void {
    this.turnEnd.push(fn);
  }

  /**
   * Run `fn` at the end of every loop turn before the turn's output is tagged for group commit: work
   * that stores records the turn's replies depend on (a guest's new watch in its domain record).
   */
  onBeforeOutput(fn: () => void): void {
    this.beforeOutput.push(fn);
  }

  /** Consult `g` before writing each turn's output (group commit). */
  setOutputGate(g: OutputGate): void {
    this.gate = g;
  }

  /** The record number this turn's output waits for (0: none); turn-end hooks tag theirs with it. */
  get outputTag(): number {
    return this.tag;
  }

  /** Output tagged up to this number may be written (group commit; without a gate: everything). */
  get durable(): number {
    return this.gate === null ? Number.MAX_SAFE_INTEGER : this.gate.durable();
  }

  private onEvent(fd: number, mask: number): void {
    const extra = this.extraFds.get(fd);
    if (extra !== undefined) {
      extra();
      return;
    }
    if (fd === this.listenFd) {
      this.acceptAll();
      return;
    }
    const c = this.conns.get(fd);
    if (c === undefined) return;
    if (mask & libc.EPOLLOUT) this.flush(c);
    if (c.closed) return;
    if (mask & (libc.EPOLLIN | libc.EPOLLHUP | libc.EPOLLERR)) this.readConn(c, mask);
  }

  private acceptAll(): void {
    for (;;) {
      const fd = libc.accept(this.listenFd);
      if (fd < 0) break;
      this.accepted(fd);
    }
  }

  private accepted(fd: number): Conn<C> {
    const c = new Conn<C>(fd, this.nextId++);
    const sink = {
      send: (type: number, reqId: number, txId: number, payload: string): boolean => {
        if (c.closed) return false;
        if (payload.length > PAYLOAD_MAX) {
          const instead = replaceOversized(`socket#${c.id}`, type, payload.length);
          if (instead === null) return false;
          type = MsgType.ERROR;
          payload = instead;
        }
        c.out.append(type, reqId, txId, payload);
        c.queuedBytes += HEADER_SIZE + payload.length;
        if (type === MsgType.WATCH_EVENT) c.events.queued(c.queuedBytes);
        this.dirty.add(c);
        const over = c.out.length > this.maxOut
          ? `${c.out.length} bytes unread (limit ${this.maxOut})`
          : c.events.count > this.maxOutEvents
          ? `${c.events.count} watch events unread (limit ${this.maxOutEvents})`
          : null;
        if (over !== null) {
          this.stats.outputLimitDisconnects++;
          log(
            "warn",
            `socket#${c.id}: ${over}, disconnecting a stuck client ` +
              `(${this.stats.outputLimitDisconnects} so far)`,
          );
          this.closeConn(c, "output limit");
          return false;
        }
        return true;
      },
    };
    c.client = this.handler.open(sink, `socket#${c.id}`);
    this.conns.set(fd, c);
    this.ep.add(fd, libc.EPOLLIN | libc.EPOLLRDHUP);
    return c;
  }

  private readConn(c: Conn<C>, mask: number): void {
    if (c.paused || c.held) return;
    const n = libc.read(c.fd, this.readBuf);
    if (n > 0) {
      c.framer.feed(this.readBuf.subarray(0, n));
      this.serve(c);
      c.framer.release();
      return;
    }
    if (n < 0) {
      const e = libc.errno();
      if (e === libc.EAGAIN || e === libc.EINTR) return;
    }
    if (n === 0 || mask & (libc.EPOLLHUP | libc.EPOLLERR) || n < 0) {
      this.closeConn(c, n === 0 ? "eof" : "error");
    }
  }

  /** Process buffered messages until the input runs out or the output backs up; then write. */
  private serve(c: Conn<C>): void {
    this.backlog.delete(c);
    while (!c.closed && !c.held) {
      if (c.out.length > OUT_HIGH) {
        // Back-pressure: stop reading this client until its replies drain.
        this.setPaused(c, true);
        break;
      }
      const m = c.framer.next();
      if (m === null) {
        this.setPaused(c, false);
        break;
      }
      if (isFrameError(m)) {
        log("warn", `socket#${c.id}: message length ${m.len} exceeds 4096, closing the connection`);
        this.closeConn(c, "oversized message");
        return;
      }
      if (this.handler.message(c.client, m) === false) {
        // Held (live update pending): keep it as input, stop reading until resumeHeld().
        c.framer.unread(m);
        c.held = true;
        this.setPaused(c, true);
      }
    }
  }

  private setPaused(c: Conn<C>, paused: boolean): void {
    if (c.paused === paused) return;
    c.paused = paused;
    this.updateMask(c);
  }

  private updateMask(c: Conn<C>): void {
    if (c.closed) return;
    const mask = (c.paused ? 0 : libc.EPOLLIN | libc.EPOLLRDHUP) | (c.wantOut ? libc.EPOLLOUT : 0);
    this.ep.modify(c.fd, mask);
  }

  /** Write as much released output as the socket takes; arm EPOLLOUT for the rest. */
  flush(c: Conn<C>): void {
    for (;;) {
      const allowed = c.marks.released - c.writtenBytes;
      if (allowed <= 0) break;
      const pending = c.out.pending();
      const n = libc.write(c.fd, allowed < pending.length ? pending.subarray(0, allowed) : pending);
      if (n > 0) {
        c.out.consume(n);
        c.writtenBytes += n;
        c.events.written(c.writtenBytes);
        continue;
      }
      const e = libc.errno();
      if (n < 0 && (e === libc.EAGAIN || e === libc.EINTR)) break;
      this.closeConn(c, "write error");
      return;
    }
    const want = c.marks.released > c.writtenBytes; // held output does not need EPOLLOUT
    if (want !== c.wantOut) {
      c.wantOut = want;
      this.updateMask(c);
    }
    // Output drained: resume a client paused for back-pressure and finish its pending input.
    if (c.held) return;
    if (c.paused && c.out.length <= OUT_HIGH && c.framer.pending > 0) this.backlog.add(c);
    else if (c.paused && c.out.length <= OUT_HIGH) this.setPaused(c, false);
  }

  /**
   * Turn end: release this turn's output (tagged with the record it waits for) and whatever held
   * output has become durable; write it, one write() per connection whatever the batch size.
   */
  private releaseOutput(): void {
    const tag = this.tag;
    for (const c of this.dirty) {
      if (c.closed) continue;
      c.marks.add(tag, c.queuedBytes);
      if (c.marks.waiting) this.waiting.add(c);
      else if (!c.wantOut) this.flush(c);
    }
    this.dirty.clear();
    if (this.waiting.size === 0) return;
    const durable = this.durable;
    for (const c of this.waiting) {
      c.marks.release(durable);
      if (!c.marks.waiting) this.waiting.delete(c);
      if (!c.wantOut) this.flush(c);
    }
  }

  private closeConn(c: Conn<C>, why: string): void {
    if (c.closed) return;
    c.closed = true;
    this.backlog.delete(c);
    this.dirty.delete(c);
    this.waiting.delete(c);
    this.conns.delete(c.fd);
    this.ep.remove(c.fd);
    libc.closeFd(c.fd);
    log("debug", `socket#${c.id} closed (${why})`);
    this.handler.close(c.client);
  }
}
