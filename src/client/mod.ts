// dxenstore's client library: XenStore over dom0's socket, a guest's xenbus device or a guest's ring.
// Guide: docs/client.md. Everything here runs on Deno and on Node (the npm package is built from these
// files by src/client/npm/build.ts); nothing imports the daemon beyond the pure protocol modules
// (src/protocol/codec.ts, wire.ts, src/xen/ring.ts, src/common/latin1.ts, xs_error.ts).
export { type ReconnectOptions, XenStore, type XenStoreOptions } from "./xenstore.ts";
export { Transaction, type TransactionOptions } from "./transaction.ts";
export { Watch, type WatchEvent, type WatchOptions } from "./watch.ts";
export {
  ConnectionError,
  type Errno,
  ERRNO_NAMES,
  ERRNO_NUMBERS,
  hasErrno,
  isErrno,
  ProtocolError,
  TimeoutError,
  TransactionAbortedError,
  UnsupportedError,
  XsError,
} from "./errors.ts";
export {
  type DaemonKind,
  type DomainUsage,
  FEATURE_ERROR,
  FEATURE_NESTED_TRANSACTIONS,
  FEATURE_RECONNECTION,
  FEATURE_WATCH_DEPTH,
  type Features,
  parseSamples,
  QuotaApi,
  type Sample,
} from "./admin.ts";
export { formatPerm, parsePerm, type Perm } from "./payload.ts";
export { defaultDevicePath, defaultSocketPath, socketConnector } from "./socket.ts";
export { type GuestTransport, RingClientError, ringConnector } from "./ring_link.ts";
export { type Connector, type Link, type LinkHandlers } from "./connection.ts";
export { MsgType } from "../protocol/wire.ts";
