// A start that cannot go on: one line saying what failed, on which path, and the errno name, e.g.
//
//   cannot bind the socket /run/xenstored/socket: EADDRINUSE (Address already in use)
//
// The daemon logs it at error level (the configured log: file, syslog or journal) and makes sure the
// terminal that started it shows it too: in the forking mode the detached daemon hands the line to
// the starting process (daemonize.ts), which prints it and exits with the status. Exit statuses
// (docs/operations.md): 0 serving or already running, 1 a start-up failure, 2 a usage or
// configuration error (bad option, --config-test finding errors).
import { errnoName, SysError } from "../../ffi/libc.ts";
import { BackendError } from "../backend/backend.ts";

export const EXIT_STARTUP_FAILURE = 1;
export const EXIT_USAGE = 2;

/** strerror's text of the errno names a start can meet (the names are ffi/libc.ts's errnoName()). */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: "Operation not permitted",
  ENOENT: "No such file or directory",
  EIO: "Input/output error",
  ENXIO: "No such device or address",
  EAGAIN: "Resource temporarily unavailable",
  ENOMEM: "Cannot allocate memory",
  EACCES: "Permission denied",
  EBUSY: "Device or resource busy",
  EEXIST: "File exists",
  ENODEV: "No such device",
  ENOTDIR: "Not a directory",
  EISDIR: "Is a directory",
  EINVAL: "Invalid argument",
  ENFILE: "Too many open files in system",
  EMFILE: "Too many open files",
  ENOSPC: "No space left on device",
  EROFS: "Read-only file system",
  ENAMETOOLONG: "File name too long",
  ENOSYS: "Function not implemented",
  ENOTEMPTY: "Directory not empty",
  ELOOP: "Too many levels of symbolic links",
  ENOTSOCK: "Socket operation on non-socket",
  EOPNOTSUPP: "Operation not supported",
  EADDRINUSE: "Address already in use",
  ECONNREFUSED: "Connection refused",
  EDQUOT: "Disk quota exceeded",
};

/** Every name errnoName() knows (to find one quoted in a message). */
const KNOWN_NAMES: ReadonlySet<string> = new Set(
  Array.from({ length: 200 }, (_, n) => errnoName(n)).filter((x) => !x.startsWith("errno")),
);

/** The errno name of a number (ffi/libc.ts's, else "errno N"). */
export function errnoNameOf(n: number): string {
  return errnoName(n);
}

/** The name and the cause's text of whatever a start-up step threw. */
export function describeError(e: unknown): { errno: string; detail: string } {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof SysError) {
    const name = errnoName(e.errno);
    return { errno: name, detail: STRERROR[name] ?? msg };
  }
  if (e instanceof StartupError) return { errno: e.errno, detail: e.message };
  // Deno's errors carry the name: "Permission denied (os error 13): open '/x'".
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
    return { errno: code, detail: msg.replace(/ \(os error [0-9]+\).*$/, "") };
  }
  // A message that carries the number (wrapped Deno errors) or the name ("open(/x) failed: ENOENT").
  const os = /\(os error ([0-9]+)\)/.exec(msg);
  if (os !== null) return { errno: errnoName(Number(os[1])), detail: msg };
  if (e instanceof BackendError && e.errno !== undefined) return { errno: e.errno, detail: msg };
  const named = [...msg.matchAll(/\b(E[A-Z0-9]{2,})\b/g)].map((m) => m[1]).find((n) => KNOWN_NAMES.has(n));
  if (named !== undefined) {
    // A bare "open(/x) failed: ENOENT" says no more than strerror; a longer message explains.
    const bare = /^\S+ failed: E[A-Z0-9]+$/.test(msg);
    return { errno: named, detail: bare ? STRERROR[named] ?? msg : msg };
  }
  // Messages that quote strerror without a name (dlopen's "cannot open shared object file: No such
  // file or directory").
  for (const [name, text] of Object.entries(STRERROR)) {
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
