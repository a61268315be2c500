// The few process-level libc calls the daemon contract needs and Deno does not offer: setsid() for the
// detached daemon, open/flock/ftruncate for a locked pid file, dup2 to let go of inherited stdio, and
// Unix datagrams for sd_notify and syslog (Deno's datagram Unix sockets need --unstable), the
// probe whether a daemon serves a socket, and prctl(PR_SET_NAME) for the process name. Raw file descriptors never leave this module except as
// opaque numbers owned by its callers.

const lib = Deno.dlopen("libc.so.6", {
  setsid: { parameters: [], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  isatty: { parameters: ["i32"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  // prctl(2) is variadic; on x86-64 its integer and pointer arguments travel like fixed ones.
  prctl: { parameters: ["i32", "buffer", "u64", "u64", "u64"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});
const sym = lib.symbols;

const O_WRONLY = 0o1;
const O_RDWR = 0o2;
const O_CREAT = 0o100;
const O_APPEND = 0o2000;
const O_CLOEXEC = 0o2000000;
const LOCK_EX = 2;
const LOCK_NB = 4;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const PR_SET_NAME = 15;
/** The kernel keeps 16 bytes of a task's name (TASK_COMM_LEN), NUL included. */
const TASK_COMM_LEN = 16;
export const EWOULDBLOCK = 11;
export const ENOENT = 2;

const enc = new TextEncoder();

export function errno(): number {
  const p = sym.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function cstr(s: string): Uint8Array {
  const b = enc.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** Start a new session (the detached daemon has no controlling terminal). Returns false on failure. */
export function setsid(): boolean {
  return sym.setsid() >= 0;
}

export function isatty(fd: number): boolean {
  return sym.isatty(fd) === 1;
}

/**
 * Point `fd` (0, 1 or 2) at /dev/null, letting go of an inherited pipe or terminal. Deno keeps its own
 * duplicates of the standard descriptors, so every descriptor open on the same file is redirected too
 * (dup2 over them, never close: the runtime still owns those numbers and may write to them).
 */
export function nullifyFd(fd: number): void {
  let target: string | null = null;
  try {
    target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch { /* no /proc: only fd itself */ }
  const dn = sym.open(cstr("/dev/null"), fd === 0 ? 0 : O_WRONLY, 0);
  if (dn < 0) return;
  const fds = [fd];
  if (target !== null && target !== "/dev/null") {
    for (const e of Deno.readDirSync("/proc/self/fd")) {
      const n = Number(e.name);
      if (n === fd || n === dn || n <= 2) continue;
      try {
        if (Deno.readLinkSync(`/proc/self/fd/${n}`) === target) fds.push(n);
      } catch { /* closed meanwhile */ }
    }
  }
  for (const f of fds) sym.dup2(dn, f);
  sym.close(dn);
}

export type LockResult = { fd: number } | { busy: true } | { error: string };

/**
 * Open (creating, mode 0644) and exclusively lock `path` without blocking. The lock lives as long as
 * the returned fd stays open, i.e. the daemon's lifetime; it is released by the kernel when the
 * process dies, so a stale pid file never blocks a restart.
 */
export function openLocked(path: string): LockResult {
  const fd = sym.open(cstr(path), O_RDWR | O_CREAT | O_CLOEXEC, 0o644);
  if (fd < 0) return { error: `open(${path}): errno ${errno()}` };
  if (sym.flock(fd, LOCK_EX | LOCK_NB) < 0) {
    const e = errno();
    sym.close(fd);
    return e === EWOULDBLOCK ? { busy: true } : { error: `flock(${path}): errno ${e}` };
  }
  return { fd };
}

/** Replace the whole content of the (locked) file behind `fd`. */
export function rewrite(fd: number, text: string): boolean {
  if (sym.ftruncate(fd, 0n) < 0) return false;
  const b = enc.encode(text);
  // Called once per fd, right after openLocked: the file offset is still 0.
  return Number(sym.write(fd, b, BigInt(b.length))) === b.length;
}

export function closeFd(fd: number): void {
  sym.close(fd);
}

/** Open `path` for appending (creating it with `mode`); returns the fd or -errno. */
export function openAppend(path: string, mode = 0o640): number {
  const fd = sym.open(cstr(path), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  return fd < 0 ? -errno() : fd;
}

export function writeAll(fd: number, bytes: Uint8Array): boolean {
  let off = 0;
  while (off < bytes.length) {
    const n = Number(sym.write(fd, off === 0 ? bytes : bytes.subarray(off), BigInt(bytes.length - off)));
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

/**
 * sockaddr_un for `path`; a leading "@" names an abstract socket (systemd's NOTIFY_SOCKET may be one).
 * Returns null if the path does not fit sun_path.
 */
function sockaddrUn(path: string): { addr: Uint8Array; len: number } | null {
  const abstract = path.startsWith("@");
  const name = enc.encode(abstract ? path.slice(1) : path);
  if (name.length + 1 > 108) return null;
  const addr = new Uint8Array(110);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2);
  // Abstract names are exactly as long as given; filesystem names carry their NUL.
  return { addr, len: 2 + (abstract ? 1 + name.length : name.length + 1) };
}

/** Send one datagram to the Unix socket at `path` (a fresh socket per message). */
export function sendDatagram(path: string, payload: Uint8Array): boolean {
  const sa = sockaddrUn(path);
  if (sa === null) return false;
  const fd = sym.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    const n = Number(sym.sendto(fd, payload, BigInt(payload.length), MSG_NOSIGNAL, sa.addr, sa.len));
    return n === payload.length;
  } finally {
    sym.close(fd);
  }
}

/** Does a server accept connections on the Unix socket `path` (a daemon is serving it)? */
export async function socketAccepts(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Set the calling thread's name (the kernel's comm: /proc/PID/comm, what pgrep and ps -o comm show).
 * Called from the main thread it names the process. Returns false if the kernel refused.
 */
export function setCommName(name: string): boolean {
  const bytes = enc.encode(name).slice(0, TASK_COMM_LEN - 1);
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes);
  return sym.prctl(PR_SET_NAME, buf, 0n, 0n, 0n) === 0;
}
