// The C heap under V8 and Deno (compiler zones, Deno's own buffers, V8's worker threads) lives in
// glibc's malloc arenas, which keep freed memory for reuse: after the idle collector has given V8's
// pages back, malloc_trim(3) does the same for the arenas (several MiB after a large fill).
import { mallocTrim } from "../../ffi/libc.ts";

/** Return free C-heap memory to the system; true if any was released. */
export function trimMalloc(): boolean {
  return mallocTrim();
}
