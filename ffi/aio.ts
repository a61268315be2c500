// Linux native AIO (io_setup, io_submit, io_getevents, io_destroy) through syscall(2), for the file
// backend's group commit — the group's O_DIRECT|O_DSYNC write is submitted and the daemon goes on
// serving while the disk flushes; an eventfd in the server's epoll set says when it completed — and
// for the socket transport's turn (AioBatch below: several sockets' reads and writes in one call). No
// user threads (docs/backends.md records why a helper-thread design lost). libaio is not needed:
// the four system calls are used directly, with the kernel's structs (linux/aio_abi.h; ffi/xen_abi.c
// prints them as the compiler sees them and tests/xen/abi_test.ts compares).
//
// Memory the kernel reads or writes after io_submit returns (the data buffer of a write in flight)
// must stay allocated and unmoved until its completion is collected: callers keep a reference, and
// every buffer handed over here lives in a plain ArrayBuffer (off-heap in V8, never moved by GC).

import * as libc from "./libc.ts";

/** struct iocb (64 bytes, little-endian layout). */
export const Iocb = {
  size: 64,
  data: 0,
  rwFlags: 12,
  opcode: 16,
  fildes: 20,
  buf: 24,
  nbytes: 32,
  offset: 40,
  flags: 56,
  resfd: 60,
} as const;
/** struct io_event. */
export const IoEvent = { size: 32, data: 0, obj: 8, res: 16, res2: 24 } as const;
export const IOCB_CMD_PWRITE = 1;
/** aio_flags: signal `aio_resfd` (an eventfd) on completion. */
export const IOCB_FLAG_RESFD = 1;

/** A failed AIO system call (errno), or a completion reporting an error (its negated result). */
export class AioError extends Error {
  override name = "AioError";
  constructor(readonly op: string, readonly errno: number) {
    super(`${op} failed: ${libc.errnoName(errno)}`);
  }
}

export interface AioCompletion {
  /** The `data` given at submission. */
  readonly data: bigint;
  /** Bytes transferred, or -errno. */
  readonly res: number;
}

const MAX_EVENTS = 8;

/** One kernel AIO context with room for a few writes in flight. */
export class AioContext {
  /** iocb, the one-entry pointer array io_submit takes, the events and a zero timespec, off-heap. */
  private readonly ctl = new ArrayBuffer(Iocb.size + 8 + IoEvent.size * MAX_EVENTS + 16);
  private readonly iocb = new DataView(this.ctl, 0, Iocb.size);
  private readonly iocbPtrs = new Uint8Array(this.ctl, Iocb.size, 8);
  private readonly events = new Uint8Array(this.ctl, Iocb.size + 8, IoEvent.size * MAX_EVENTS);
  private readonly eventsView = new DataView(this.ctl, Iocb.size + 8, IoEvent.size * MAX_EVENTS);
  private readonly zeroTimeout = new Uint8Array(this.ctl, Iocb.size + 8 + IoEvent.size * MAX_EVENTS, 16);
  private destroyed = false;

  private constructor(private readonly ctx: bigint) {
    new DataView(this.ctl).setBigUint64(
      Iocb.size,
      libc.addressOf(new Uint8Array(this.ctl, 0, Iocb.size)),
      true,
    );
  }

  /** A context for up to `maxEvents` requests in flight; throws AioError (ENOSYS, EAGAIN...). */
  static create(maxEvents = 4): AioContext {
    const id = new BigUint64Array(1);
    const r = libc.ioSetup(maxEvents, id);
    if (r < 0) throw new AioError("io_setup", -r);
    return new AioContext(id[0]);
  }

  /**
   * Submit pwrite(fd, buf, offset); completion signals `resfd` (an eventfd). `buf` must stay
   * untouched and referenced until the completion is collected. Throws AioError if not submitted.
   */
  submitWrite(fd: number, buf: Uint8Array, offset: number, resfd: number, data: bigint): void {
    const v = this.iocb;
    for (let i = 0; i < Iocb.size; i += 8) v.setBigUint64(i, 0n, true);
    v.setBigUint64(Iocb.data, data, true);
    v.setUint16(Iocb.opcode, IOCB_CMD_PWRITE, true);
    v.setUint32(Iocb.fildes, fd, true);
    v.setBigUint64(Iocb.buf, libc.addressOf(buf), true);
    v.setBigUint64(Iocb.nbytes, BigInt(buf.length), true);
    v.setBigInt64(Iocb.offset, BigInt(offset), true);
    v.setUint32(Iocb.flags, IOCB_FLAG_RESFD, true);
    v.setUint32(Iocb.resfd, resfd, true);
    const n = libc.ioSubmit(this.ctx, 1, this.iocbPtrs);
    if (n !== 1) throw new AioError("io_submit", n < 0 ? -n : libc.EAGAIN /* not queued */);
  }

