// The node operations of the operation table (./op_table.ts): READ, DIRECTORY, DIRECTORY_PART, WRITE,
// MKDIR, RM, GET_PERMS, SET_PERMS. Each runs against a View — the live database, or the caller's
// transaction (./view.ts) — and asks the policy through the dispatcher's helpers before anything is
// read or changed; in a transaction, every decision is recorded so that the commit can re-check it.
import { XsError } from "../common/xs_error.ts";
import type { Request } from "../protocol/request.ts";
import { MsgType, PAYLOAD_MAX } from "../protocol/wire.ts";
import { components, parentOf } from "../store/path.ts";
import { Perms } from "../store/perms.ts";
import { existingChain, lookup, type Node } from "../store/tree.ts";
import { OBS_CHILDREN, OBS_EXISTS, OBS_PERMS, OBS_READ, OBS_VALUE, OBS_WRITE } from "../txn/transaction.ts";
import type { Client } from "./client.ts";
import type { Dispatcher, Refusal } from "./dispatcher.ts";
import { DatabaseView, type View } from "./view.ts";

const OK = "OK\0";

type Op<K extends MsgType> = Request & { readonly op: K };

export function read(d: Dispatcher, c: Client, req: Op<MsgType.READ>, v: View): string | Refusal {
  const n = d.existingOrNull(c, v, d.resolve(c, req.path).abs, "read", OBS_VALUE);
  return n === null ? d.refusal! : n.value;
}

export function directory(d: Dispatcher, c: Client, req: Op<MsgType.DIRECTORY>, v: View): string {
  const names = d.existing(c, v, d.resolve(c, req.path).abs, "read", OBS_CHILDREN).childNames();
  let out = "";
  for (const n of names) out += n + "\0";
  return out;
}

export function directoryPartOp(d: Dispatcher, c: Client, req: Op<MsgType.DIRECTORY_PART>, v: View): string {
  const n = d.existing(c, v, d.resolve(c, req.path).abs, "read", OBS_CHILDREN);
  return directoryPart(n, req.offset);
}

/** WRITE and MKDIR: the deepest existing node decides; the quotas check what would be created. */
export function write(d: Dispatcher, c: Client, req: Op<MsgType.WRITE | MsgType.MKDIR>, v: View): string {
  const path = d.resolve(c, req.path).abs;
  const value = req.op === MsgType.WRITE ? req.value : null;
  const comps = components(path);
  const chain = existingChain(v.root, comps);
  const decider = chain[chain.length - 1];
  const exists = chain.length - 1 === comps.length;
  const policy = d.policy;
  const refused = policy.checkNode(c, "write", path, decider.perms);
  if (refused !== undefined) {
    v.observe(path, OBS_WRITE);
    throw new XsError(refused, path);
  }
  // In a transaction a successful write is blind: its recheck re-evaluates the decision at commit.
  if (value === null && exists && v instanceof DatabaseView) return OK; // MKDIR of an existing node
  d.quotas.checkWrite(c, path, comps, chain, value, (pp) => policy.permsForCreate(c, pp));
  v.write(path, value, (pp) => d.policy.permsForCreate(c, pp), (root) => d.writeAllowed(c, root, path));
  return OK;
}

/** RM: removing an absent node is not an error if its parent exists (Xen), without leaking existence. */
export function rm(d: Dispatcher, c: Client, req: Op<MsgType.RM>, v: View): string {
  const path = d.resolve(c, req.path).abs;
  if (path === "/") throw new XsError("EINVAL", "cannot remove /");
  const comps = components(path);
  const n = lookup(v.root, comps);
  const ppath = parentOf(path);
  const policy = d.policy;
  if (n === undefined) {
    const parent = lookup(v.root, comps.slice(0, -1));
    if (parent === undefined) d.missing(c, v, comps.slice(0, -1), ppath);
    const refused = policy.checkNode(c, "read", ppath, parent.perms);
    if (refused !== undefined) {
      v.observe(path, OBS_EXISTS);
      v.observe(ppath, OBS_EXISTS | OBS_READ);
      throw new XsError(refused, ppath);
    }
  } else {
    const refused = policy.checkNode(c, "write", path, n.perms);
    if (refused !== undefined) {
      v.observe(path, OBS_EXISTS | OBS_WRITE);
      throw new XsError(refused, path);
    }
  }
  // Blind (also when the node is already absent): at commit the RM must still answer OK.
  v.remove(path, (root) => {
    const p = d.policy;
    const cur = lookup(root, comps);
    if (cur !== undefined) return p.checkNode(c, "write", path, cur.perms) === undefined;
    const parent = lookup(root, comps.slice(0, -1));
    return parent !== undefined && p.checkNode(c, "read", ppath, parent.perms) === undefined;
  });
  return OK;
}

