// The one error a migration stream can raise: a typed value saying what is wrong and where, so a live
// update that cannot use a stream refuses it with a line an operator can act on.

export type StreamErrorCode =
  /** The bytes end inside the preamble or a record, or before END. */
  | "truncated"
  /** Not a XenStore stream ("xenstore" ident missing). */
  | "not-a-stream"
  /** A version this reader does not know, or a record the stream's version does not have. */
  | "unsupported-version"
  /** Big-endian records, or reserved flag bits set. */
  | "unsupported-flags"
  /** A record length that is not a multiple of 8, or too short for the record's own fields. */
  | "bad-length"
  /** A field with a value the format does not allow (a bad perm letter, a path without NUL...). */
  | "bad-field"
  /** Beyond a limit: a protocol size (path, value) or a configured count (StreamLimits). */
  | "limit"
  /** A record before the record it depends on (a watch before its connection, a child before its parent). */
  | "order"
  /** The same thing twice: a connection id, a node, a watch, a socket fd. */
  | "duplicate"
  /** Records that cannot all be true (END not last, a second GLOBAL, bytes after END). */
  | "contradiction";

export class StreamError extends Error {
  override name = "StreamError";

  constructor(
    readonly code: StreamErrorCode,
    readonly detail: string,
    /** Index of the record (0 = the first after the preamble), or null for the preamble/stream. */
    readonly record: number | null = null,
    /** Byte offset in the stream, when known. */
    readonly offset: number | null = null,
  ) {
    super(
      `migration stream: ${code}: ${detail}` +
        (record === null ? "" : ` (record ${record}${offset === null ? "" : ` at byte ${offset}`})`),
    );
  }
}
