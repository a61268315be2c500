// The XenStore wire format (Xen's io/xs_wire.h): message types, errno names, size limits and server
// feature bits — the one source of every protocol constant. This module is pure data (no I/O, no
// store, no policy), so every layer may import it: the ring codec (src/xen/ring.ts), the store's path
// syntax, the dispatcher and the transports all count with these numbers.

/** Message types, numbered exactly as in xs_wire.h (`enum xsd_sockmsg_type`). */
export enum MsgType {
  CONTROL = 0,
  DIRECTORY = 1,
  READ = 2,
  GET_PERMS = 3,
  WATCH = 4,
  UNWATCH = 5,
  TRANSACTION_START = 6,
  TRANSACTION_END = 7,
  INTRODUCE = 8,
  RELEASE = 9,
  GET_DOMAIN_PATH = 10,
  WRITE = 11,
  MKDIR = 12,
  RM = 13,
  SET_PERMS = 14,
  WATCH_EVENT = 15,
  ERROR = 16,
  IS_DOMAIN_INTRODUCED = 17,
  RESUME = 18,
  SET_TARGET = 19,
  RESTRICT = 20, // removed from Xen in 2017; answered ENOSYS
  RESET_WATCHES = 21,
  DIRECTORY_PART = 22,
  GET_FEATURE = 23,
  SET_FEATURE = 24,
  GET_QUOTA = 25,
  SET_QUOTA = 26,
  INVALID = 0xffff,
}

export { type Errno, ERRNO_NAMES } from "../common/xs_error.ts";

/** Size of `struct xsd_sockmsg`: type, req_id, tx_id, len — four little-endian u32. */
export const HEADER_SIZE = 16;
/** XENSTORE_PAYLOAD_MAX: the payload limit in both directions. */
export const PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX and XENSTORE_REL_PATH_MAX. */
export const ABS_PATH_MAX = 3072;
export const REL_PATH_MAX = 2048;

/**
 * Server feature bits: the ring page's `server_features` (xs_wire.h XENSTORE_SERVER_FEATURE_*; bit 2
 * is the watch-depth extension) and GET_FEATURE/SET_FEATURE's values.
 */
export const FEATURE_RECONNECTION = 1;
export const FEATURE_ERROR = 2;
export const FEATURE_WATCH_DEPTH = 4;
/** dxenstored extension (GET_FEATURE only): TRANSACTION_START with a non-zero tx_id nests. */
export const FEATURE_NESTED_TRANSACTIONS = 0x40000000;
/** What GET_FEATURE reports for a connection that is no guest's (dom0's sockets). */
export const SERVER_FEATURES = FEATURE_WATCH_DEPTH | FEATURE_NESTED_TRANSACTIONS;
/** Features a guest domain gets unless SET_FEATURE restricted them before INTRODUCE. */
export const DOMAIN_FEATURES = FEATURE_RECONNECTION | FEATURE_ERROR | FEATURE_WATCH_DEPTH |
  FEATURE_NESTED_TRANSACTIONS;