  /**
   * Completed requests: without waiting (`wait` false), or blocking until at least one completes.
   * Throws AioError if the call itself fails (EINTR is retried).
   */
  collect(wait: boolean): AioCompletion[] {
    for (;;) {
      const n = libc.ioGetevents(
        this.ctx,
        wait ? 1 : 0,
        MAX_EVENTS,
        this.events,
        wait ? null : this.zeroTimeout,
      );
      if (n < 0) {
        if (-n === libc.EINTR) continue;
        throw new AioError("io_getevents", -n);
      }
      const v = this.eventsView;
      const out: AioCompletion[] = [];
      for (let i = 0; i < n; i++) {
        const o = i * IoEvent.size;
        out.push({
          data: v.getBigUint64(o + IoEvent.data, true),
          res: Number(v.getBigInt64(o + IoEvent.res, true)),
        });
      }
      return out;
    }
  }

  /** Release the context (the kernel waits for requests still in flight). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    libc.ioDestroy(this.ctx);
  }
}

/**
 * Where each ArrayBuffer's memory starts, once asked: a batch's buffers are off-heap and never move
 * (AioBatch), and asking the runtime for a view's pointer (Deno.UnsafePointer.of) cost microseconds
 * per call, two calls per request in the socket transport's turn (bench/README.md, issue 20).
 */
const bufferAddresses = new WeakMap<ArrayBufferLike, number>();

/** The address of `buf`'s first byte (a number: user-space addresses stay below 2^47). */
function viewAddress(buf: Uint8Array): number {
  const memory = buf.buffer;
  let base = bufferAddresses.get(memory);
  if (base === undefined) {
    base = Number(libc.addressOf(new Uint8Array(memory)));
    bufferAddresses.set(memory, base);
  }
  return base + buf.byteOffset;
}

/** IOCB_CMD_PREAD (linux/aio_abi.h). */
export const IOCB_CMD_PREAD = 0;
/** How long (s) a batch waits for completions that sockets deliver inside io_submit (an invariant). */
const BATCH_WAIT_S = 1n;

/**
 * Reads and writes on several non-blocking sockets in one io_submit (plus one io_getevents), for the
 * socket transport's turn (src/transport/socket_server.ts). A socket's AIO read or write runs inside
 * io_submit exactly as read(2)/write(2) would (sock_read_iter/sock_write_iter, O_NONBLOCK: EAGAIN
 * instead of waiting; offset 0), so the results are the plain calls' results; what changes is that
 * every peer those calls wake is woken inside ONE system call. Each wake-up of a blocked client may
 * preempt the daemon at the end of the call that caused it (the client and the daemon share a CPU
 * under load), so N writes cost up to N preemptions, one batch at most one (docs/domains.md, issue 20).
 *
 * Buffers must be ArrayBuffer-backed off-heap memory (not moved by V8) and stay untouched until run()
 * returns. An operation io_submit refuses (say EBADF) is done again with the plain call, so run()
 * always answers every queued operation.
 */
export class AioBatch {
  /** iocbs, the pointer array io_submit takes, the events and a timespec, off-heap. */
  private readonly ctl: ArrayBuffer;
  private readonly words: Uint32Array;
  private readonly ptrs: Uint8Array;
  private readonly events: Uint8Array;
  private readonly eventWords: Int32Array;
  private readonly timeout: Uint8Array;
  private readonly bufs: Uint8Array[] = [];
  private readonly fds: number[] = [];
  private readonly writes: boolean[] = [];
  /** run()'s answers: bytes transferred or -errno, per queued operation. */
  readonly results: Int32Array;
  private destroyed = false;

