// Per-connection state the core keeps, independent of the transport (Unix socket or Xen ring).
import type { Subject } from "../policy/policy.ts";
import { SERVER_FEATURES } from "../protocol/wire.ts";
import { domainPath } from "../store/path.ts";
import { type TxLimits, TxRegistry } from "../txn/registry.ts";
import type { DatabaseView } from "./view.ts";

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
}
