// The records of a XenStore migration stream as typed values (src/migration/format.ts has the bytes).
// Byte strings (paths, values, tokens, quota names) are Latin-1 strings, one char per byte, as
// everywhere in dxenstored; buffered connection data stays bytes.
import type { StreamVersion } from "./format.ts";

/** GLOBAL: the listening socket and the event-channel device, inherited across exec. */
export interface GlobalRecord {
  readonly type: "global";
  /** The socket accepting connections, or -1 (none). */
  readonly socketFd: number;
  readonly evtchnFd: number;
}

/** A guest's (or dom0's) shared ring. */
export interface RingEndpoint {
  readonly kind: "ring";
  readonly domid: number;
  /** SET_TARGET's target domain, or null (DOMID_INVALID in the stream). */
  readonly targetDomid: number | null;
  /** The local event-channel port bound to the domain. */
  readonly evtchn: number;
}

/** A Unix socket client (live update only: the fd is inherited). */
export interface SocketEndpoint {
  readonly kind: "socket";
  readonly fd: number;
}

export type ConnEndpoint = RingEndpoint | SocketEndpoint;

/** CONN: one connection with the bytes it has neither processed nor been sent. */
export interface ConnRecord {
  readonly type: "conn";
  /** Non-zero; WATCH, TA and transaction NODE records refer to it. */
  readonly connId: number;
  readonly endpoint: ConnEndpoint;
  /**
   * Requests read but not processed, in order: whole messages, the last possibly incomplete (a
   * request being read when the state was taken). The live-update CONTROL itself is not among them.
   */
  readonly input: Uint8Array;
  /**
   * Output not yet written: first `partialOutput` bytes that finish a message already partly written,
   * then whole messages. The connection that asked for the live update has its "OK" reply here.
   */
  readonly output: Uint8Array;
  readonly partialOutput: number;
}

/** WATCH (depth null) or WATCH_EXT (version 2: depth, 0xffff = unlimited). */
export interface WatchRecord {
  readonly type: "watch";
  readonly connId: number;
  /** As the client wrote it: absolute, relative to the connection's domain path, or "@special". */
  readonly path: string;
  readonly token: string;
  readonly depth: number | null;
}

/** TA: a transaction open on a connection. */
export interface TransactionRecord {
  readonly type: "transaction";
  readonly connId: number;
  readonly txId: number;
}

export type PermLetter = "n" | "r" | "w" | "b";

export interface NodePerm {
  readonly access: PermLetter;
  readonly domid: number;
  /** XS_STATE_NODE_PERM_IGNORE: the domain is gone or younger than the node; grants nothing. */
  readonly stale: boolean;
}

/** The transaction a NODE record belongs to (a pending node), with what the transaction did to it. */
export interface NodeTxn {
  readonly connId: number;
  readonly txId: number;
  /** TA_ACCESS_READ | TA_ACCESS_WRITTEN bits; 0 = deleted in the transaction. */
  readonly access: number;
}

/** NODE: a committed node (txn null), a special node's permissions, or a transaction's node. */
export interface NodeRecord {
  readonly type: "node";
  /** Absolute path, or "@releaseDomain"/"@introduceDomain". */
  readonly path: string;
  readonly value: string;
  /** First entry: the owner and everyone's access. Empty only for a node deleted in a transaction. */
  readonly perms: readonly NodePerm[];
  readonly txn: NodeTxn | null;
}

export interface QuotaValue {
  readonly name: string;
  /** 0 = unlimited. */
  readonly value: number;
}

/** GLOBAL_QUOTA_DATA (Xen 4.18+). */
export interface GlobalQuotaRecord {
  readonly type: "global-quota";
  /** Defaults applying to each domain. */
  readonly perDomain: readonly QuotaValue[];
  /** Limits applying to the host as a whole. */
  readonly global: readonly QuotaValue[];
}

/** DOMAIN_DATA (Xen 4.18+): a domain's own quotas and the ring's feature word (version 2). */
export interface DomainRecord {
  readonly type: "domain";
  readonly domid: number;
  readonly features: number;
  readonly quotas: readonly QuotaValue[];
}

/**
 * A record this layer does not interpret: a dxenstored extension (DX_RECORD_FIRST..LAST, decoded by
 * the live-update layer) or a type reserved for the future, which cxenstored 4.17 skips too.
 */
export interface OpaqueRecord {
  readonly type: "opaque";
  readonly code: number;
  /** The body including its padding (the length is a multiple of 8). */
  readonly body: Uint8Array;
}

export type StateRecord =
  | GlobalRecord
  | ConnRecord
  | WatchRecord
  | TransactionRecord
  | NodeRecord
  | GlobalQuotaRecord
  | DomainRecord
  | OpaqueRecord;

/** A whole stream: its version and its records in stream order (the END record is implicit). */
export interface MigrationStream {
  readonly version: StreamVersion;
  readonly records: readonly StateRecord[];
}
