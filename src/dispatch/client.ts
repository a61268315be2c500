// Per-connection state the core keeps, independent of the transport (Unix socket or Xen ring).
import type { Subject } from "../policy/policy.ts";
import { SERVER_FEATURES } from "../protocol/wire.ts";
import { domainPath, type ResolvedPath, resolvePath } from "../store/path.ts";
import { own } from "../store/strings.ts";
import { type TxLimits, TxRegistry } from "../txn/registry.ts";
import type { DatabaseView } from "./view.ts";

/**
 * Relative request paths a connection resolved lately, kept per connection: a guest asks for the
 * same few nodes again and again (a driver polling its state), and resolving a relative path built
 * two new strings and an object per request, and the new absolute path had to be flattened and
 * hashed again for the split cache (issue 20). Absolute paths (dom0's tools, which walk many
 * different ones) cost only their check and are not kept. Cleared when full; the strings kept are
 * copies (own()), never slices that would keep a request's payload alive.
 */
const RESOLVED_MAX = 16;

/** How the core hands bytes back to a transport: one whole message at a time, in order. */
export interface ReplySink {
  /** Queue a message (header + Latin-1 payload). Returns false if the connection is gone. */
  send(type: number, reqId: number, txId: number, payload: string): boolean;
}

export class Client implements Subject {
  target: number | null = null;
  /**
   * Feature bits this connection may use (GET_FEATURE's numbering): all the server has for sockets;
   * a guest's are its domain's (SET_FEATURE before INTRODUCE restricts them).
   */
  features = SERVER_FEATURES;
  /** Base of relative paths: "/local/domain/<domid>". */
  readonly base: string;
  readonly txns: TxRegistry;
  /** The live store as this connection's requests see it (the dispatcher's, made at first use). */
  liveView: DatabaseView | null = null;
  private resolved: Map<string, ResolvedPath> | null = null;

  constructor(
    readonly id: number,
    readonly domid: number,
    readonly privileged: boolean,
    readonly sink: ReplySink,
    /** Short description for logs, e.g. "socket#3" or "dom5". */
    readonly label: string,
    txLimits: TxLimits,
  ) {
    this.base = domainPath(domid);
    this.txns = new TxRegistry(txLimits);
  }

  /** resolvePath(raw, base) of a path that is not special ("@..."): throws XsError as it does. */
  resolveNodePath(raw: string): ResolvedPath {
    if (raw.charCodeAt(0) === 47) return resolvePath(raw, this.base, false); // absolute: not kept
    let m = this.resolved;
    const known = m?.get(raw);
    if (known !== undefined) return known;
    const p = resolvePath(raw, this.base, false);
    if (m === null) m = this.resolved = new Map();
    else if (m.size >= RESOLVED_MAX) m.clear();
    const r: ResolvedPath = { abs: own(p.abs), special: false, relativeBase: p.relativeBase };
    m.set(own(raw), r);
    return r;
  }
}
