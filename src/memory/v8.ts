// V8's view of the daemon's memory (heap spaces, allocation counter) and its collector, for the idle
// collector (idle_collector.ts) and memreport: the breakdown docs/architecture.md ("Memory") explains.
//
// node:v8's types ship in @types/node, which this repo does not install (deno check would fail on a
// static import): the subset used here is declared and the built-in module is loaded dynamically.
interface HeapSpace {
  space_name: string;
  space_size: number;
  space_used_size: number;
  physical_space_size: number;
}
interface HeapStatistics {
  total_heap_size: number;
  total_physical_size: number;
  used_heap_size: number;
  malloced_memory: number;
  external_memory: number;
}
interface V8Module {
  getHeapSpaceStatistics(): HeapSpace[];
  getHeapStatistics(): HeapStatistics;
}
const V8_MODULE = "node:v8";
/**
 * node:v8, loaded on first use: importing it starts part of Deno's Node compatibility layer, ~3 MiB
 * of an idle daemon's RSS that only memreport needs.
 */
let v8: V8Module | null = null;
let loading: Promise<void> | null = null;

/** Start loading node:v8 (memreport's heap spaces appear once it is loaded). */
export function loadHeapStatistics(): Promise<void> {
  loading ??= import(V8_MODULE).then((m) => {
    v8 = m.default as V8Module;
  });
  return loading;
}

/** Heap spaces and statistics, or null while node:v8 is not loaded (loadHeapStatistics). */
export function heapSpaces(): HeapSpace[] | null {
  return v8 === null ? null : v8.getHeapSpaceStatistics().filter((sp) => sp.space_size > 0);
}

export function heapStatistics(): HeapStatistics | null {
  return v8 === null ? null : v8.getHeapStatistics();
}

/**
 * Bytes of live and not yet collected objects in V8's heap, plus the memory outside it that such
 * objects hold (ArrayBuffer contents: a closed connection's buffers are freed only when a full
 * collection finds its objects dead).
 */
export function heapUsed(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

interface GcOptions {
  type?: "major" | "minor";
  flavor?: "regular" | "last-resort";
}

/**
 * V8's memory-reducing full collection, or null when the daemon runs without `--expose-gc`
 * (compile/v8-flags): then nothing but V8's own heuristics returns memory, which they do only under
 * allocation. An ordinary full collection frees dead objects for reuse but keeps the emptied pages;
 * V8's own memory reducer releases them only after the heap grew by 10 % or 10 MB since it last ran
 * (so not after a removal), and even then seconds later. The "last resort" kind — repeated until
 * nothing more is freed, compacting — gives every emptied page back at once, for a few times the
 * pause of one collection.
 */
export function fullCollection(): (() => void) | null {
  const gc = (globalThis as { gc?: (o?: GcOptions) => void }).gc;
  if (typeof gc !== "function") return null;
  return () => gc({ type: "major", flavor: "last-resort" });
}

/**
 * Lines for memreport: every non-empty heap space (size, used, physical bytes), then malloc. The
 * first report only starts loading node:v8 and says so.
 */
export function heapSpacesReport(): string {
  const spaces = heapSpaces();
  const h = heapStatistics();
  if (spaces === null || h === null) {
    loadHeapStatistics();
    return "  heap spaces: loading node:v8, in the next report\n";
  }
  let text = "";
  for (const sp of spaces) {
    text += `  heap ${sp.space_name} size ${sp.space_size} used ${sp.space_used_size} ` +
      `physical ${sp.physical_space_size}\n`;
  }
  return text + `  malloced ${h.malloced_memory} external ${h.external_memory}\n`;
}
