// A small reference model of Xen's access rules, written from cxenstored 4.17 (xenstored_core.c
// perm_for_conn, do_set_perms, construct_node) and docs/misc/xenstore.txt — independent of the plugin.
// `xenRights` is Xen exactly (first matching entry wins, for the domain or its target); `legacyRights`
// is the documented dxenstored rule: the union of the domain's own rights and its target's.
import type { Perms } from "../../src/store/perms.ts";

export const R = 1;
export const W = 2;
/** XS_PERM_OWNER: may change permissions. */
export const OWNER = 4;

export interface ModelSubject {
  readonly domid: number;
  readonly target: number | null;
  readonly privileged: boolean;
}

/** cxenstored's perm_for_conn: r/w/owner bits of `who` on a node with `perms`. */
export function xenRights(who: ModelSubject, perms: Perms): number {
  const t = who.target;
  if (who.privileged || perms.owner === who.domid || (t !== null && perms.owner === t)) return R | W | OWNER;
  for (const e of perms.acl) {
    if (e.inactive) continue; // XS_PERM_IGNORE: skipped by perm_for_conn (spec PERM-10)
    if (e.domid === who.domid || (t !== null && e.domid === t)) return e.bits;
  }
  return perms.other;
}

/** dxenstored's legacy rule: own rights ∪ target's rights, each computed as Xen does for one domain. */
export function legacyRights(who: ModelSubject, perms: Perms): number {
  const own = xenRights({ domid: who.domid, target: null, privileged: who.privileged }, perms);
  if (who.target === null) return own;
  return own | xenRights({ domid: who.target, target: null, privileged: false }, perms);
}

export type Access = "read" | "write" | "setperms";

/** undefined = allowed, else the errno. */
export function modelCheckNode(who: ModelSubject, access: Access, perms: Perms): string | undefined {
  const need = access === "read" ? R : access === "write" ? W : OWNER;
  return legacyRights(who, perms) & need ? undefined : "EACCES";
}

/** construct_node: unprivileged domains own what they create; otherwise the parent's permissions. */
export function modelCreateOwner(who: ModelSubject, parent: Perms): number {
  return who.privileged ? parent.owner : who.domid;
}

/** do_set_perms: an unprivileged domain may not change the owner. */
export function modelSetPerms(who: ModelSubject, old: Perms, next: Perms): string | undefined {
  return !who.privileged && next.owner !== old.owner ? "EPERM" : undefined;
}

/** Domain management and control need the privileged domain. */
export function modelCapability(who: ModelSubject): string | undefined {
  return who.privileged ? undefined : "EACCES";
}
