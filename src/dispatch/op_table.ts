// The operation table: every request type a client may send, with its handler and its flags, at a
// glance (as cxenstored's wire_funcs[]). The dispatcher (./dispatcher.ts) looks a parsed request up
// here and obeys the flags before the handler runs:
//
//   priv   the capability the policy must grant the caller first (privileged operations: refused
//          with the policy's errno, EACCES for guests under the legacy rules, before anything else);
//   txn    what the request's tx_id means: "view" — the operation reads and writes through that
//          transaction (0: the live store); "id" — it names the transaction the operation starts in
//          or ends; "ignored" — nothing, not even checked (WATCH, UNWATCH: xenstore.txt, watches are
//          not transactional); absent — unused, but like every other, a non-zero tx_id must name an
//          open transaction of the connection (ENOENT before the payload is looked at, as cxenstored);
//   write  the operation changes the store ("commit": only when it commits a transaction): what a
//          guest's write credit is debited for while transactions are open (XSA-206,
//          src/transport/throttle.ts).
//
// parseRequest (src/protocol/request.ts) has already refused types not in the table (ENOSYS).
import { XsError } from "../common/xs_error.ts";
import type { Capability } from "../policy/policy.ts";
import type { Request } from "../protocol/request.ts";
import { FEATURE_NESTED_TRANSACTIONS, FEATURE_WATCH_DEPTH, MsgType } from "../protocol/wire.ts";
import { parseSettingName } from "../quota/settings.ts";
import { SETTING_NAMES } from "../quota/table.ts";
import { domainPath } from "../store/path.ts";
import type { Client } from "./client.ts";
import type { Dispatcher, Refusal } from "./dispatcher.ts";
import { directory, directoryPartOp, getPerms, read, rm, setPerms, write } from "./node_ops.ts";
import type { View } from "./view.ts";

const OK = "OK\0";

export interface OpFlags {
  readonly priv?: Capability;
  readonly txn?: "view" | "id" | "ignored";
  readonly write?: true | "commit";
}

/**
 * One operation (its wire name is its key's, MsgType): flags and handler. `v` is the request's view
 * when `txn` is "view" (null otherwise). Handlers return the reply payload or throw XsError (READ
 * returns its refusal: Refusal, src/dispatch/dispatcher.ts).
 */
export interface OpDef<R extends Request> {
  readonly flags: OpFlags;
  run(d: Dispatcher, c: Client, req: R, txId: number, v: View | null): string | Refusal;
}

type Table = { readonly [K in Request["op"]]: OpDef<Request & { readonly op: K }> };

/** A node operation's handler: it runs against the request's view (flags.txn "view"). */
function onView<R extends Request>(
  run: (d: Dispatcher, c: Client, req: R, v: View) => string | Refusal,
): OpDef<R>["run"] {
  return (d, c, r, _t, v) => run(d, c, r, v!);
}

