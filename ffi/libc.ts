// libc through Deno.dlopen: the one binding of the C library for the whole program. Deno exposes no
// file-descriptor numbers, no epoll, ioctl or mmap, and no datagram Unix sockets without --unstable,
// so the server loop (src/transport), the Xen platforms (src/xen), the file backend's direct and
// asynchronous log (src/backend), libtdb's buffers and the daemon contract (src/cli/sys.ts) all reach
// the kernel through this module and nothing else opens libc.
//
// errno is read through __errno_location right after a failed call (Deno does not promise to keep it
// across other FFI calls, so nothing may run in between). Calls return -errno (or throw SysError,
// which carries it); errnoName() turns the number into the name an operator can look up.

const lib = Deno.dlopen("libc.so.6", {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  isatty: { parameters: ["i32"], result: "i32" },
  setsid: { parameters: [], result: "i32" },
  // fcntl is variadic; on x86-64 an integer third argument is passed like a fixed one.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  // ioctl is variadic; on x86-64 a third integer/pointer argument is passed like a fixed one.
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  free: { parameters: ["pointer"], result: "void" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  // prctl(2) is variadic; on x86-64 its integer and pointer arguments travel like fixed ones.
  prctl: { parameters: ["i32", "buffer", "u64", "u64", "u64"], result: "i32" },
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // The same poll on Deno's blocking thread pool: returns a Promise, the event loop keeps running.
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // The same epoll_wait on Deno's blocking thread pool: the event loop (timers, signals) runs meanwhile.
  epoll_wait_async: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // Linux AIO has no libc wrapper: syscall(2), which is variadic; on x86-64 integer and pointer
  // arguments travel like fixed ones (ffi/aio.ts).
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
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  clock_getres: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});

import { errnoName } from "./errno.ts";
export * from "./errno.ts";

const sym = lib.symbols;
const enc = new TextEncoder();

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const POLLIN = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_MONOTONIC_COARSE = 6;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;

/** struct pollfd and struct sockaddr_un (checked by tests/xen/abi_test.ts). */
export const PollFd = { size: 8, fd: 0, events: 4, revents: 6 } as const;
export const SockaddrUn = { family: 0, path: 2, pathSize: 108 } as const;

/** errno of the last failed call (read it immediately after the call). */
export function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** errno = 0, so that a library call that fails without setting it is not blamed on an older one. */
export function clearErrno(): void {
  const p = sym.__errno_location();
  if (p !== null) new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4))[0] = 0;
}

/** A failed system call: `op` and the errno it left. */
export class SysError extends Error {
  constructor(readonly op: string, readonly errno: number) {
    super(`${op} failed: ${errnoName(errno)}`);
    this.name = "SysError";
  }
}

