// libc through Deno.dlopen: the socket and epoll calls of the server loop. Deno's own socket layer
// costs ~1.7x a C epoll loop per round trip; calling epoll directly from one blocking JS loop matches
// C (research/platform.md §9). Only this module touches raw file descriptors.
import { SysError } from "../../ffi/libc.ts";

const lib = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});

const sym = lib.symbols;

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDHUP = 0x2000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EAGAIN = 11;
export const EINTR = 4;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/** errno of the last failed call on this thread (read immediately after the call). */
export function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

const enc = new TextEncoder();

/** Create a listening, non-blocking Unix stream socket bound to `path`. Throws with errno on failure. */
export function listenUnix(path: string, backlog = 4096): number {
  const bytes = enc.encode(path);
  // ENAMETOOLONG: sun_path holds 107 bytes and a NUL.
  if (bytes.length >= 108) throw new SysError(`socket path of ${bytes.length} bytes (max 107): ${path}`, 36);
  const fd = sym.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`socket() failed: errno ${errno()}`);
  const sa = new Uint8Array(110);
  new DataView(sa.buffer).setUint16(0, AF_UNIX, true);
  sa.set(bytes, 2);
  if (sym.bind(fd, sa, 2 + bytes.length + 1) < 0) {
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

export function accept(fd: number): number {
  return sym.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

export function closeFd(fd: number): void {
  sym.close(fd);
}

export function read(fd: number, buf: Uint8Array): number {
  return Number(sym.read(fd, buf, BigInt(buf.length)));
}

export function write(fd: number, buf: Uint8Array): number {
  return Number(sym.write(fd, buf, BigInt(buf.length)));
}

/** Peer credentials of a Unix socket: {pid, uid, gid}, or null. */
export function peerCred(fd: number): { pid: number; uid: number; gid: number } | null {
  const cred = new Uint8Array(12);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 12, true);
  if (sym.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) < 0) return null;
  const dv = new DataView(cred.buffer);
  return { pid: dv.getInt32(0, true), uid: dv.getUint32(4, true), gid: dv.getUint32(8, true) };
}

/** An epoll instance with a fixed-size event buffer. `data` is the fd. */
export class Epoll {
  readonly fd: number;
  private readonly ev = new Uint8Array(12);
  private readonly evView = new DataView(this.ev.buffer);
  readonly events: Uint8Array;
  readonly eventsView: DataView;

  constructor(readonly maxEvents = 256) {
    this.fd = sym.epoll_create1(SOCK_CLOEXEC);
    if (this.fd < 0) throw new Error(`epoll_create1 failed: errno ${errno()}`);
    this.events = new Uint8Array(12 * maxEvents);
    this.eventsView = new DataView(this.events.buffer);
  }

  private ctl(op: number, fd: number, mask: number): void {
    // struct epoll_event is packed on x86-64: u32 events, u64 data.
    this.evView.setUint32(0, mask, true);
    this.evView.setUint32(4, fd, true);
    this.evView.setUint32(8, 0, true);
    if (sym.epoll_ctl(this.fd, op, fd, this.ev) < 0 && op !== EPOLL_CTL_DEL) {
      throw new Error(`epoll_ctl(${op}, ${fd}) failed: errno ${errno()}`);
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

  eventFd(i: number): number {
    return this.eventsView.getUint32(i * 12 + 4, true);
  }
  eventMask(i: number): number {
    return this.eventsView.getUint32(i * 12, true);
  }
}