export const OPERATIONS: Table = {
  [MsgType.READ]: { flags: { txn: "view" }, run: onView(read) },
  [MsgType.DIRECTORY]: { flags: { txn: "view" }, run: onView(directory) },
  [MsgType.DIRECTORY_PART]: { flags: { txn: "view" }, run: onView(directoryPartOp) },
  [MsgType.GET_PERMS]: { flags: { txn: "view" }, run: onView(getPerms) },
  [MsgType.WRITE]: { flags: { txn: "view", write: true }, run: onView(write) },
  [MsgType.MKDIR]: { flags: { txn: "view", write: true }, run: onView(write) },
  [MsgType.RM]: { flags: { txn: "view", write: true }, run: onView(rm) },
  [MsgType.SET_PERMS]: { flags: { txn: "view", write: true }, run: onView(setPerms) },
  [MsgType.TRANSACTION_START]: {
    flags: { txn: "id" },
    run: (d, c, _req, txId) => {
      // Without the nested-transactions feature a transaction cannot be started inside one (as
      // cxenstored: EBUSY while the request's transaction is open).
      if (txId !== 0 && (c.features & FEATURE_NESTED_TRANSACTIONS) === 0) {
        throw new XsError("EBUSY", "nested transactions are not enabled for this domain");
      }
      return `${d.startTransaction(c, txId)}\0`;
    },
  },
  [MsgType.TRANSACTION_END]: {
    flags: { txn: "id", write: "commit" },
    run: (d, c, req, txId) => {
      d.endTransaction(c, txId, req.commit);
      return OK;
    },
  },
  [MsgType.WATCH]: {
    flags: { txn: "ignored" },
    run: (d, c, req) => {
      if (req.depth !== undefined && (c.features & FEATURE_WATCH_DEPTH) === 0) {
        throw new XsError("EINVAL", "watch depth is not enabled for this domain");
      }
      d.watch(c, req.path, req.token, req.depth);
      return OK;
    },
  },
  [MsgType.UNWATCH]: {
    flags: { txn: "ignored" },
    run: (d, c, req) => {
      const p = d.resolve(c, req.path, true);
      if (!d.watches.remove(c.id, p.abs, req.token)) throw new XsError("ENOENT", "no such watch");
      return OK;
    },
  },
  [MsgType.RESET_WATCHES]: {
    flags: {},
    run: (d, c) => {
      // As cxenstored and oxenstored: forget the caller's watches and transactions (a non-zero
      // tx_id must still name one of them, as cxenstored 4.17).
      d.watches.removeOwner(c.id);
      c.txns.clear();
      return OK;
    },
  },
  [MsgType.GET_DOMAIN_PATH]: {
    flags: {},
    run: (_d, _c, req) => `${domainPath(req.domid)}\0`,
  },
  [MsgType.INTRODUCE]: {
    flags: { priv: "introduce" },
    run: (d, _c, req) => {
      d.domains.introduce(req.domid, req.gfn, req.port);
      return OK;
    },
  },
  [MsgType.RELEASE]: {
    flags: { priv: "release" },
    run: (d, _c, req) => {
      d.domains.release(req.domid);
      return OK;
    },
  },
  [MsgType.RESUME]: {
    flags: { priv: "resume" },
    run: (d, _c, req) => {
      d.domains.resume(req.domid);
      return OK;
    },
  },
  [MsgType.SET_TARGET]: {
    flags: { priv: "set-target" },
    run: (d, _c, req) => {
      d.domains.setTarget(req.domid, req.target);
      return OK;
    },
  },
  [MsgType.IS_DOMAIN_INTRODUCED]: {
    flags: { priv: "is-domain-introduced" },
    run: (d, _c, req) => d.domains.introducedForClients(req.domid) ? "T\0" : "F\0",
  },
  [MsgType.GET_FEATURE]: {
    flags: {},
    run: (d, c, req) => {
      // Without a domid: the caller's own (a guest's are its domain's; sockets have the server's).
      if (req.domid === undefined) return `${c.features}\0`;
      if (req.domid !== c.domid) d.requireCap(c, "get-feature-other");
      return `${d.domains.featuresOf(req.domid)}\0`;
    },
  },
  [MsgType.SET_FEATURE]: {
    flags: { priv: "set-feature" },
    run: (d, _c, req) => {
      d.domains.setFeature(req.domid, req.features);
      return OK;
    },
  },
  [MsgType.GET_QUOTA]: {
    flags: { priv: "get-quota" },
    // As cxenstored master: no argument lists the names (space-separated); `[<domid>] <name>` answers
    // the global value or the domain's.
    run: (d, _c, req) => {
      // The privilege is checked first (flags.priv), so a guest learns nothing about other domains.
      if (req.domid !== undefined) d.domains.requireKnown(req.domid);
      if (req.name === undefined) return `${SETTING_NAMES.join(" ")}\0`;
      const s = parseSettingName(req.name);
      if (req.domid === undefined) return `${d.quotas.settings.global(s)}\0`;
      d.quotas.requireDomain(req.domid);
      return `${d.quotas.settings.value(req.domid, s)}\0`;
    },
  },
  [MsgType.SET_QUOTA]: {
    flags: { priv: "set-quota" },
    run: (d, _c, req) => {
      if (req.domid !== undefined) d.domains.requireKnown(req.domid);
      const s = parseSettingName(req.name);
      if (req.domid === undefined) d.quotas.setGlobal(s, req.value);
      else {
        d.quotas.requireDomain(req.domid);
        d.quotas.setOverride(req.domid, s, req.value);
      }
      return OK;
    },
  },
  [MsgType.CONTROL]: {
    flags: { priv: "control" },
    run: (d, c, req) => {
      if (d.control === null) throw new XsError("ENOSYS", "CONTROL not implemented");
      return d.control.handle(c, req.args);
    },
  },
};

/** Does a request of wire type `type` with this payload change the store (flags.write)? */
export function isModifying(type: number, payload: string): boolean {
  const w = (OPERATIONS as Partial<Record<number, OpDef<Request>>>)[type]?.flags.write;
  return w === true || (w === "commit" && payload.startsWith("T"));
}