function cstr(s: string): Uint8Array {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

// ---- files -------------------------------------------------------------------------------------

/** open(2) with O_CLOEXEC: the descriptor, or -errno. */
export function tryOpen(path: string, flags: number, mode = 0o600): number {
  const fd = sym.open(cstr(path), flags | O_CLOEXEC, mode);
  return fd < 0 ? -errno() : fd;
}

/** open(2) with O_CLOEXEC; throws SysError. */
export function open(path: string, flags: number, mode = 0o600): number {
  const fd = tryOpen(path, flags, mode);
  if (fd < 0) throw new SysError(`open(${path})`, -fd);
  return fd;
}

export function close(fd: number): void {
  sym.close(fd);
}

/** read(2): bytes read, or -errno. */
export function read(fd: number, buf: Uint8Array): number {
  const n = Number(sym.read(fd, buf, BigInt(buf.length)));
  return n < 0 ? -errno() : n;
}

/** write(2) of `buf`'s first `length` bytes (all by default; no view made for fewer): bytes written, or -errno. */
export function write(fd: number, buf: Uint8Array, length = buf.length): number {
  const n = Number(sym.write(fd, buf, BigInt(length)));
  return n < 0 ? -errno() : n;
}

/** Write all of `bytes` (retrying short writes); false on an error or a zero-byte write. */
export function writeAll(fd: number, bytes: Uint8Array): boolean {
  let off = 0;
  while (off < bytes.length) {
    const n = write(fd, off === 0 ? bytes : bytes.subarray(off));
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

/** pwrite(2): bytes written, or -errno. */
export function pwrite(fd: number, buf: Uint8Array, offset: number): number {
  const n = Number(sym.pwrite(fd, buf, BigInt(buf.length), BigInt(offset)));
  return n < 0 ? -errno() : n;
}

/** ftruncate(2); throws SysError. */
export function ftruncate(fd: number, length: number): void {
  if (sym.ftruncate(fd, BigInt(length)) < 0) throw new SysError("ftruncate", errno());
}

/** ftruncate(2): 0, or -errno. */
export function tryFtruncate(fd: number, length: number): number {
  return sym.ftruncate(fd, BigInt(length)) < 0 ? -errno() : 0;
}

export function unlink(path: string): void {
  sym.unlink(cstr(path));
}

/** flock(2): 0, or -errno (-EWOULDBLOCK: another process holds the lock). */
export function flock(fd: number, op: number): number {
  return sym.flock(fd, op) < 0 ? -errno() : 0;
}

/** dup2(2): make `to` a copy of `from`. */
export function dup2(from: number, to: number): void {
  sym.dup2(from, to);
}

export function isatty(fd: number): boolean {
  return sym.isatty(fd) === 1;
}

/** fcntl(2) with an integer argument: the call's result, or -errno. */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  const r = sym.fcntl(fd, cmd, arg);
  return r < 0 ? -errno() : r;
}

/**
 * execve(2) with NULL-terminated arrays of C-string pointers: on success it does not return (the
 * process is the new program); on failure it returns -errno and the process carries on unchanged.
 */
export function execve(path: Uint8Array, argv: Uint8Array, envp: Uint8Array): number {
  sym.execve(path, argv, envp);
  return -errno();
}

/** Start a new session (a detached daemon has no controlling terminal); false on failure. */
export function setsid(): boolean {
  return sym.setsid() >= 0;
}

const PR_SET_NAME = 15;
/** The kernel keeps 16 bytes of a task's name (TASK_COMM_LEN), NUL included. */
const TASK_COMM_LEN = 16;

/**
 * prctl(PR_SET_NAME): the calling thread's name (the kernel's comm: /proc/PID/comm, what pgrep and
 * ps -o comm show), cut to what the kernel keeps. 0, or -errno.
 */
export function setThreadName(name: string): number {
  const bytes = enc.encode(name).slice(0, TASK_COMM_LEN - 1);
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes);
  return sym.prctl(PR_SET_NAME, buf, 0n, 0n, 0n) === 0 ? 0 : -errno();
}

/** malloc_trim(3): give free C-heap memory back to the system; true if any was released. */
export function mallocTrim(): boolean {
  return sym.malloc_trim(0n) === 1;
}

/** madvise(2)'s advice that drops pages from this process's page tables (Linux: 4). */
export const MADV_DONTNEED = 4;

/** madvise(2) on [address, address + length): 0, or -errno. */
export function madvise(address: bigint, length: bigint, advice: number): number {
  return sym.madvise(address, length, advice) === 0 ? 0 : -errno();
}

/** ioctl(2) with a pointer argument: the call's result, or -errno. */
export function ioctl(fd: number, request: number, arg: Uint8Array): number {
  const r = sym.ioctl(fd, BigInt(request), arg);
  return r < 0 ? -errno() : r;
}

/** statvfs(2) into `buf` (struct statvfs): 0, or -errno. */
export function statvfs(path: string, buf: Uint8Array): number {
  return sym.statvfs(cstr(path), buf) < 0 ? -errno() : 0;
}

/** free(3) memory a C library malloc()ed and handed to us (libtdb's returned data). */
export function free(p: Deno.PointerValue): void {
  sym.free(p);
}

// ---- memory ------------------------------------------------------------------------------------

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

/** The numeric address of a buffer, for structs that carry pointers (privcmd, AIO). */
export function addressOf(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

// ---- Unix sockets ------------------------------------------------------------------------------

/**
 * sockaddr_un for `path`; a leading "@" names an abstract socket (systemd's NOTIFY_SOCKET may be one).
 * Throws Error if the path does not fit sun_path.
 */
function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  const abstract = path.startsWith("@");
  const name = enc.encode(abstract ? path.slice(1) : path);
  if (name.length >= SockaddrUn.pathSize) {
    throw new SysError(
      `socket path of ${name.length} bytes (max ${SockaddrUn.pathSize - 1}): ${path}`,
      36, /* ENAMETOOLONG */
    );
  }
  const addr = new Uint8Array(SockaddrUn.path + SockaddrUn.pathSize);
  new DataView(addr.buffer).setUint16(SockaddrUn.family, AF_UNIX, true);
  addr.set(name, SockaddrUn.path + (abstract ? 1 : 0));
  // Abstract names are exactly as long as given; filesystem names carry their NUL.
  return { addr, len: SockaddrUn.path + (abstract ? 1 + name.length : name.length + 1) };
}

/** A listening, non-blocking Unix stream socket bound to `path`; throws SysError. */
export function listenUnix(path: string, backlog = 4096): number {
  const sa = sockaddrUn(path);
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno());
  if (sym.bind(fd, sa.addr, sa.len) < 0) {
    const e = errno();
    sym.close(fd);
    throw new SysError(`bind(${path})`, e);
  }
  if (sym.listen(fd, backlog) < 0) {
    const e = errno();
    sym.close(fd);
    throw new SysError(`listen(${path})`, e);
  }
  return fd;
}

