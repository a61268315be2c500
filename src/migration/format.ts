// Xen's XenStore migration stream ("xenstore_state.h", docs/designs/xenstore-migration.md): the
// numbers of the format, one source for the reader, the writer and the tests. Facts checked against
// what Debian's cxenstored 4.17 writes and reads (tests/migration/fixtures/README.md):
//
//   preamble  "xenstore" · version u32 BIG-endian · flags u32 (bit 0: 1 = big-endian records)
//   record    type u32 · len u32 · body · zero padding — in the records' endianness (cx on x86: little)
//
// cxenstored 4.17 counts the padding in `len` (every len is a multiple of 8) and finds the next record
// at header + 8 + len, so that is the format, whatever the design document's drawing suggests.
import { ABS_PATH_MAX, HEADER_SIZE, PAYLOAD_MAX, REL_PATH_MAX } from "../protocol/wire.ts";

export const STREAM_IDENT = "xenstore";
/** ident (8) + version (4) + flags (4). */
export const PREAMBLE_SIZE = 16;
export const RECORD_HEADER_SIZE = 8;
/** Every record's length is a multiple of this (the padding is part of `len`). */
export const RECORD_ALIGN = 8;

/** `n` rounded up to the record alignment (a record's length for `n` bytes of fields). */
export function padded(n: number): number {
  return Math.ceil(n / RECORD_ALIGN) * RECORD_ALIGN;
}

/** Version 1: what cxenstored 4.17 writes and the only one it reads. Version 2 adds WATCH_EXT. */
export const STREAM_VERSION_1 = 1;
export const STREAM_VERSION_2 = 2;
export type StreamVersion = 1 | 2;
export const STREAM_VERSION_MAX: StreamVersion = 2;

/** flags bit 0: the records are big-endian. Bits 1..31 are reserved (must be zero). */
export const FLAG_BIG_ENDIAN = 1;

/** Record types (`XS_STATE_TYPE_*`, xenstore-migration.md "Records"). */
export const RecordType = {
  END: 0,
  GLOBAL: 1,
  CONN: 2,
  WATCH: 3,
  TA: 4,
  NODE: 5,
  /** Not in 4.17 (Xen 4.18+); 4.17 skips it as an unknown record. */
  GLB_QUOTA: 6,
  /** Not in 4.17 (Xen 4.18+); 4.17 skips it as an unknown record. */
  DOMAIN: 7,
  /** Version 2 only (Xen 4.19+). */
  WATCH_EXT: 8,
} as const;

/**
 * dxenstored's own record types: state cxenstored's format cannot express (docs/live-update.md).
 * Far above Xen's numbering so that a future Xen type never collides; cxenstored 4.17 skips unknown
 * types (it logs "live-update: unknown state record %08x" and goes on), so a stream carrying them still
 * restores into cxenstored, minus what they carry. 0x6478 is "dx".
 */
export const DX_RECORD_FIRST = 0x64780000;
export const DX_RECORD_LAST = 0x6478ffff;
/** dxenstored's quota values set at run time (JSON: global and per-domain; src/live_update/dx_records.ts). */
export const DX_QUOTAS = DX_RECORD_FIRST + 1;
/** SET_FEATURE's values, introduced and pending (JSON; src/live_update/dx_records.ts). */
export const DX_FEATURES = DX_RECORD_FIRST + 2;
/** The policy plugins' state (binary; src/live_update/dx_policy.ts). */
export const DX_POLICY = DX_RECORD_FIRST + 3;

export const ConnType = { RING: 0, SOCKET: 1 } as const;

/** DOMID_INVALID (xen.h): a ring connection without SET_TARGET. */
export const DOMID_INVALID = 0x7ff4;
/** Domain ids from here up are reserved (DOMID_FIRST_RESERVED): no domain has one. */
export const DOMID_FIRST_RESERVED = 0x7ff0;

/** Node permission letters as stored (the SET_PERMS letters). */
export const PERM_LETTERS = "nrwb";
/** Permission flag: stale entry (its domain is gone or younger than the node), ignored for checks. */
export const PERM_FLAG_IGNORE = 0x01;

/** NODE `access` of a node in a pending transaction (0 = deleted). */
export const TA_ACCESS_READ = 0x0001;
export const TA_ACCESS_WRITTEN = 0x0002;

/** Fixed parts of the record bodies (struct sizes of xenstore_state.h, without flexible arrays). */
export const BodySize = {
  GLOBAL: 8,
  CONN: 24,
  WATCH: 8,
  WATCH_EXT: 12,
  TA: 8,
  NODE: 16,
  NODE_PERM: 4,
  GLB_QUOTA: 4,
  DOMAIN: 8,
} as const;

/** WATCH_EXT depth meaning "no limit". */
export const WATCH_DEPTH_UNLIMITED = 0xffff;

/** The two special nodes whose permissions the stream carries (they have no value and no parent). */
export const SPECIAL_NODES: readonly string[] = ["@releaseDomain", "@introduceDomain"];

/** One wire message header (xsd_sockmsg) inside CONN's buffered data; its `len` is at offset 12. */
export const MSG_HEADER_SIZE = HEADER_SIZE;
export const MSG_PAYLOAD_MAX = PAYLOAD_MAX;

/**
 * Limits on everything a stream can make the reader allocate. The protocol fixes the sizes of single
 * items; the counts and totals are the host's size, so they are parameters with generous defaults.
 */
export interface StreamLimits {
  /** Bytes of the whole stream. */
  readonly maxStreamBytes: number;
  /** Records, END excluded. */
  readonly maxRecords: number;
  readonly maxConnections: number;
  readonly maxWatches: number;
  readonly maxTransactions: number;
  /** Committed nodes plus nodes of pending transactions. */
  readonly maxNodes: number;
  /** Unsent output of one connection (cxenstored does not bound a dom0 socket client's). */
  readonly maxOutputBytesPerConnection: number;
  /** Quota values in one GLB_QUOTA or DOMAIN record. */
  readonly maxQuotas: number;
  /** Body of one record of a type this reader does not interpret (kept as bytes). */
  readonly maxOpaqueRecordBytes: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxStreamBytes: 1 << 30,
  maxRecords: 1 << 24,
  maxConnections: 1 << 16,
  maxWatches: 1 << 22,
  maxTransactions: 1 << 16,
  maxNodes: 1 << 23,
  maxOutputBytesPerConnection: 64 << 20,
  maxQuotas: 256,
  maxOpaqueRecordBytes: 16 << 20,
};

/**
 * Sizes the protocol itself fixes (xs_wire.h): a node path is at most XENSTORE_ABS_PATH_MAX bytes, a
 * watch path (as the client wrote it) too; a value and a WATCH's path+token fit one payload; a
 * permission list fits one SET_PERMS payload ("n0\0" is the shortest entry: 3 bytes).
 */
export const ITEM_LIMITS = {
  pathBytes: ABS_PATH_MAX,
  relativePathBytes: REL_PATH_MAX,
  valueBytes: PAYLOAD_MAX,
  /** path + NUL + token + NUL of one WATCH request. */
  watchBytes: PAYLOAD_MAX,
  perms: Math.floor(PAYLOAD_MAX / 3),
  /** A quota name (GLB_QUOTA, DOMAIN). */
  quotaNameBytes: 64,
  /** A socket connection's unprocessed input: the u16 in_data_len field. */
  inputBytes: 0xffff,
} as const;
