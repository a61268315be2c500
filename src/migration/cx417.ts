// What Debian's cxenstored 4.17 needs of a migration stream it restores with -U, beyond the format.
// It trusts the file (it wrote it itself, in its own world), so a stream from another implementation
// that breaks one of these rules kills it — after the exec, when the old daemon is already gone — or
// silently changes the store. Each rule was observed on the binary (tests/migration/cx_interop_test.ts
// checks this function's verdict against what cxenstored does with the same stream):
//
//   fatal  version other than 1                 "FATAL: Unknown record identifier"
//   fatal  no ring CONN of domain 0 first       its store is created when it restores dom0's ring
//                                               connection; a socket CONN or a NODE before that crashes it
//   fatal  a node owned by a domain that does   "FATAL: write node error restoring node" (it charges the
//          not exist                            node to its owner, and only existing domains have accounts)
//   wrong  more than one request in a CONN's    its restore makes ONE request of the whole input (header of
//          unprocessed input                     the first, all bytes as its payload): replies are lost
//                                               and its heap overrun (it never dumps more than one: it
//                                               reads a request at a time; seen: a pipelining client's
//                                               replies 121..149 of 150 never came)
//   wrong  a NODE of a transaction (conn-id≠0)  restored as a COMMITTED node (or fatal if its parent is
//                                               missing): TA records are ignored, NODE's conn-id is not read
//   lost   TA records                           "live-update: ignore transaction record"
//   lost   types it does not know (GLB_QUOTA,   "live-update: unknown state record %08x", skipped
//          DOMAIN, dxenstored's own)
//
// Domain 0's ring CONN may name event channel 0: cxenstored then keeps the connection "ignored" (as
// dom0 without a ring, -D) and serves sockets; that is how a host without dom0's ring hands over.
import type { MigrationStream } from "./records.ts";
import {
  DX_FEATURES,
  DX_POLICY,
  DX_QUOTAS,
  DX_RECORD_FIRST,
  DX_RECORD_LAST,
  MSG_HEADER_SIZE,
} from "./format.ts";

/** What dxenstored's records carry, for the log line of what cxenstored will drop. */
const DX_RECORD_NAMES: ReadonlyMap<number, string> = new Map([
  [DX_QUOTAS, "quota values set at run time"],
  [DX_FEATURES, "SET_FEATURE values"],
  [DX_POLICY, "the policy plugins' state"],
]);

/** How many requests a CONN's unprocessed input starts (whole ones, and a last one cut short). */
export function requestsIn(input: Uint8Array): number {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let n = 0;
  for (let at = 0; at < input.length; n++) {
    if (input.length - at < MSG_HEADER_SIZE) return n + 1;
    at += MSG_HEADER_SIZE + view.getUint32(at + 12, true);
  }
  return n;
}

export interface Cx417Verdict {
  /** Rules whose breach kills cxenstored 4.17 or corrupts its store: do not hand it this stream. */
  readonly fatal: readonly string[];
  /** What it will drop, by design (reported to the operator). */
  readonly lost: readonly string[];
}

/** `domainExists`: would the hypervisor (xc_domain_getinfo) report this domain to cxenstored? */
export function cx417Verdict(s: MigrationStream, domainExists: (domid: number) => boolean): Cx417Verdict {
  const fatal: string[] = [];
  const lost: string[] = [];
  if (s.version !== 1) fatal.push(`stream version ${s.version}: cxenstored 4.17 reads only version 1`);
  const firstConn = s.records.findIndex((r) => r.type === "conn");
  const firstNode = s.records.findIndex((r) => r.type === "node");
  const dom0 = s.records.findIndex((r) =>
    r.type === "conn" && r.endpoint.kind === "ring" && r.endpoint.domid === 0
  );
  if (
    (firstConn >= 0 || firstNode >= 0) &&
    (dom0 < 0 || dom0 !== firstConn || (firstNode >= 0 && firstNode < dom0))
  ) {
    fatal.push("the first CONN record must be domain 0's ring connection, before any NODE record");
  }
  const ownerless = new Map<number, number>();
  let txnNodes = 0;
  let txns = 0;
  const unknown = new Map<number, number>();
  const piledUp: string[] = [];
  for (const r of s.records) {
    if (r.type === "conn" && requestsIn(r.input) > 1) {
      piledUp.push(`connection ${r.connId} (${requestsIn(r.input)})`);
    }
    if (r.type === "node" && r.txn !== null) txnNodes++;
    else if (r.type === "node" && r.path[0] === "/" && !domainExists(r.perms[0].domid)) {
      ownerless.set(r.perms[0].domid, (ownerless.get(r.perms[0].domid) ?? 0) + 1);
    } else if (r.type === "transaction") txns++;
    else if (r.type === "global-quota") unknown.set(6, (unknown.get(6) ?? 0) + 1);
    else if (r.type === "domain") unknown.set(7, (unknown.get(7) ?? 0) + 1);
    else if (r.type === "opaque") unknown.set(r.code, (unknown.get(r.code) ?? 0) + 1);
  }
  for (const [domid, n] of ownerless) {
    fatal.push(`${n} node(s) owned by domain ${domid}, which does not exist`);
  }
  if (piledUp.length > 0) {
    fatal.push(`more than one unprocessed request in ${piledUp.join(", ")}: cxenstored 4.17 restores one`);
  }
  if (txnNodes > 0) {
    fatal.push(`${txnNodes} NODE record(s) of pending transactions would be restored as committed`);
  }
  if (txns > 0) lost.push(`${txns} open transaction(s) (TA records are ignored)`);
  for (const [code, n] of unknown) {
    const what = code >= DX_RECORD_FIRST && code <= DX_RECORD_LAST ? "dxenstored" : "unknown";
    const name = DX_RECORD_NAMES.get(code);
    lost.push(
      `${n} ${what} record(s) of type 0x${code.toString(16).padStart(8, "0")}${name ? ` (${name})` : ""}`,
    );
  }
  return { fatal, lost };
}
