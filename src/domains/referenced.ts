// Domains the store refers to that are not introduced (yet). A toolstack gives a new domain its home
// (SET_PERMS with the new domain as owner) after the hypervisor created it and before INTRODUCE, so
// "exists" means "the hypervisor knows it", not "introduced" (as cxenstored, which allocates a domain
// structure for such a domid). Such a domain can die without ever being introduced: it is remembered
// here, with the incarnation the hypervisor reported, so that its death (VIRQ_DOM_EXC) removes what it
// owns, just as for an introduced domain, before another domain can be given its domid.
import type { Node } from "../store/tree.ts";
import { DOMID_FIRST_RESERVED, type XenPlatform } from "../xen/platform.ts";

export class ReferencedDomains {
  /** domid → the hypervisor's unique id of the domain that had it when it was referred to. */
  private readonly known = new Map<number, string>();

  constructor(
    private readonly platform: XenPlatform | null,
    /** A remembered domain turned out to be gone (its domid has a new domain): remove its traces now. */
    private readonly onGone: (domid: number) => void,
  ) {}

  get size(): number {
    return this.known.size;
  }

  /**
   * The incarnation of a domain that is not introduced, or null if the hypervisor has no live domain
   * with this domid (none, or dying: it will never run again). A live one is remembered.
   */
  incarnation(domid: number): string | null {
    if (this.platform === null || domid <= 0 || domid >= DOMID_FIRST_RESERVED) return null;
    const st = this.platform.domainState(domid);
    if (st === null || st.dying) return null;
    const old = this.known.get(domid);
    if (old !== undefined && old !== st.uniqueId) {
      // A new domain under a remembered domid: the old one died unnoticed (no VIRQ scan yet). Its
      // traces go first, so the new domain inherits nothing.
      this.known.delete(domid);
      this.onGone(domid);
    }
    this.known.set(domid, st.uniqueId);
    return st.uniqueId;
  }

  /** The domain was introduced or released: the domain manager keeps track of it from now on. */
  forget(domid: number): void {
    this.known.delete(domid);
  }

  /** VIRQ_DOM_EXC: the remembered domains that are gone (dead, dying, or replaced); forgotten here. */
  takeGone(): number[] {
    const gone: number[] = [];
    for (const [domid, uid] of this.known) {
      const st = this.platform?.domainState(domid) ?? null;
      if (st === null || st.dying || st.uniqueId !== uid) gone.push(domid);
    }
    for (const domid of gone) this.known.delete(domid);
    return gone;
  }
}

/** Every domid that owns a node of the tree (iterative walk, O(nodes)). */
export function nodeOwners(root: Node): Set<number> {
  const owners = new Set<number>([root.perms.owner]);
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    owners.add(n.perms.owner);
    n.forEachChild((_name, c) => stack.push(c));
  }
  return owners;
}
