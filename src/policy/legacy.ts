// Xen's permission model (docs/misc/xenstore.txt, cxenstored's perm_for_conn) as a built-in policy,
// with one deliberate difference: a domain with a SET_TARGET target gets the UNION of its own rights
// and the target's, whatever the order of the permission entries (cxenstored returns the first
// matching entry, so a target's read-only entry listed first cripples the domain's own full access).
import type { Capability, Decision, NodeAccess, Policy, Subject } from "./policy.ts";
import { PERM_BOTH, PERM_NONE, PERM_READ, PERM_WRITE, type PermBits, type Perms } from "../store/perms.ts";

/** The rights `who` has on a node with `perms`, as n/r/w/b bits; owners get b. */
export function legacyRights(who: Subject, perms: Perms): PermBits {
  if (who.privileged) return PERM_BOTH;
  const ids = who.target === null ? [who.domid] : [who.domid, who.target];
  let bits = PERM_NONE as number;
  for (const id of ids) {
    if (perms.owner === id) return PERM_BOTH;
    const e = perms.acl.find((x) => x.domid === id);
    bits |= e ? e.bits : perms.other;
  }
  return bits as PermBits;
}

export class LegacyPolicy implements Policy {
  readonly name = "legacy";

  checkNode(who: Subject, access: NodeAccess, _path: string, perms: Perms): Decision {
    if (who.privileged) return undefined;
    switch (access) {
      case "read":
        return legacyRights(who, perms) & PERM_READ ? undefined : "EACCES";
      case "write":
        return legacyRights(who, perms) & PERM_WRITE ? undefined : "EACCES";
      case "setperms":
        // Only the owner (or the domain acting for it) may change a node's permissions.
        return perms.owner === who.domid || (who.target !== null && perms.owner === who.target)
          ? undefined
          : "EACCES";
    }
  }

  permsForCreate(who: Subject, parentPerms: Perms): Perms {
    // Unprivileged domains own what they create (so it counts against their quota);
    // the privileged domain inherits the parent's owner.
    return who.privileged ? parentPerms : parentPerms.withOwner(who.domid);
  }

  checkSetPerms(who: Subject, old: Perms, next: Perms): Decision {
    // Only the control domain may hand a node to another owner (XSA-352 class).
    if (next.owner !== old.owner && !who.privileged) return "EPERM";
    return undefined;
  }

  checkCapability(who: Subject, _cap: Capability): Decision {
    return who.privileged ? undefined : "EACCES";
  }
}

export { PERM_BOTH, PERM_READ, PERM_WRITE };
