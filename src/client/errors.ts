// The client library's errors. A refusal from the daemon is an XsError carrying one of the 16 errno
// names libxenstore knows (the same class the daemon throws: one list of names, src/common/xs_error.ts).
// Everything that is not an answer from the daemon has its own class, so a caller can tell "the daemon
// said no" from "the daemon is gone" from "this daemon cannot do that".
import { type Errno, ERRNO_NAMES, isErrno, XsError } from "../common/xs_error.ts";

export { type Errno, ERRNO_NAMES, isErrno, XsError };

/**
 * The daemon lacks a feature the call needs (GET_FEATURE did not advertise it, or it answered ENOSYS):
 * an XsError with errno ENOSYS, so code that only checks errno keeps working.
 */
export class UnsupportedError extends XsError {
  constructor(readonly feature: string, detail?: string) {
    super("ENOSYS", detail ?? `${feature} is not supported by this xenstored`);
    this.name = "UnsupportedError";
  }
}

/**
 * The connection to the daemon broke, or could not be made. `sent` says whether the request had been
 * handed to the transport: if it had, the daemon may have executed it.
 */
export class ConnectionError extends Error {
  constructor(message: string, readonly sent = false, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/** No reply within the configured time. The request may still be executed by the daemon. */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** The daemon sent something the protocol does not allow (the connection is closed). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** A nested transaction failed on a daemon that cannot roll one back alone: the whole transaction was aborted. */
export class TransactionAbortedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TransactionAbortedError";
  }
}

/** Linux errno numbers of the 16 names (for exit codes and for callers that want numbers). */
export const ERRNO_NUMBERS: Readonly<Record<Errno, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  EISCONN: 106,
};

/** An ERROR reply's payload ("ENOENT\0") as an XsError; a name libxenstore would not know becomes EINVAL, as there. */
export function replyError(payload: string, what: string): XsError {
  const name = payload.endsWith("\0") ? payload.slice(0, -1) : payload;
  return new XsError(
    isErrno(name) ? name : "EINVAL",
    `${what}${isErrno(name) ? "" : ` (daemon said ${name})`}`,
  );
}

/** True if `e` is an XsError with errno `errno` (e.g. `isErrno(e, "ENOENT")` for a missing node). */
export function hasErrno(e: unknown, errno: Errno): boolean {
  return e instanceof XsError && e.errno === errno;
}