/** accept4(2), non-blocking and close-on-exec: the new descriptor, or -errno (-EAGAIN: none waiting). */
export function accept(fd: number): number {
  const c = sym.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return c < 0 ? -errno() : c;
}

/** A blocking Unix stream socket connected to `path` (clients, benchmarks); throws SysError. */
export function connectUnix(path: string): number {
  const sa = sockaddrUn(path);
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno());
  if (sym.connect(fd, sa.addr, sa.len) < 0) {
    const e = errno();
    sym.close(fd);
    throw new SysError(`connect(${path})`, e);
  }
  return fd;
}

/** A non-blocking Unix datagram socket bound to `path` (a stale file there is replaced). */
export function bindDatagram(path: string): number {
  const fd = datagramSender();
  sym.unlink(cstr(path));
  const sa = sockaddrUn(path);
  if (sym.bind(fd, sa.addr, sa.len) < 0) {
    const e = errno();
    sym.close(fd);
    throw new SysError(`bind(${path})`, e);
  }
  return fd;
}

/** An unbound datagram socket for sending only (non-blocking unless `blocking`); throws SysError. */
export function datagramSender(blocking = false): number {
  const fd = sym.socket(AF_UNIX, SOCK_DGRAM | (blocking ? 0 : SOCK_NONBLOCK) | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new SysError("socket", errno());
  return fd;
}

/** Send one datagram to the socket at `path` (`flags`: MSG_DONTWAIT by default): bytes sent, or -errno. */
export function sendTo(fd: number, path: string, data: Uint8Array, flags = MSG_DONTWAIT): number {
  const sa = sockaddrUn(path);
  const n = Number(sym.sendto(fd, data, BigInt(data.length), flags, sa.addr, sa.len));
  return n < 0 ? -errno() : n;
}

/** Receive one datagram without blocking: its length, or -errno (-EAGAIN when none is queued). */
export function recv(fd: number, buf: Uint8Array): number {
  const n = Number(sym.recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT));
  return n < 0 ? -errno() : n;
}

/** recv(2) with MSG_PEEK (non-blocking): the bytes stay in the socket. Bytes copied, or -errno. */
export function recvPeek(fd: number, buf: Uint8Array): number {
  const n = Number(sym.recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT | MSG_PEEK));
  return n < 0 ? -errno() : n;
}

// ---- waiting -----------------------------------------------------------------------------------

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

/** A non-blocking eventfd (a wake-up flag local to this process); throws SysError. */
export function eventfd(): number {
  const fd = sym.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new SysError("eventfd", errno());
  return fd;
}

// ---- clocks ------------------------------------------------------------------------------------

/** struct timespec (tv_sec i64, tv_nsec i64), read as 32-bit halves: no BigInt per call. */
const timespecBytes = new Uint8Array(16);
const timespec = new Int32Array(timespecBytes.buffer);

function timespecMs(): number {
  return (timespec[0] + timespec[1] * 2 ** 32) * 1000 + timespec[2] / 1e6;
}

/**
 * clock_gettime(2) of `clock`, in ms. CLOCK_MONOTONIC_COARSE is answered by the vDSO even where the
 * kernel's clock source has no vDSO path (a Xen PV dom0 whose TSC Xen does not call stable: then
 * CLOCK_MONOTONIC, and performance.now(), are system calls); it has the kernel tick's resolution.
 */
export function clockMs(clock: number): number {
  if (sym.clock_gettime(clock, timespecBytes) !== 0) throw new SysError("clock_gettime", errno());
  return timespecMs();
}

/** clock_getres(2) of `clock`, in ms. */
export function clockResolutionMs(clock: number): number {
  if (sym.clock_getres(clock, timespecBytes) !== 0) throw new SysError("clock_getres", errno());
  return timespecMs();
}

/** An epoll instance with a fixed-size event buffer; an event's `data` is its fd. */
export class Epoll {
  readonly fd: number;
  private readonly ev = new Uint8Array(12);
  private readonly evView = new DataView(this.ev.buffer);
  private readonly events: Uint8Array;
  private readonly eventsView: DataView;

