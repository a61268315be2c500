// Replacing the running process with another program while chosen file descriptors stay open: what
// a live update does last (cxenstored: execvp of the new binary with its listening socket, its
// event-channel device and every client socket inherited). Deno has no exec, so this is libc through
// the program's libc binding (ffi/libc.ts). Findings (docs/live-update.md, tests/live_update/exec_test.ts):
//
//  - execve() from the JavaScript thread replaces the whole process: Deno's other threads (V8 workers,
//    tokio) are ended by the kernel, the pid stays the same (the pid file, systemd's MainPID and every
//    peer's SO_PEERCRED stay true), and so do the session, the process group and the rlimits.
//  - Every descriptor the daemon opens is O_CLOEXEC (accept4/socket with SOCK_CLOEXEC, Deno's own
//    files too), so none leaks into the new program unless it is named here: `keepAcrossExec` clears
//    FD_CLOEXEC on exactly the descriptors the state names, just before the exec.
//  - O_NONBLOCK belongs to the open file, so it crosses the exec: cxenstored's sockets are blocking
//    and it depends on that (setNonBlocking); dxenstored's are non-blocking.
//  - The signal mask and ignored signals are inherited across execve. Deno ignores SIGPIPE (inherited,
//    harmless: cxenstored ignores it too); handlers Deno installed reset to the default.
//
// Nothing here runs unless a caller asks; the daemon does not use it yet (phase B of issue 16).

import * as libc from "../../ffi/libc.ts";

const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_NONBLOCK = libc.O_NONBLOCK;

export class ExecError extends Error {
  override name = "ExecError";
  constructor(readonly op: string, readonly errno: number, detail: string) {
    super(`${op}: ${detail} (errno ${errno})`);
  }
}

/** True if `fd` is open and will be closed by an exec. */
export function isCloseOnExec(fd: number): boolean {
  const flags = libc.fcntl(fd, F_GETFD);
  if (flags < 0) throw new ExecError("fcntl(F_GETFD)", -flags, `fd ${fd}`);
  return (flags & FD_CLOEXEC) !== 0;
}

function setCloseOnExec(fd: number, on: boolean): void {
  const flags = libc.fcntl(fd, F_GETFD);
  if (flags < 0) throw new ExecError("fcntl(F_GETFD)", -flags, `fd ${fd}`);
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  const r = next === flags ? 0 : libc.fcntl(fd, F_SETFD, next);
  if (r < 0) throw new ExecError("fcntl(F_SETFD)", -r, `fd ${fd}`);
}

/** Let `fds` survive the next exec (clears FD_CLOEXEC). Throws ExecError for a closed descriptor. */
export function keepAcrossExec(fds: Iterable<number>): void {
  for (const fd of fds) setCloseOnExec(fd, false);
}

/** Undo keepAcrossExec (the exec failed and the daemon goes on). */
export function closeAcrossExec(fds: Iterable<number>): void {
  for (const fd of fds) setCloseOnExec(fd, true);
}

/** True if `fd`'s open file is non-blocking (O_NONBLOCK, shared by every descriptor of that file). */
export function isNonBlocking(fd: number): boolean {
  const flags = libc.fcntl(fd, F_GETFL);
  if (flags < 0) throw new ExecError("fcntl(F_GETFL)", -flags, `fd ${fd}`);
  return (flags & O_NONBLOCK) !== 0;
}

/**
 * Make `fds` blocking or not. cxenstored creates its sockets blocking and, reading one that has no data
 * (EAGAIN), takes it for end of file and drops the client (readfd() in 4.17): descriptors are handed
 * over blocking, as cxenstored's own are, and whoever adopts them sets what it needs.
 */
export function setNonBlocking(fds: Iterable<number>, on: boolean): void {
  for (const fd of fds) {
    const flags = libc.fcntl(fd, F_GETFL);
    if (flags < 0) throw new ExecError("fcntl(F_GETFL)", -flags, `fd ${fd}`);
    const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    const r = next === flags ? 0 : libc.fcntl(fd, F_SETFL, next);
    if (r < 0) throw new ExecError("fcntl(F_SETFL)", -r, `fd ${fd}`);
  }
}

const enc = new TextEncoder();

/** A NULL-terminated array of C strings; `keep` holds the buffers alive for the duration of the call. */
function cStringArray(items: readonly string[], keep: Uint8Array[]): BigUint64Array {
  const ptrs = new BigUint64Array(items.length + 1);
  items.forEach((s, i) => {
    if (s.includes("\0")) throw new ExecError("execve", 22, `NUL inside argument ${i}`);
    const b = enc.encode(s + "\0");
    keep.push(b);
    ptrs[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
  });
  return ptrs;
}

/**
 * execve(path, argv, env): on success this never returns (the process is now `path`). On failure it
 * throws ExecError and the process carries on unchanged (e.g. ENOENT, EACCES, ENOEXEC, E2BIG).
 */
export function execve(path: string, argv: readonly string[], env: Readonly<Record<string, string>>): never {
  const keep: Uint8Array[] = [];
  const pathBuf = enc.encode(path + "\0");
  const argvArr = cStringArray(argv, keep);
  const envArr = cStringArray(Object.entries(env).map(([k, v]) => `${k}=${v}`), keep);
  const r = libc.execve(pathBuf, new Uint8Array(argvArr.buffer), new Uint8Array(envArr.buffer));
  keep.length = 0;
  throw new ExecError("execve", -r, path);
}

/** Close an inherited descriptor nobody adopts (a handed-over event channel without a platform). */
export function closeDescriptor(fd: number): void {
  libc.close(fd);
}
