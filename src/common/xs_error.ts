// Typed errors shared by every layer. Each refusal in the daemon is an XsError carrying one of the errno
// names libxenstore understands (`xsd_errors[]`); the dispatcher turns it into an ERROR reply in exactly
// one place. Kept outside src/protocol so the store, transactions and watches need not import the codec.

/** The errno names libxenstore knows. Any other string would become EINVAL in clients. */
export const ERRNO_NAMES = [
  "EINVAL",
  "EACCES",
  "EEXIST",
  "EISDIR",
  "ENOENT",
  "ENOMEM",
  "ENOSPC",
  "EIO",
  "ENOTEMPTY",
  "ENOSYS",
  "EROFS",
  "EBUSY",
  "EAGAIN",
  "EISCONN",
  "E2BIG",
  "EPERM",
] as const;
export type Errno = typeof ERRNO_NAMES[number];

export class XsError extends Error {
  constructor(readonly errno: Errno, readonly detail?: string) {
    super(detail ? `${errno}: ${detail}` : errno);
    this.name = "XsError";
  }
}

export function isErrno(s: string): s is Errno {
  return (ERRNO_NAMES as readonly string[]).includes(s);
}

/**
 * The store could not be written (the backend failed: a full disk, an I/O error): the change was not
 * applied. The client sees its errno like any other, but for the operator it is the daemon's failure,
 * not a refusal of the client (src/observe logs it at error level and counts it).
 */
export class StorageError extends XsError {
  constructor(errno: Errno, detail?: string) {
    super(errno, detail);
    this.name = "StorageError";
  }
}
