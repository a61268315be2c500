// The C library's memory calls. The C heap under V8 and Deno (compiler zones, Deno's own buffers,
// V8's worker threads) lives in glibc's malloc arenas, which keep freed memory for reuse: after the
// idle collector has given V8's pages back, malloc_trim(3) does the same for the arenas (several MiB
// after a large fill). madvise(2) serves code_pages.ts.
const lib = Deno.dlopen("libc.so.6", {
  malloc_trim: { parameters: ["usize"], result: "i32" },
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
});

/** madvise(2)'s advice that drops pages from this process's page tables (Linux: 4). */
export const MADV_DONTNEED = 4;

/** Return free C-heap memory to the system; true if any was released. */
export function trimMalloc(): boolean {
  return lib.symbols.malloc_trim(0n) === 1;
}

/** madvise(2): 0 on success, -1 on failure. */
export function madvise(address: bigint, length: bigint, advice: number): number {
  return lib.symbols.madvise(address, length, advice);
}
