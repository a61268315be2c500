// Heap bytes per node of the in-memory store: 100 000 leaves (1 000 folders × 100, 14-byte values,
// as the anchors' fill workload) written through the Database, heap measured after a full GC.
// "Beyond path and value" subtracts the bytes of the component-name and value strings themselves.
// Run: deno run --allow-all --v8-flags=--expose-gc bench/store_heap.ts [N]
// (The daemon's RSS against the anchors: bench/memory.ts.)
import { Database } from "../src/store/database.ts";
import type { Perms } from "../src/store/perms.ts";

export interface MemoryResult {
  readonly nodes: number;
  readonly heapBytesPerNode: number;
  readonly stringBytesPerNode: number;
  readonly beyondPathAndValue: number;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error("run with --v8-flags=--expose-gc");
  for (let i = 0; i < 3; i++) g();
}

export function measureStoreMemory(leaves = 100_000): MemoryResult {
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const db = new Database();
  const keep = (p: Perms) => p;
  let stringBytes = 0;
  const folders = Math.ceil(leaves / 100);
  let created = 0;
  for (let g = 0; g < folders; g++) {
    const gname = `g${String(g).padStart(5, "0")}`;
    stringBytes += gname.length;
    for (let n = 0; n < 100 && created < leaves; n++, created++) {
      const nname = `n${String(n).padStart(2, "0")}`;
      // Distinct value strings, as a real store would hold (not one shared literal).
      const value = `v${String(g * 100 + n).padStart(13, "0")}`;
      stringBytes += nname.length + value.length;
      db.write(`/bench/fill/${gname}/${nname}`, value, keep, 0);
    }
  }
  gc();
  const after = Deno.memoryUsage().heapUsed;
  const nodes = created + folders;
  // One-byte strings cost ~16 bytes of header plus their characters in V8.
  const heapPerNode = (after - before) / nodes;
  const stringPerNode = (stringBytes + 16 * (created * 2 + folders)) / nodes;
  if (db.root === null) throw new Error("unreachable"); // keep db alive past the measurement
  return {
    nodes,
    heapBytesPerNode: heapPerNode,
    stringBytesPerNode: stringPerNode,
    beyondPathAndValue: heapPerNode - stringPerNode,
  };
}

if (import.meta.main) {
  const r = measureStoreMemory(Number(Deno.args[0] ?? 100_000));
  console.log(
    `store memory: ${r.nodes} nodes, ${r.heapBytesPerNode.toFixed(0)} B heap/node, ` +
      `${r.beyondPathAndValue.toFixed(0)} B/node beyond path and value strings (target ≤ 300)`,
  );
}
