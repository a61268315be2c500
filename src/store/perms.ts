// Node permissions: the Xen model's data (not its rules — deciding access is the policy's job).
// Entry 0 names the owner and the access of every domain not listed; entries 1..n give per-domain
// access. Permission lists are interned: most nodes share one of a few lists, so a node holds a
// pointer, and "unchanged" is a pointer comparison.
//
// An entry 1..n may be *inactive* (spec PERM-10, docs/spec/decisions.md §16): it named no existing
// domain when its list was set, so it is kept and shown exactly as written but grants nothing — not
// even to a domain created later with that domid — until the list is set again. The flag lives in the
// interned list, so it costs nothing per node; only the access view (`effective`) leaves such entries
// out, and every access decision is made on that view.
import { XsError } from "../common/xs_error.ts";

/** Access bits: n = none, r = read, w = write, b = both. */
export const PERM_NONE = 0;
export const PERM_READ = 1;
export const PERM_WRITE = 2;
export const PERM_BOTH = 3;
export type PermBits = 0 | 1 | 2 | 3;

const LETTERS = "nrwb";

/**
 * The mark of an inactive entry in the stored and exported text forms ("r9!"): never accepted from
 * the wire (SET_PERMS), never shown by GET_PERMS.
 */
export const INACTIVE_MARK = "!";

export interface PermEntry {
  readonly domid: number;
  readonly bits: PermBits;
  /** PERM-10: named no existing domain when the list was set; shown, grants nothing. */
  readonly inactive?: boolean;
}

export class Perms {
  /**
   * The list access is decided on: this list without its inactive entries (the list itself when it
   * has none, which is nearly always).
   */
  readonly effective: Perms;

  private constructor(
    readonly owner: number,
    readonly other: PermBits,
    readonly acl: readonly PermEntry[],
    /** Canonical text, e.g. "n0\0r5\0": the wire form (GET_PERMS), inactive entries as written. */
    readonly text: string,
    /** The interning key: `text`, with INACTIVE_MARK after each inactive entry. */
    readonly key: string,
    effective: Perms | null,
  ) {
    this.effective = effective ?? this;
  }

  /** Per-entry strings as GET_PERMS returns them ("n0", "r5", ...). */
  strings(): string[] {
    return [`${LETTERS[this.other]}${this.owner}`, ...this.acl.map((e) => `${LETTERS[e.bits]}${e.domid}`)];
  }

  /** Per-entry strings as stores and exports keep them: GET_PERMS's, inactive ones marked ("r9!"). */
  storedStrings(): string[] {
    if (this.effective === this) return this.strings();
    return [
      `${LETTERS[this.other]}${this.owner}`,
      ...this.acl.map((e) => `${LETTERS[e.bits]}${e.domid}${e.inactive ? INACTIVE_MARK : ""}`),
    ];
  }

  /** Number of entries including the owner entry (the node-permissions quota counts these). */
  get count(): number {
    return 1 + this.acl.length;
  }

  /** Has the list an inactive entry? */
  get hasInactive(): boolean {
    return this.effective !== this;
  }

  static of(owner: number, other: PermBits, acl: readonly PermEntry[] = []): Perms {
    let text = `${LETTERS[other]}${owner}\0`;
    let inactive = 0;
    for (const e of acl) {
      text += `${LETTERS[e.bits]}${e.domid}\0`;
      if (e.inactive === true) inactive++;
    }
    // Nearly every list has no inactive entry: its key is its text, one string, built once.
    let key = text;
    if (inactive > 0) {
      key = `${LETTERS[other]}${owner}\0`;
      for (const e of acl) key += `${LETTERS[e.bits]}${e.domid}${e.inactive === true ? INACTIVE_MARK : ""}\0`;
    }
    const hit = internTable.get(key)?.deref();
    if (hit !== undefined) return hit;
    // Entries are normalised to one shape ({domid, bits, inactive}) and frozen.
    const entries = Object.freeze(
      acl.map((e) => Object.freeze({ domid: e.domid, bits: e.bits, inactive: e.inactive === true })),
    );
    const effective = inactive === 0 ? null : Perms.of(owner, other, entries.filter((e) => !e.inactive));
    const p = new Perms(owner, other, entries, text, key, effective);
    internTable.set(key, new WeakRef(p));
    forget.register(p, key);
    return p;
  }

  /** Parse GET_PERMS/SET_PERMS strings ("b0", "r5"...). Strict decimal domids; every entry active. */
  static parse(strings: readonly string[]): Perms {
    if (strings.length === 0) throw new XsError("EINVAL", "empty permission list");
    const entries = strings.map(parseEntry);
    return Perms.of(entries[0].domid, entries[0].bits, entries.slice(1));
  }

  /** Parse storedStrings() (what a store or an export keeps): entries 1..n may carry INACTIVE_MARK. */
  static parseStored(strings: readonly string[]): Perms {
    if (strings.length === 0) throw new XsError("EINVAL", "empty permission list");
    const owner = parseEntry(strings[0]);
    const acl: PermEntry[] = [];
    for (let i = 1; i < strings.length; i++) {
      const s = strings[i];
      if (s.endsWith(INACTIVE_MARK)) {
        acl.push({ ...parseEntry(s.slice(0, -INACTIVE_MARK.length)), inactive: true });
      } else acl.push(parseEntry(s));
    }
    return Perms.of(owner.domid, owner.bits, acl);
  }

  /** A copy with `owner` as the owner (the rest, inactive entries included, unchanged). */
  withOwner(owner: number): Perms {
    return owner === this.owner ? this : Perms.of(owner, this.other, this.acl);
  }

  /**
   * This list as set at a SET_PERMS (PERM-9, PERM-10): entry i of 1..n (`acl[i]`) is active if
   * `exists(domid, i)`, else inactive — whatever the entries were before.
   */
  decided(exists: (domid: number, i: number) => boolean): Perms {
    let changed = false;
    const acl = this.acl.map((e, i) => {
      const inactive = !exists(e.domid, i);
      if (inactive !== e.inactive) changed = true;
      return { domid: e.domid, bits: e.bits, inactive };
    });
    return changed ? Perms.of(this.owner, this.other, acl) : this;
  }
}

/**
 * The interned lists, held weakly: a list lives as long as a node (or anything else) holds it, and
 * its entry goes with it, so the lists of long-gone guests do not stay (nor grow the table).
 */
const internTable = new Map<string, WeakRef<Perms>>();
const forget = new FinalizationRegistry<string>((key) => {
  // A newer list with the same key may have replaced the dead one's entry already.
  if (internTable.get(key)?.deref() === undefined) internTable.delete(key);
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

/** The same list, inactive marks included (a list whose entries only changed state is a change). */
export function samePerms(a: Perms, b: Perms): boolean {
  return a === b || a.key === b.key;
}
