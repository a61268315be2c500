// libc through Deno.dlopen: the system calls the Xen platforms need (src/xen/real, src/xen/sim) —
// files, ioctl, mmap, FIFOs, poll, eventfd. Deno exposes no file-descriptor numbers
// and no ioctl or mmap, so the Xen device interfaces are only reachable this way. The Unix-socket
// server has its own small binding (src/server/libc.ts); this one is for everything below src/xen.
//
// errno is read through __errno_location right after a failed call (Deno does not promise to keep it
// across other FFI calls, so nothing may run in between).

const lib = Deno.dlopen("libc.so.6", {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ioctl is variadic; on x86-64 a third integer/pointer argument is passed like a fixed one.
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // The same poll on Deno's blocking thread pool: returns a Promise, the event loop keeps running.
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  unlink: { parameters: ["buffer"], result: "i32" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});

const sym = lib.symbols;
const enc = new TextEncoder();

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const POLLIN = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** struct pollfd (checked by tests/xen/abi_test.ts). */
export const PollFd = { size: 8, fd: 0, events: 4, revents: 6 } as const;

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOTTY = 25;
export const EPIPE = 32;
export const ECONNREFUSED = 111;

/** errno of the last failed call (read it immediately after the call). */
export function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** A failed system call: `op` and the errno it left. */
export class SysError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op} failed: errno ${errno}`);
    this.name = "SysError";
  }
}

function cstr(s: string): Uint8Array {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** open(2) without throwing: the descriptor, or -errno (e.g. -ENXIO: a FIFO nobody reads). */
export function openFd(path: string, flags: number, mode = 0o600): number {
  const fd = sym.open(cstr(path), flags | O_CLOEXEC, mode);
  return fd < 0 ? -errno() : fd;
}

/** open(2); throws SysError. */
export function open(path: string, flags: number, mode = 0o600): number {
  const fd = sym.open(cstr(path), flags | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError(`open(${path})`, errno());
  return fd;
}

export function close(fd: number): void {
  sym.close(fd);
}

/** pwrite(2): bytes written, or -errno. */
export function pwrite(fd: number, buf: Uint8Array, offset: number): number {
  const n = Number(sym.pwrite(fd, buf, BigInt(buf.length), BigInt(offset)));
  return n < 0 ? -errno() : n;
}

/** read(2): bytes read, or -errno. */
export function read(fd: number, buf: Uint8Array): number {
  const n = Number(sym.read(fd, buf, BigInt(buf.length)));
  return n < 0 ? -errno() : n;
}

/** write(2): bytes written, or -errno. */
export function write(fd: number, buf: Uint8Array): number {
  const n = Number(sym.write(fd, buf, BigInt(buf.length)));
  return n < 0 ? -errno() : n;
}

/** ioctl(2) with a pointer argument: the call's result, or -errno. */
export function ioctl(fd: number, request: number, arg: Uint8Array): number {
  const r = sym.ioctl(fd, BigInt(request), arg);
  return r < 0 ? -errno() : r;
}

/** A shared mapping of `length` bytes of `fd` at `offset`, as an ArrayBuffer over that memory. */
export interface Mapping {
  readonly pointer: Deno.PointerObject;
  readonly length: number;
  /** The mapped bytes (an external ArrayBuffer: no copy). Invalid after unmap(). */
  readonly bytes: Uint8Array;
}

/** mmap(2) MAP_SHARED, read-write; throws SysError. */
export function mmapShared(fd: number, length: number, offset = 0n): Mapping {
  const p = sym.mmap(null, BigInt(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  // MAP_FAILED is (void *)-1.
  if (p === null || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) {
    throw new SysError("mmap", errno());
  }
  return { pointer: p, length, bytes: new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, length)) };
}

/** munmap(2). Every view of the mapping must be dropped first: touching it afterwards is a crash. */
export function munmap(m: Mapping): void {
  sym.munmap(m.pointer, BigInt(m.length));
}

export function ftruncate(fd: number, length: number): void {
  if (sym.ftruncate(fd, BigInt(length)) < 0) throw new SysError("ftruncate", errno());
}

/** The numeric address of a buffer, for structs that carry pointers (privcmd). */
export function addressOf(buf: Uint8Array): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
}

function pollfds(fds: readonly number[]): Uint8Array {
  const b = new Uint8Array(PollFd.size * fds.length);
  const dv = new DataView(b.buffer);
  fds.forEach((fd, i) => {
    dv.setInt32(PollFd.size * i + PollFd.fd, fd, true);
    dv.setInt16(PollFd.size * i + PollFd.events, POLLIN, true);
  });
  return b;
}

/** Block (the whole JS thread) until one of `fds` is readable or `timeoutMs` passes; true if readable. */
export function pollReadable(fds: readonly number[], timeoutMs: number): boolean {
  return sym.poll(pollfds(fds), BigInt(fds.length), timeoutMs) > 0;
}

/** A fixed set of descriptors to poll for reading, built once (for loops that wait on the same fds). */
export class PollSet {
  private readonly fds: Uint8Array;
  private readonly count: bigint;

  constructor(fds: readonly number[]) {
    this.fds = pollfds(fds);
    this.count = BigInt(fds.length);
  }

  /** pollReadable() on these descriptors. */
  wait(timeoutMs: number): boolean {
    return sym.poll(this.fds, this.count, timeoutMs) > 0;
  }
}

/** Like pollReadable, on a pool thread: the event loop keeps running while it waits. */
export async function pollReadableAsync(fds: readonly number[], timeoutMs: number): Promise<boolean> {
  return (await sym.poll_async(pollfds(fds), BigInt(fds.length), timeoutMs)) > 0;
}

/** A non-blocking eventfd (a wake-up flag local to this process). */
export function eventfd(): number {
  const fd = sym.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new SysError("eventfd", errno());
  return fd;
}

export function unlink(path: string): void {
  sym.unlink(cstr(path));
}

/** A FIFO (named pipe) at `path`, replacing whatever file was there; throws SysError. */
export function mkfifo(path: string, mode = 0o600): void {
  const p = cstr(path);
  sym.unlink(p);
  if (sym.mkfifo(p, mode) < 0) throw new SysError(`mkfifo(${path})`, errno());
}