  constructor(readonly maxEvents = 256) {
    this.fd = sym.epoll_create1(SOCK_CLOEXEC);
    if (this.fd < 0) throw new SysError("epoll_create1", errno());
    this.events = new Uint8Array(12 * maxEvents);
    this.eventsView = new DataView(this.events.buffer);
  }

  private ctl(op: number, fd: number, mask: number): void {
    // struct epoll_event is packed on x86-64: u32 events, u64 data.
    this.evView.setUint32(0, mask, true);
    this.evView.setUint32(4, fd, true);
    this.evView.setUint32(8, 0, true);
    if (sym.epoll_ctl(this.fd, op, fd, this.ev) < 0 && op !== EPOLL_CTL_DEL) {
      throw new SysError(`epoll_ctl(${op}, ${fd})`, errno());
    }
  }

  add(fd: number, mask: number): void {
    this.ctl(EPOLL_CTL_ADD, fd, mask);
  }
  modify(fd: number, mask: number): void {
    this.ctl(EPOLL_CTL_MOD, fd, mask);
  }
  remove(fd: number): void {
    this.ctl(EPOLL_CTL_DEL, fd, 0);
  }

  /** Wait up to `timeoutMs` (-1 = forever); returns the number of ready events (0 on EINTR). */
  wait(timeoutMs: number): number {
    const n = sym.epoll_wait(this.fd, this.events, this.maxEvents, timeoutMs);
    return n < 0 ? 0 : n;
  }

  /**
   * The same wait on a pool thread: Deno's event loop (timers, signal handlers, promises) runs while
   * it waits, and runs at least once before the promise resolves, even for timeout 0. The event
   * buffer is the one wait() uses: do not call wait() before this has resolved.
   */
  async waitAsync(timeoutMs: number): Promise<number> {
    const n = await sym.epoll_wait_async(this.fd, this.events, this.maxEvents, timeoutMs);
    return n < 0 ? 0 : n;
  }

  eventFd(i: number): number {
    return this.eventsView.getUint32(i * 12 + 4, true);
  }
  eventMask(i: number): number {
    return this.eventsView.getUint32(i * 12, true);
  }

  close(): void {
    sym.close(this.fd);
  }
}

// ---- Linux AIO (the system calls; ffi/aio.ts builds the context on them) ------------------------

/** The system call numbers (x86-64). */
export const SysIo = { setup: 206, destroy: 207, getevents: 208, submit: 209 } as const;
const SYS_IO_SETUP = BigInt(SysIo.setup);
const SYS_IO_DESTROY = BigInt(SysIo.destroy);
const SYS_IO_GETEVENTS = BigInt(SysIo.getevents);
const SYS_IO_SUBMIT = BigInt(SysIo.submit);

/** io_setup(2): 0 (the context id in `id[0]`), or -errno. */
export function ioSetup(maxEvents: number, id: BigUint64Array): number {
  return sym.io_setup(SYS_IO_SETUP, maxEvents, id) < 0n ? -errno() : 0;
}

export function ioDestroy(ctx: bigint): void {
  sym.io_destroy(SYS_IO_DESTROY, ctx);
}

/** io_submit(2) of `n` iocbs (pointer array `ptrs`): the number submitted, or -errno. */
export function ioSubmit(ctx: bigint, n: number, ptrs: Uint8Array): number {
  const r = sym.io_submit(SYS_IO_SUBMIT, ctx, BigInt(n), ptrs);
  return r < 0n ? -errno() : Number(r);
}

/**
 * io_getevents(2): completions into `events` (at least `min`, at most `max`); `timeout` a zeroed
 * struct timespec (poll) or null (wait). The number collected, or -errno.
 */
export function ioGetevents(
  ctx: bigint,
  min: number,
  max: number,
  events: Uint8Array,
  timeout: Uint8Array | null,
): number {
  const r = timeout === null
    ? sym.io_getevents_wait(SYS_IO_GETEVENTS, ctx, BigInt(min), BigInt(max), events, null)
    : sym.io_getevents(SYS_IO_GETEVENTS, ctx, BigInt(min), BigInt(max), events, timeout);
  return r < 0n ? -errno() : Number(r);
}

/** A FIFO (named pipe) at `path`, replacing whatever file was there; throws SysError. */
export function mkfifo(path: string, mode = 0o600): void {
  const p = cstr(path);
  sym.unlink(p);
  if (sym.mkfifo(p, mode) < 0) throw new SysError(`mkfifo(${path})`, errno());
}
