// Linux native AIO (io_setup, io_submit, io_getevents, io_destroy) through syscall(2), for the file
// backend's group commit: the group's O_DIRECT|O_DSYNC write is submitted and the daemon goes on
// serving while the disk flushes; an eventfd in the server's epoll set says when it completed. No
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