  private constructor(private readonly ctx: bigint, readonly capacity: number) {
    this.ctl = new ArrayBuffer(capacity * (Iocb.size + 8 + IoEvent.size) + 16);
    this.words = new Uint32Array(this.ctl, 0, (capacity * Iocb.size) / 4);
    this.ptrs = new Uint8Array(this.ctl, capacity * Iocb.size, capacity * 8);
    const evOff = capacity * (Iocb.size + 8);
    this.events = new Uint8Array(this.ctl, evOff, capacity * IoEvent.size);
    this.eventWords = new Int32Array(this.ctl, evOff, (capacity * IoEvent.size) / 4);
    this.timeout = new Uint8Array(this.ctl, evOff + capacity * IoEvent.size, 16);
    new DataView(this.ctl).setBigUint64(evOff + capacity * IoEvent.size, BATCH_WAIT_S, true); // tv_sec
    const base = libc.addressOf(new Uint8Array(this.ctl, 0, Iocb.size));
    const pv = new DataView(this.ctl, capacity * Iocb.size, capacity * 8);
    for (let i = 0; i < capacity; i++) pv.setBigUint64(i * 8, base + BigInt(i * Iocb.size), true);
    this.results = new Int32Array(capacity);
  }

  /** A batch of up to `capacity` operations, or null where the kernel offers no AIO (ENOSYS...). */
  static create(capacity = 64): AioBatch | null {
    const id = new BigUint64Array(1);
    return libc.ioSetup(capacity, id) < 0 ? null : new AioBatch(id[0], capacity);
  }

  /** Operations queued for the next run(). */
  get size(): number {
    return this.bufs.length;
  }

  /** Queue write(fd, buf). False if the batch is full (run() it first). */
  write(fd: number, buf: Uint8Array): boolean {
    return this.queue(fd, buf, true);
  }

  /** Queue read(fd, buf). False if the batch is full (run() it first). */
  read(fd: number, buf: Uint8Array): boolean {
    return this.queue(fd, buf, false);
  }

  private queue(fd: number, buf: Uint8Array, write: boolean): boolean {
    const i = this.bufs.length;
    if (i >= this.capacity) return false;
    const w = this.words;
    const o = (i * Iocb.size) / 4;
    w.fill(0, o, o + Iocb.size / 4);
    w[o + Iocb.data / 4] = i;
    w[o + Iocb.opcode / 4] = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD; // u16 opcode, u16 reqprio 0
    w[o + Iocb.fildes / 4] = fd;
    const addr = viewAddress(buf);
    w[o + Iocb.buf / 4] = addr >>> 0;
    w[o + Iocb.buf / 4 + 1] = Math.floor(addr / 0x1_0000_0000);
    w[o + Iocb.nbytes / 4] = buf.length;
    this.bufs.push(buf);
    this.fds.push(fd);
    this.writes.push(write);
    return true;
  }

  /** Perform every queued operation; `results[i]` answers the i-th. Clears the queue. */
  run(): Int32Array {
    const n = this.bufs.length;
    let submitted = n === 0 ? 0 : libc.ioSubmit(this.ctx, n, this.ptrs);
    if (submitted < 0) submitted = 0;
    let done = 0;
    while (done < submitted) {
      const got = libc.ioGetevents(this.ctx, submitted - done, submitted - done, this.events, this.timeout);
      if (got === -libc.EINTR) continue;
      // Socket operations complete inside io_submit: anything else is a broken invariant.
      if (got <= 0) throw new AioError("io_getevents (socket batch)", got < 0 ? -got : libc.EIO);
      for (let e = 0; e < got; e++) {
        const o = (e * IoEvent.size) / 4;
        // res is an s64 holding a byte count or -errno: its low word, signed, is the value.
        this.results[this.eventWords[o + IoEvent.data / 4]] = this.eventWords[o + IoEvent.res / 4];
      }
      done += got;
    }
    // Refused at submission (io_submit stops at the first it cannot queue): the plain calls.
    for (let i = submitted; i < n; i++) {
      this.results[i] = this.writes[i]
        ? libc.write(this.fds[i], this.bufs[i])
        : libc.read(this.fds[i], this.bufs[i]);
    }
    this.bufs.length = 0;
    this.fds.length = 0;
    this.writes.length = 0;
    return this.results;
  }

  /** Release the context. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    libc.ioDestroy(this.ctx);
  }
}
