// The access-control interface. The core (dispatcher) never decides access itself: it describes the
// request to a Policy and obeys the answer. The built-in `LegacyPolicy` implements Xen's rules; the
// WebAssembly plugin chain implements the same interface.
import type { Errno } from "../common/xs_error.ts";
import type { Perms } from "../store/perms.ts";

/** Who is asking. Socket connections are the privileged control domain (dom0), as in Xen. */
export interface Subject {
  readonly domid: number;
  /** The domain this one may act for (SET_TARGET), or null. */
  readonly target: number | null;
  /** Dom0 / socket connections: privileged in the legacy model. */
  readonly privileged: boolean;
}

/** What is being done to an existing node. */
export type NodeAccess = "read" | "write" | "setperms";

/**
 * Operations that are not about one node's permissions: domain management and daemon control.
 * Named capabilities, so a policy can grant them individually.
 */
export type Capability =
  | "introduce"
  | "release"
  | "resume"
  | "set-target"
  | "is-domain-introduced"
  | "control"
  | "get-feature-other"
  | "set-feature"
  | "get-quota"
  | "set-quota";

/** `undefined` = allowed; an errno = refused with that error. */
export type Decision = Errno | undefined;

/** checkNode flag: the check decides whether a watch event may be delivered; it is not an access. */
export const CHECK_WATCH_EVENT = 4;

export interface Policy {
  readonly name: string;
  /**
   * May `who` do `access` on the node at `path` (non-special) or special path with permissions `perms`?
   * `flags`: CHECK_WATCH_EVENT when asking on behalf of watch-event delivery.
   */
  checkNode(who: Subject, access: NodeAccess, path: string, perms: Perms, flags?: number): Decision;
  /** Permissions for a node `who` creates below a node with `parentPerms`. */
  permsForCreate(who: Subject, parentPerms: Perms): Perms;
  /** May `who` replace permissions `old` by `next` (already allowed to "setperms" the node)? */
  checkSetPerms(who: Subject, old: Perms, next: Perms): Decision;
  /** May `who` use a capability (domain management, control)? */
  checkCapability(who: Subject, cap: Capability): Decision;
  /**
   * Optional protocol-level check, once per request before it runs: may `who` send a message of wire
   * type `type` (src/protocol/wire.ts MsgType) with this raw Latin-1 payload, in transaction `txId`?
   */
  checkMessage?(who: Subject, type: number, txId: number, payload: string): Decision;
  /**
   * Optional: domain `domid` is gone (released, or dead and cleaned up). Per-domain state kept for it
   * must go: Xen may give the domid to a new domain.
   */
  domainGone?(domid: number): void;
}
