// Node permissions: the Xen model's data (not its rules — deciding access is the policy's job).
// Entry 0 names the owner and the access of every domain not listed; entries 1..n give per-domain
// access. Permission lists are interned: most nodes share one of a few lists, so a node holds a
// pointer, and "unchanged" is a pointer comparison.
import { XsError } from "../common/xs_error.ts";

/** Access bits: n = none, r = read, w = write, b = both. */
export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_BOTH = 3;
export type PermBits = 0 | 1 | 2 | 3;

const LETTERS = "nrwb";

export interface PermEntry {
  readonly domid: number;
  readonly bits: PermBits;
}

export class Perms {
  private constructor(
    readonly owner: number,
    readonly other: PermBits,
    readonly acl: readonly PermEntry[],
    /** Canonical text, e.g. "n0\0r5\0": the wire form, and the interning key. */
    readonly text: string,
  ) {}

  /** Per-entry strings as GET_PERMS returns them ("n0", "r5", ...). */
  strings(): string[] {
    return [`${LETTERS[this.other]}${this.owner}`, ...this.acl.map((e) => `${LETTERS[e.bits]}${e.domid}`)];
  }

  /** Number of entries including the owner entry (the node-permissions quota counts these). */
  get count(): number {
    return 1 + this.acl.length;
  }

  static of(owner: number, other: PermBits, acl: readonly PermEntry[] = []): Perms {
    let text = `${LETTERS[other]}${owner}\0`;
    for (const e of acl) text += `${LETTERS[e.bits]}${e.domid}\0`;
    const hit = internTable.get(text)?.deref();
    if (hit !== undefined) return hit;
    const p = new Perms(owner, other, Object.freeze(acl.map((e) => Object.freeze({ ...e }))), text);
    internTable.set(text, new WeakRef(p));
    forget.register(p, text);
    return p;
  }

  /** Parse GET_PERMS/SET_PERMS strings ("b0", "r5"...). Strict decimal domids. */
  static parse(strings: readonly string[]): Perms {
    if (strings.length === 0) throw new XsError("EINVAL", "empty permission list");
    const entries = strings.map(parseEntry);
    return Perms.of(entries[0].domid, entries[0].bits, entries.slice(1));
  }

  /** A copy with `owner` as the owner (the rest unchanged). */
  withOwner(owner: number): Perms {
    return owner === this.owner ? this : Perms.of(owner, this.other, this.acl);
  }
}

/**
 * The interned lists, held weakly: a list lives as long as a node (or anything else) holds it, and
 * its entry goes with it, so the lists of long-gone guests do not stay (nor grow the table).
 */
const internTable = new Map<string, WeakRef<Perms>>();
const forget = new FinalizationRegistry<string>((text) => {
  // A newer list with the same text may have replaced the dead one's entry already.
  if (internTable.get(text)?.deref() === undefined) internTable.delete(text);
});

function parseEntry(s: string): PermEntry {
  const bits = LETTERS.indexOf(s[0]);
  const num = s.slice(1);
  if (bits < 0 || num.length === 0 || num.length > 5 || !/^[0-9]+$/.test(num)) {
    throw new XsError("EINVAL", `bad permission "${s.slice(0, 16)}"`);
  }
  const domid = Number(num);
  if (domid > 0xffff) throw new XsError("EINVAL", `bad permission domid "${num}"`);
  return { domid, bits: bits as PermBits };
}

export function samePerms(a: Perms, b: Perms): boolean {
  return a === b || a.text === b.text;
}
