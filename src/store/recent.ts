// A small direct-mapped cache of strings: a fixed table of SLOTS strings, each string kept in the
// slot its hash picks, replacing whatever was there. Frequent strings ("state", "backend", "1",
// "online") stay and are shared; strings that come and go (a guest's domid, a unique value) only ever
// take a slot until the next string hashing there. Bounded by construction, O(1), no per-entry cost.
//
// Deliberately not a Map: V8 grows an off-heap table (~16 bytes per string ever used as a Map key
// while alive, measured: 16 MiB after a million values) and never shrinks it, so a Map keyed by every
// value written would keep a million-node store's worth of memory after the nodes are gone.
export class RecentStrings {
  private readonly table: string[];
  private readonly mask: number;

  /** `slots`: a power of two. */
  constructor(slots: number) {
    if (slots <= 0 || (slots & (slots - 1)) !== 0) throw new RangeError("slots must be a power of two");
    this.table = new Array<string>(slots).fill("");
    this.mask = slots - 1;
  }

  /**
   * The cached string equal to `s`, or `make(s)`, which takes the slot. The cache keeps only what
   * `make` returns: never `s` itself, which may be a slice of a larger string.
   */
  get(s: string, make: (s: string) => string): string {
    // FNV-1a over the UTF-16 code units (the tree's strings are short).
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    const slot = (h >>> 0) & this.mask;
    const hit = this.table[slot];
    if (hit === s) return hit;
    const v = make(s);
    this.table[slot] = v;
    return v;
  }

  /** Slots holding a string. */
  get size(): number {
    let n = 0;
    for (const s of this.table) if (s !== "") n++;
    return n;
  }

  clear(): void {
    this.table.fill("");
  }
}
