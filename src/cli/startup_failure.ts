// A start that cannot go on: one line saying what failed, on which path, and the errno name, e.g.
//
//   cannot bind the socket /run/xenstored/socket: EADDRINUSE (Address already in use)
//
// The daemon logs it at error level (the configured log: file, syslog or journal) and makes sure the
// terminal that started it shows it too: in the forking mode the detached daemon hands the line to
// the starting process (daemonize.ts), which prints it and exits with the status. Exit statuses
// (docs/operations.md): 0 serving or already running, 1 a start-up failure, 2 a usage or
// configuration error (bad option, --config-test finding errors).
import { SysError } from "../../ffi/libc.ts";
import { BackendError } from "../backend/backend.ts";

export const EXIT_STARTUP_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Linux x86-64 errno numbers a start can meet, with strerror's text. */
const ERRNO: Readonly<Record<number, readonly [string, string]>> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  5: ["EIO", "Input/output error"],
  6: ["ENXIO", "No such device or address"],
  11: ["EWOULDBLOCK", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  20: ["ENOTDIR", "Not a directory"],
  21: ["EISDIR", "Is a directory"],
  22: ["EINVAL", "Invalid argument"],
  23: ["ENFILE", "Too many open files in system"],
  24: ["EMFILE", "Too many open files"],
  28: ["ENOSPC", "No space left on device"],
  30: ["EROFS", "Read-only file system"],
  36: ["ENAMETOOLONG", "File name too long"],
  38: ["ENOSYS", "Function not implemented"],
  39: ["ENOTEMPTY", "Directory not empty"],
  40: ["ELOOP", "Too many levels of symbolic links"],
  74: ["EBADMSG", "Bad message"],
  88: ["ENOTSOCK", "Socket operation on non-socket"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  98: ["EADDRINUSE", "Address already in use"],
  111: ["ECONNREFUSED", "Connection refused"],
  122: ["EDQUOT", "Disk quota exceeded"],
};

/** The errno name of a number (ERRNO's, else "errno N"). */
export function errnoNameOf(n: number): string {
  return ERRNO[n]?.[0] ?? `errno ${n}`;
}

/** The name and the cause's text of whatever a start-up step threw. */
export function describeError(e: unknown): { errno: string; detail: string } {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof SysError) return { errno: errnoNameOf(e.errno), detail: ERRNO[e.errno]?.[1] ?? msg };
  if (e instanceof StartupError) return { errno: e.errno, detail: e.message };
  // Deno's errors carry the name: "Permission denied (os error 13): open '/x'".
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
    return { errno: code, detail: msg.replace(/ \(os error [0-9]+\).*$/, "") };
  }
  // A message that carries the number: wrapped Deno errors, "…: errno 13".
  const os = /\(os error ([0-9]+)\)/.exec(msg);
  if (os !== null) return { errno: errnoNameOf(Number(os[1])), detail: msg };
  const n = /errno ([0-9]+)/.exec(msg);
  if (n !== null) {
    // A bare "open(/x) failed: errno 2" says no more than strerror; a longer message explains.
    const bare = /^\S+ failed: errno [0-9]+$/.test(msg);
    return { errno: errnoNameOf(Number(n[1])), detail: bare ? ERRNO[Number(n[1])]?.[1] ?? msg : msg };
  }
  if (e instanceof BackendError && e.errno !== undefined) return { errno: e.errno, detail: msg };
  // Messages without a number that quote strerror (dlopen's "cannot open shared object file: No such
  // file or directory").
  for (const [name, text] of Object.values(ERRNO)) {
    if (msg.includes(text)) return { errno: name, detail: msg };
  }
  // A store that is damaged or not a dxenstored store (BackendError explains what to do).
  if (e instanceof BackendError) return { errno: "EBADMSG", detail: msg };
  return { errno: "EINVAL", detail: msg };
}

/** A start-up step's own failure, with the errno name that fits it. */
export class StartupError extends Error {
  override name = "StartupError";
  constructor(readonly errno: string, message: string) {
    super(message);
  }
}

/** What failed at start; `line()` is what the log and the terminal show. */
export class StartupFailure {
  constructor(
    /** What the daemon could not do: "bind the socket", "open the store"... */
    readonly what: string,
    /** The file, directory, socket or device concerned (or a backend spec), if any. */
    readonly path: string | null,
    readonly errno: string,
    readonly detail: string,
    readonly status: number = EXIT_STARTUP_FAILURE,
  ) {}

  static of(what: string, path: string | null, e: unknown): StartupFailure {
    if (e instanceof StartupFailure) return e;
    const d = describeError(e);
    return new StartupFailure(what, path, d.errno, d.detail);
  }

  line(): string {
    return `cannot ${this.what}${this.path !== null ? ` ${this.path}` : ""}: ${this.errno} (${this.detail})`;
  }
}
