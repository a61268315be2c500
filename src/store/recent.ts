// A bounded cache of recently used strings: two generations of at most `generation` entries. A
// lookup finds a string in either and keeps it young; when the young generation is full, the old one
// is dropped and the young one becomes old. So a string unused for a whole generation disappears,
// and the cache never holds more than 2 × generation strings — what the tree's shared names and
// values need: sharing for the common ones, no growth from the ones that come and go (a guest's
// domid, its own paths).
export class RecentStrings {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  constructor(readonly generation: number) {}

  /**
   * The cached string equal to `s`, or `make(s)` (cached). The cache keeps only what `make` returns
   * (as key and value): never `s` itself, which may be a slice of a larger string.
   */
  get(s: string, make: (s: string) => string): string {
    let v = this.young.get(s);
    if (v !== undefined) return v;
    v = this.old.get(s) ?? make(s);
    this.young.set(v, v);
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    return v;
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }
}