export function getPerms(d: Dispatcher, c: Client, req: Op<MsgType.GET_PERMS>, v: View): string {
  const p = d.resolve(c, req.path, true);
  if (p.special) return d.specialPerms(c, p.abs, "read").text;
  return d.existing(c, v, p.abs, "read", OBS_PERMS).perms.text;
}

export function setPerms(d: Dispatcher, c: Client, req: Op<MsgType.SET_PERMS>, v: View): string {
  // The list is judged before the path, as cxenstored does: malformed (EINVAL), too long (ENOSPC), an
  // owner that is no existing domain (ENOENT) — so a node is never given to a domain that does not
  // exist, to be inherited by whichever domain gets that domid next.
  const asked = Perms.parse(req.perms);
  d.quotas.checkPermsCount(c, asked);
  const domains = incarnations(d, asked);
  // PERM-9/PERM-10: an entry naming no existing domain is kept as written but inactive — it grants
  // nothing, not even to a domain created later with that domid, until the list is set again.
  // Decided here, at the SET_PERMS itself (also inside a transaction), as cxenstored.
  const next = asked.decided((_domid, i) => domains[i + 1] !== null);
  const p = d.resolve(c, req.path, true);
  if (p.special) {
    const old = d.specialPerms(c, p.abs, "setperms");
    const refused = d.policy.checkSetPerms(c, old, next);
    if (refused !== undefined) throw new XsError(refused, p.abs);
    d.db.specialPerms.set(p.abs, next);
    return OK;
  }
  const n = d.existing(c, v, p.abs, "setperms", 0);
  const refused = d.policy.checkSetPerms(c, n.perms, next);
  if (refused !== undefined) {
    v.observe(p.abs, OBS_PERMS); // the refusal depended on the current permissions
    throw new XsError(refused, p.abs);
  }
  d.quotas.checkSetPerms(c, n, next);
  const comps = components(p.abs);
  v.setPerms(p.abs, next, n.perms, (root) => {
    const cur = lookup(root, comps);
    const policy = d.policy;
    return cur !== undefined && policy.checkNode(c, "setperms", p.abs, cur.perms) === undefined &&
      policy.checkSetPerms(c, cur.perms, next) === undefined && sameDomains(d, next, domains);
  });
  return OK;
}

/**
 * The incarnations of the domains a permission list names, owner first (docs/protocol.md,
 * Permissions); ENOENT if the owner does not exist. An entry naming another unknown domain (null) is
 * kept, inactive.
 */
function incarnations(d: Dispatcher, p: Perms): Array<string | null> {
  const owner = d.domains.domainIncarnation(p.owner);
  if (owner === null) throw new XsError("ENOENT", `no domain ${p.owner} to own the node`);
  return [owner, ...p.acl.map((e) => d.domains.domainIncarnation(e.domid))];
}

/**
 * At a transaction's commit: every domain the list named when it was set is still the same one.
 * Otherwise the commit fails (EAGAIN): the owner may be gone, and an entry meant for a domain that
 * died since would go to the next domain given its domid (XSA-417), after the cleanup at its death
 * removed every other entry naming it. Entries that named no domain at the SET_PERMS are inactive and
 * stay so whatever exists at the commit.
 */
function sameDomains(d: Dispatcher, p: Perms, then: ReadonlyArray<string | null>): boolean {
  if (d.domains.domainIncarnation(p.owner) !== then[0]) return false;
  return p.acl.every((e, i) => then[i + 1] === null || d.domains.domainIncarnation(e.domid) === then[i + 1]);
}

/**
 * DIRECTORY_PART reply: "<generation>\0" then the child list ("name\0" each, sorted) from byte `offset`,
 * as much as fits in one payload; an extra "\0" marks the end of the list. The generation changes
 * whenever the child set does, so a client restarts its walk if it sees a different one.
 */
export function directoryPart(node: Node, offset: number): string {
  const gen = `${node.gen}\0`;
  let all = "";
  for (const n of node.childNames()) all += n + "\0";
  // At or past the end — an empty list, or a directory that shrank since the client's previous part —
  // the end marker alone (docs/spec/operations.md NODE-8, as cxenstored): a client that stops at the
  // marker stops, and libxenstore compares generations and restarts instead of failing.
  if (offset >= all.length) return gen + "\0";
  let end = offset;
  // Whole names only; leave room for the terminating "\0".
  while (end < all.length) {
    const next = all.indexOf("\0", end) + 1;
    if (gen.length + (next - offset) + 1 > PAYLOAD_MAX) break;
    end = next;
  }
  return gen + all.slice(offset, end) + (end === all.length ? "\0" : "");
}
