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

/** The system call numbers (x86-64). */
export const SysIo = { setup: 206, destroy: 207, getevents: 208, submit: 209 } as const;
const SYS_IO_SETUP = BigInt(SysIo.setup);
const SYS_IO_DESTROY = BigInt(SysIo.destroy);
const SYS_IO_GETEVENTS = BigInt(SysIo.getevents);
const SYS_IO_SUBMIT = BigInt(SysIo.submit);

const lib = Deno.dlopen("libc.so.6", {
  // syscall(2) is variadic; on x86-64 integer and pointer arguments travel like fixed ones.
  io_setup: { name: "syscall", parameters: ["i64", "u32", "buffer"], result: "i64" },
  io_destroy: { name: "syscall", parameters: ["i64", "u64"], result: "i64" },
  io_submit: { name: "syscall", parameters: ["i64", "u64", "i64", "buffer"], result: "i64" },
  io_getevents: {
    name: "syscall",
    parameters: ["i64", "u64", "i64", "i64", "buffer", "buffer"],
    result: "i64",
  },
  io_getevents_wait: {
    name: "syscall",
    parameters: ["i64", "u64", "i64", "i64", "buffer", "pointer"],
    result: "i64",
  },
  __errno_location: { parameters: [], result: "pointer" },
});
const sym = lib.symbols;

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

function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** A failed AIO system call (errno), or a completion reporting an error (its negated result). */
export class AioError extends Error {
  override name = "AioError";
  constructor(readonly op: string, readonly errno: number) {
    super(`${op} failed: errno ${errno}`);
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
    const iocbAddr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(this.ctl, 0, Iocb.size)));
    new DataView(this.ctl).setBigUint64(Iocb.size, BigInt(iocbAddr), true);
  }

  /** A context for up to `maxEvents` requests in flight; throws AioError (ENOSYS, EAGAIN...). */
  static create(maxEvents = 4): AioContext {
    const id = new BigUint64Array(1);
    if (sym.io_setup(SYS_IO_SETUP, maxEvents, id) < 0n) throw new AioError("io_setup", errno());
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
    v.setBigUint64(Iocb.buf, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))), true);
    v.setBigUint64(Iocb.nbytes, BigInt(buf.length), true);
    v.setBigInt64(Iocb.offset, BigInt(offset), true);
    v.setUint32(Iocb.flags, IOCB_FLAG_RESFD, true);
    v.setUint32(Iocb.resfd, resfd, true);
    const n = sym.io_submit(SYS_IO_SUBMIT, this.ctx, 1n, this.iocbPtrs);
    if (n !== 1n) throw new AioError("io_submit", n < 0n ? errno() : 11 /* EAGAIN: not queued */);
  }

  /**
   * Completed requests: without waiting (`wait` false), or blocking until at least one completes.
   * Throws AioError if the call itself fails (EINTR is retried).
   */
  collect(wait: boolean): AioCompletion[] {
    for (;;) {
      const n = wait
        ? sym.io_getevents_wait(SYS_IO_GETEVENTS, this.ctx, 1n, BigInt(MAX_EVENTS), this.events, null)
        : sym.io_getevents(SYS_IO_GETEVENTS, this.ctx, 0n, BigInt(MAX_EVENTS), this.events, this.zeroTimeout);
      if (n < 0n) {
        const e = errno();
        if (e === 4 /* EINTR */) continue;
        throw new AioError("io_getevents", e);
      }
      const v = this.eventsView;
      const out: AioCompletion[] = [];
      for (let i = 0; i < Number(n); i++) {
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
    sym.io_destroy(SYS_IO_DESTROY, this.ctx);
  }
}
