// Extension points of the dispatcher, so that whole capabilities (guest domains and quotas, daemon
// control) plug in without editing the request switch. Each handler receives the typed request and the
// calling client, and returns the reply payload or throws XsError. Unset handlers answer ENOSYS.
import type { Request } from "../protocol/request.ts";
import type { Client } from "./client.ts";

/** The requests routed to the DomainHandler: INTRODUCE, RELEASE, RESUME, SET_TARGET,
 *  IS_DOMAIN_INTRODUCED, GET_FEATURE, SET_FEATURE, GET_QUOTA, SET_QUOTA (narrow on `req.op`). */
export type DomainRequest = Request;

export interface DomainHandler {
  handle(c: Client, req: DomainRequest): string;
}

/** CONTROL <command> <args...>: daemon control and introspection (xenstore-control). */
export interface ControlHandler {
  handle(c: Client, args: readonly string[]): string;
}
