// A bounded cache of recently used values: two generations of at most `generation` entries. A lookup
// finds an entry in either and keeps it young; when the young generation is full, the old one is
// dropped and the young one becomes old. So an entry unused for a whole generation disappears, and
// the cache never holds more than 2 × generation entries — what the tree's shared strings and
// permission lists need: sharing for the common values, no growth from the ones that come and go
// (a guest's domid, its own paths).
export class RecentCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();

  constructor(readonly generation: number) {}

  /** The cached value for `key`, made by `make` (and cached) if there is none. */
  get(key: string, make: (key: string) => V): V {
    let v = this.young.get(key);
    if (v !== undefined) return v;
    v = this.old.get(key) ?? make(key);
    this.young.set(key, v);
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
