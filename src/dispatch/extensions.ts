// Extension points of the dispatcher, so that whole capabilities (guest domains and quotas, daemon
// control) plug in without editing the request switch. Each handler receives the typed request and the
// calling client, and returns the reply payload or throws XsError. Unset handlers answer ENOSYS.
import type { Message } from "../protocol/codec.ts";
import type { Request } from "../protocol/request.ts";
import type { Client } from "./client.ts";

/** The requests routed to the DomainHandler: INTRODUCE, RELEASE, RESUME, SET_TARGET,
 *  IS_DOMAIN_INTRODUCED, GET_FEATURE, SET_FEATURE, GET_QUOTA, SET_QUOTA (narrow on `req.op`). */
export type DomainRequest = Request;

export interface DomainHandler {
  handle(c: Client, req: DomainRequest): string;
  /**
   * Which domains exist: an id of the current incarnation of `domid` (it changes when the domid is
   * given to a new domain), or null if no domain has it. SET_PERMS refuses an owner that does not
   * exist (ENOENT, as cxenstored; XSA-322/417). Absent: no domid is refused (a bare core).
   */
  domainIncarnation?(domid: number): string | null;
}

/** CONTROL <command> <args...>: daemon control and introspection (xenstore-control). */
export interface ControlHandler {
  handle(c: Client, args: readonly string[]): string;
}

/**
 * Sees every connection and every reply once it is queued (src/observe: metrics, refusal log, access
 * log). Called synchronously on the request path, so implementations must be cheap and must not throw.
 */
export interface RequestObserver {
  opened(c: Client): void;
  closed(c: Client): void;
  /**
   * `failure` is what the dispatcher caught behind an ERROR reply (an XsError, or a bug), else null;
   * `ms` is how long handling took (not counting a wait for durability).
   */
  replied(c: Client, m: Message, replyType: number, reply: string, failure: unknown, ms: number): void;
  /** A watch event was queued for `c`. */
  watchEvent(c: Client, path: string, token: string): void;
}
