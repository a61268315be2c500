// The few process-level calls the daemon contract needs and Deno does not offer, built on the one libc
// binding (ffi/libc.ts): setsid() for the detached daemon, open/flock/ftruncate for a locked pid file,
// dup2 to let go of inherited stdio, Unix datagrams for sd_notify and syslog (Deno's datagram Unix
// sockets need --unstable), the probe whether a daemon serves a socket, and the process's comm name.
// Raw file descriptors never leave this module except as opaque numbers owned by its callers.

import * as libc from "../../ffi/libc.ts";

/** Start a new session (the detached daemon has no controlling terminal). Returns false on failure. */
export function setsid(): boolean {
  return libc.setsid();
}

export function isatty(fd: number): boolean {
  return libc.isatty(fd);
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
  const dn = libc.tryOpen("/dev/null", fd === 0 ? libc.O_RDONLY : libc.O_WRONLY, 0);
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
  for (const f of fds) libc.dup2(dn, f);
  libc.close(dn);
}

export type LockResult = { fd: number } | { busy: true } | { error: string };

/**
 * Open (creating, mode 0644) and exclusively lock `path` without blocking. The lock lives as long as
 * the returned fd stays open, i.e. the daemon's lifetime; it is released by the kernel when the
 * process dies, so a stale pid file never blocks a restart.
 */
export function openLocked(path: string): LockResult {
  const fd = libc.tryOpen(path, libc.O_RDWR | libc.O_CREAT, 0o644);
  if (fd < 0) return { error: `open(${path}): ${libc.errnoName(-fd)}` };
  const r = libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB);
  if (r < 0) {
    libc.close(fd);
    return -r === libc.EWOULDBLOCK ? { busy: true } : { error: `flock(${path}): ${libc.errnoName(-r)}` };
  }
  return { fd };
}

/** Replace the whole content of the (locked) file behind `fd`. */
export function rewrite(fd: number, text: string): boolean {
  if (libc.tryFtruncate(fd, 0) < 0) return false;
  const b = new TextEncoder().encode(text);
  // Called once per fd, right after openLocked: the file offset is still 0.
  return libc.write(fd, b) === b.length;
}

export function closeFd(fd: number): void {
  libc.close(fd);
}

/** Send one datagram to the Unix socket at `path` (a fresh socket per message). */
export function sendDatagram(path: string, payload: Uint8Array): boolean {
  let fd: number;
  try {
    fd = libc.datagramSender(true);
  } catch {
    return false;
  }
  try {
    return libc.sendTo(fd, path, payload, libc.MSG_NOSIGNAL) === payload.length;
  } catch {
    return false; // the path does not fit sun_path
  } finally {
    libc.close(fd);
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
  return libc.setThreadName(name) === 0;
}
