// The Unix-socket transport: dom0's tools connect to a listening socket served by the daemon's loop
// (./loop.ts). It frames bytes into messages, hands each to the core in arrival order, and queues the
// replies; the loop's output stage writes them back at the turn's end — a read's worth of pipelined
// requests is answered with one write(). When a turn finds several connections readable, they are
// read after the turn's events with MSG_PEEK, and their requests are taken off the sockets in one
// system call with the turn's replies (readNoted, writeNoted: Linux AIO), so that the clients those
// calls wake cannot preempt the daemon once per connection, nor wake before their reply is there.
// It owns file descriptors and buffers, nothing else. Socket connections are the privileged control
// domain (domid 0), as in Xen.
//
// Bounds: a connection's unconsumed input is at most one read (READ_SIZE) because a connection whose
// output is backed up (> OUT_HIGH) is not read until it drains; its output is capped at `maxOutBytes`
// bytes and `maxOutEvents` unwritten watch events, past either of which the peer is considered stuck
// and is disconnected (socket clients can reconnect); see docs/watches.md.
import * as libc from "../../ffi/libc.ts";
import { AioBatch } from "../../ffi/aio.ts";
import { log } from "../common/log.ts";
import type { Client } from "../dispatch/client.ts";
import { Framer, isFrameError, type Message } from "../protocol/codec.ts";
import { replaceOversized } from "../protocol/outgoing.ts";
import { HEADER_SIZE, MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { UnsentEvents } from "../watch/queue.ts";
import type { Connection, SocketState } from "./connection.ts";
import type { EventLoop } from "./loop.ts";
import { OutBuffer } from "./outbuf.ts";
import { ReleaseMarks } from "./release_marks.ts";

/** What a transport needs from the daemon core (src/dispatch/core.ts Core). */
export interface ConnectionHandler {
  /** A privileged (dom0 socket) connection. */
  open(sink: Connection, label: string): Client;
  /**
   * Handle one request. `false`: not now (a live update holds it, src/live_update): it stays the
   * connection's unprocessed input and the connection is not served until `resumeHeld()`.
   */
  message(c: Client, m: Message): void | boolean;
  close(c: Client): void;
}

export interface SocketServerOptions {
  readonly path: string;
  /** Output bytes above which a connection is disconnected as stuck (default 8 MiB). */
  readonly maxOutBytes?: number;
  /** Unwritten WATCH_EVENT messages above which a connection is disconnected as stuck (default 65536). */
  readonly maxOutEvents?: number;
  /** Where to count (the daemon's metrics read the same object); default: a fresh one. */
  readonly stats?: SocketServerStats;
  /**
   * Take the requests of the connections a turn finds readable off their sockets and write the turn's
   * replies in one system call (MSG_PEEK first, then Linux AIO: ffi/aio.ts AioBatch) instead of one
   * read() and one write() per connection (default true; false, or no AIO in the kernel: one call per
   * connection).
   */
  readonly batchIo?: boolean;
}

export interface SocketServerStats {
  /** Connections disconnected for exceeding maxOutBytes or maxOutEvents. */
  outputLimitDisconnects: number;
}

const READ_SIZE = 65536;
const OUT_HIGH = 256 * 1024;
/** Reads and writes per io_submit (more connections with output in one turn: several batches). */
const WRITE_BATCH = 64;

class SocketConnection implements Connection {
  readonly framer = new Framer();
  readonly out = new OutBuffer();
  /** The core's client for this connection (the privileged control domain). */
  readonly client: Client;
  closed = false;
  /** Reading suspended because output is backed up or input is pending. */
  paused = false;
  /** The handler held a request (live update): not served until resumed. */
  held = false;
  /** EPOLLOUT armed: released output is waiting for the socket to drain. */
  wantOut = false;
  /** flush() noted it for this turn's batch of writes (SocketServer.writeNoted). */
  flushNoted = false;
  /** The turn's events for it, noted for the turn's batch of reads (0: none; SocketServer.readNoted). */
  readMask = 0;
  /** Bytes read with MSG_PEEK this turn, taken off the socket with the turn's writes (writeNoted). */
  peeked = 0;
  /** Bytes ever queued / written on this connection: stream offsets for `events` and `marks`. */
  queuedBytes = 0;
  writtenBytes = 0;
  /** Watch events queued in `out` and not yet written. */
  readonly events = new UnsentEvents();
  /** How far (in queuedBytes) output may be written: set at turn ends, held for group commit. */
  readonly marks = new ReleaseMarks();
  readonly label: string;

  constructor(
    readonly fd: number,
    readonly id: number,
    private readonly server: SocketServer,
    handler: ConnectionHandler,
  ) {
    this.label = `socket#${id}`;
    // Last: the core may keep this connection as the client's reply sink from here on.
    this.client = handler.open(this, this.label);
  }

  get queuedPosition(): number {
    return this.queuedBytes;
  }

  send(type: number, reqId: number, txId: number, payload: string): boolean {
    return this.server.queue(this, type, reqId, txId, payload);
  }

  /** Output stage: write what is released, unless EPOLLOUT will (the socket is full). */
  flush(): void {
    if (!this.wantOut) this.server.flushConn(this);
  }

  transportState(): SocketState {
    const pending = this.out.pending();
    return {
      kind: "socket",
      fd: this.fd,
      input: this.framer.pendingBytes(),
      output: pending.slice(),
      partial: this.out.partial,
      releasedOutput: Math.max(0, this.marks.released - this.writtenBytes),
    };
  }
}

export class SocketServer {
  readonly stats: SocketServerStats;
  /** io_submit calls, and the peeked requests taken off and the writes made in them. */
  readonly batchStats = { batches: 0, reads: 0, writes: 0 };
  private readonly conns = new Map<number, SocketConnection>();
  private listenFd = -1;
  private readonly readBuf = new Uint8Array(READ_SIZE);
  private nextId = 1;
  private readonly maxOut: number;
  private readonly maxOutEvents: number;
  /** Connections with unprocessed input (paused mid-batch), served again next turn. */
  private readonly backlog = new Set<SocketConnection>();
  /** The turn's writes in one system call; null: one write() per connection. */
  private readonly batch: AioBatch | null;
  /** Connections flushed in this release, written together when the release ends (writeNoted). */
  private readonly noted: SocketConnection[] = [];
  private readonly batched: SocketConnection[] = [];
  /** Connections the turn's events found readable, read together after the events (readNoted). */
  private readonly toRead: SocketConnection[] = [];
  /** Where peeked bytes are read again to take them off their socket (never looked at). */
  private readonly consumeBuf = new Uint8Array(READ_SIZE);

  constructor(
    private readonly loop: EventLoop,
    private readonly handler: ConnectionHandler,
    private readonly opts: SocketServerOptions,
  ) {
    this.stats = opts.stats ?? { outputLimitDisconnects: 0 };
    this.maxOut = opts.maxOutBytes ?? 8 * 1024 * 1024;
    this.maxOutEvents = opts.maxOutEvents ?? 65536;
    loop.onServe("backlog", () => this.serveBacklog(), () => this.backlog.size > 0);
    loop.onStop(() => this.close());
    this.batch = opts.batchIo === false ? null : AioBatch.create(WRITE_BATCH);
    if (this.batch !== null) loop.output.onFlushed(() => this.writeNoted());
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  /** The live connections (live update, diagnostics). */
  connections(): Iterable<Connection> {
    return this.conns.values();
  }

  /** The listening socket (-1 before listen()). */
  get listenerFd(): number {
    return this.listenFd;
  }

  /** Serve an inherited listening socket instead of creating one (live update: -U). */
  adoptListener(fd: number): void {
    this.listenFd = fd;
    this.loop.addFd(fd, () => this.acceptAll());
  }

  /**
   * Serve an inherited, connected socket (live update: -U) as a new connection: `output` (after
   * `partial` bytes finishing a message) is sent first, `input` is served before anything read
   * later. The descriptor must be non-blocking.
   */
  adopt(fd: number, input: Uint8Array, output: Uint8Array, partial: number): Client {
    const c = this.accepted(fd);
    if (output.length > 0) {
      c.out.appendRaw(output, partial);
      c.queuedBytes += output.length;
      this.loop.output.queued(c); // released at the turn's end, as any output
    }
    if (input.length > 0) {
      c.framer.feed(input.slice());
      c.framer.release();
      this.backlog.add(c);
    }
    return c.client;
  }

  /** Serve again the connections whose request the handler held (live update ended). */
  resumeHeld(): void {
    for (const c of this.conns.values()) {
      if (!c.held) continue;
      c.held = false;
      this.backlog.add(c);
    }
  }

  /**
   * Serve every whole request already read, past back-pressure (at most one read's worth per
   * connection): a live update to cxenstored 4.17, which restores one request per connection, must
   * not hand over several. Held connections stay held. The connections stay paused for reading.
   */
  serveBuffered(): void {
    for (const c of this.conns.values()) {
      if (c.closed || c.held) continue;
      this.serve(c, true);
      if (c.out.length > OUT_HIGH) this.setPaused(c, true);
    }
  }

  /** Bind and listen; connections are accepted by the loop from now on. */
  listen(): void {
    this.listenFd = libc.listenUnix(this.opts.path);
    this.loop.addFd(this.listenFd, () => this.acceptAll());
  }

  /** Close every connection and the listening socket (the loop stopped: the daemon is stopping). */
  close(): void {
    for (const c of [...this.conns.values()]) this.closeConn(c, "daemon stopping");
    if (this.listenFd >= 0) {
      this.loop.removeFd(this.listenFd);
      libc.close(this.listenFd);
      this.listenFd = -1;
    }
    this.batch?.destroy();
  }

  private acceptAll(): void {
    for (;;) {
      const fd = libc.accept(this.listenFd);
      if (fd < 0) break;
      this.accepted(fd);
    }
  }

  private accepted(fd: number): SocketConnection {
    const c = new SocketConnection(fd, this.nextId++, this, this.handler);
    this.conns.set(fd, c);
    this.loop.addFd(fd, (mask) => this.onEvent(c, mask), libc.EPOLLIN | libc.EPOLLRDHUP);
    return c;
  }

  /** SocketConnection.send: queue one message; false if the connection is gone or now over its limits. */
  queue(c: SocketConnection, type: number, reqId: number, txId: number, payload: string): boolean {
    if (c.closed) return false;
    if (payload.length > PAYLOAD_MAX) {
      const instead = replaceOversized(c.label, type, payload.length);
      if (instead === null) return false;
      type = MsgType.ERROR;
      payload = instead;
    }
    c.out.append(type, reqId, txId, payload);
    c.queuedBytes += HEADER_SIZE + payload.length;
    if (type === MsgType.WATCH_EVENT) c.events.queued(c.queuedBytes);
    this.loop.output.queued(c);
    const over = c.out.length > this.maxOut
      ? `${c.out.length} bytes unread (limit ${this.maxOut})`
      : c.events.count > this.maxOutEvents
      ? `${c.events.count} watch events unread (limit ${this.maxOutEvents})`
      : null;
    if (over !== null) {
      this.stats.outputLimitDisconnects++;
      log(
        "warn",
        `${c.label}: ${over}, disconnecting a stuck client (${this.stats.outputLimitDisconnects} so far)`,
      );
      this.closeConn(c, "output limit");
      return false;
    }
    return true;
  }

  private onEvent(c: SocketConnection, mask: number): void {
    if (mask & libc.EPOLLOUT) this.write(c);
    if (c.closed) return;
    if (!(mask & (libc.EPOLLIN | libc.EPOLLHUP | libc.EPOLLERR))) return;
    if (this.batch === null) return this.readConn(c, mask);
    // Read after the turn's events, all readable connections in one system call (readNoted).
    if (c.readMask === 0) this.toRead.push(c);
    c.readMask |= mask;
  }

  /**
   * Read every connection the turn's events found readable, and serve each in event order. One
   * connection: read(). Several: each is read with MSG_PEEK — its request stays in the socket — and
   * the bytes are taken off together with the turn's replies, in writeNoted's one io_submit, each just
   * before its reply. Reading a request frees the buffer its client wrote, and that wakes a client
   * blocked on its reply (the kernel wakes a socket's writers and readers together): read() woke
   * every such client for nothing — it found no reply and slept again, two context switches — and
   * could preempt the daemon as it returned, once per connection. Taken off in the call that writes
   * the reply, the wake-up finds the reply (docs/domains.md, bench/README.md: issue 20).
   */
  private readNoted(): void {
    const list = this.toRead;
    if (list.length === 0) return;
    if (list.length === 1) {
      const c = list[0];
      const mask = c.readMask;
      c.readMask = 0;
      list.length = 0;
      if (!c.closed) this.readConn(c, mask);
      return;
    }
    for (const c of list) {
      const mask = c.readMask;
      c.readMask = 0;
      if (c.closed || c.paused || c.held) continue;
      const n = libc.recvPeek(c.fd, this.readBuf);
      if (n > 0) {
        c.peeked = n;
        this.flushConn(c); // taken off the socket with the turn's writes
      }
      this.readDone(c, mask, n, this.readBuf);
    }
    list.length = 0;
  }

  private readConn(c: SocketConnection, mask: number): void {
    if (c.paused || c.held) return;
    this.readDone(c, mask, libc.read(c.fd, this.readBuf), this.readBuf);
  }

  /** A read of `c` into `buf` returned `n` (bytes or -errno): serve what came, or close. */
  private readDone(c: SocketConnection, mask: number, n: number, buf: Uint8Array): void {
    if (n > 0) {
      c.framer.feed(buf, n);
      this.serve(c);
      c.framer.release();
      return;
    }
    if (n === -libc.EAGAIN || n === -libc.EINTR) return;
    if (n === 0 || mask & (libc.EPOLLHUP | libc.EPOLLERR) || n < 0) {
      this.closeConn(c, n === 0 ? "eof" : "error");
    }
  }

  private serveBacklog(): void {
    this.readNoted();
    if (this.backlog.size === 0) return;
    for (const c of [...this.backlog]) this.serve(c);
  }

  /** Process buffered messages until the input runs out or the output backs up. */
  private serve(c: SocketConnection, pastBackPressure = false): void {
    this.backlog.delete(c);
    while (!c.closed && !c.held) {
      if (c.out.length > OUT_HIGH && !pastBackPressure) {
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
        log("warn", `${c.label}: message length ${m.len} exceeds ${PAYLOAD_MAX}, closing the connection`);
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

  private setPaused(c: SocketConnection, paused: boolean): void {
    if (c.paused === paused) return;
    c.paused = paused;
    this.updateMask(c);
  }

  private updateMask(c: SocketConnection): void {
    if (c.closed) return;
    const mask = (c.paused ? 0 : libc.EPOLLIN | libc.EPOLLRDHUP) | (c.wantOut ? libc.EPOLLOUT : 0);
    this.loop.modifyFd(c.fd, mask);
  }

  /** The output stage releases `c`'s output: written at once, or noted for the release's batch. */
  flushConn(c: SocketConnection): void {
    if (this.batch === null) return this.write(c);
    if (c.flushNoted) return;
    c.flushNoted = true;
    this.noted.push(c);
  }

  /**
   * The release ended: take the peeked requests off their sockets and write every noted connection's
   * released output. Two or more operations go out in one io_submit: a client blocked on its reply is
   * woken by the write that delivers it, and on a CPU shared with the clients every such wake-up can
   * preempt the daemon when its system call returns — one write() per connection meant up to one
   * preemption (two context switches) per reply, one batch means at most one per turn
   * (docs/domains.md, issue 20). Then each connection goes through write() as before, which finishes
   * a short write and arms EPOLLOUT (its first call finds nothing left to write unless the socket
   * was full).
   */
  private writeNoted(): void {
    const noted = this.noted;
    if (noted.length === 0) return;
    const batch = this.batch!;
    const batched = this.batched;
    for (let i = 0; i < noted.length; i++) {
      const c = noted[i];
      c.flushNoted = false;
      if (c.closed) {
        c.peeked = 0;
        continue;
      }
      if (c.peeked > 0) {
        batch.read(c.fd, this.consumeBuf.subarray(0, c.peeked));
        batched.push(c);
      }
      const allowed = c.wantOut ? 0 : c.marks.released - c.writtenBytes;
      if (allowed > 0 && (noted.length > 1 || c.peeked > 0)) {
        const pending = c.out.pending();
        batch.write(c.fd, allowed < pending.length ? pending.subarray(0, allowed) : pending);
        batched.push(c);
      }
      if (batched.length >= WRITE_BATCH - 1 || (i === noted.length - 1 && batched.length > 0)) {
        this.finishBatch(batch.run(), batched);
        batched.length = 0;
      }
    }
    for (const c of noted) if (!c.closed && !c.wantOut) this.write(c);
    noted.length = 0;
  }

  /**
   * Account a batch's results (in `conns` order: a connection's peeked bytes taken off, then its
   * write) as read() and write() do.
   */
  private finishBatch(results: Int32Array, conns: readonly SocketConnection[]): void {
    this.batchStats.batches++;
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i];
      const n = results[i];
      if (c.peeked > 0) {
        this.batchStats.reads++;
        // The peeked request bytes, off the socket now that the reply is queued behind them.
        const want = c.peeked;
        c.peeked = 0;
        if (n !== want && !c.closed) this.closeConn(c, `read error (${n} of ${want} peeked bytes)`);
        continue;
      }
      this.batchStats.writes++;
      if (c.closed) continue;
      if (n > 0) {
        c.out.consume(n);
        c.writtenBytes += n;
        c.events.written(c.writtenBytes);
      } else if (n !== -libc.EAGAIN && n !== -libc.EINTR) {
        this.closeConn(c, "write error");
      }
    }
  }

  /** Write as much released output as the socket takes; arm EPOLLOUT for the rest. */
  write(c: SocketConnection): void {
    for (;;) {
      const allowed = c.marks.released - c.writtenBytes;
      if (allowed <= 0) break;
      const out = c.out;
      const len = Math.min(allowed, out.length);
      // Pending output starts the buffer unless a write was short: then a view of it.
      const n = out.offset === 0
        ? libc.write(c.fd, out.bytes, len)
        : libc.write(c.fd, out.pending().subarray(0, len));
      if (n > 0) {
        c.out.consume(n);
        c.writtenBytes += n;
        c.events.written(c.writtenBytes);
        continue;
      }
      if (n === -libc.EAGAIN || n === -libc.EINTR) break;
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

  private closeConn(c: SocketConnection, why: string): void {
    if (c.closed) return;
    c.closed = true;
    this.backlog.delete(c);
    this.loop.output.forget(c);
    this.conns.delete(c.fd);
    this.loop.removeFd(c.fd);
    libc.close(c.fd);
    log("debug", `${c.label} closed (${why})`);
    this.handler.close(c.client);
  }
}
