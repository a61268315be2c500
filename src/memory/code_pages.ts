// Unmapping the program's code pages an idle daemon does not use. Start-up touches ~40 MiB of the
// `deno` binary (snapshot deserialisation, the module loader, the WebAssembly compiler for the
// policy plugins, FFI set-up) that serving requests never runs again, yet those pages stay mapped,
// and therefore in the daemon's RSS, until the process ends; serving touches ~10–15 MiB of it.
//
// Such a page is a clean copy of the file, shared with the page cache: `madvise(MADV_DONTNEED)` on a
// private file mapping drops it from this process's page tables only. The page stays in the page
// cache (nothing is read from disk again), and the next access maps it back with a minor fault —
// what a request after a quiet period pays for the code it needs (a few ms for all of it).
//
// The one trap: a page of a private file mapping that was ever written (relocations in
// `.data.rel.ro`, made read-only afterwards by RELRO) is an anonymous copy, and DONTNEED would
// silently bring back the file's unrelocated bytes. So every page is checked in /proc/self/pagemap
// first, and only pages that are present *and* still the file's own page (bit 61) are dropped;
// writable mappings, shared mappings and device/proc files are never touched. A read-only mapping
// cannot become a copy between the check and the call (nothing can write it).
import { MADV_DONTNEED, madvise } from "../../ffi/libc.ts";

const PAGE = 4096;
const PRESENT = 1n << 63n;
const FILE_PAGE = 1n << 61n;

export interface CodePageTrim {
  /** Pages dropped from the page tables. */
  readonly pages: number;
  /** Mappings looked at (file-backed, private, read-only). */
  readonly mappings: number;
}

interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
}

/** Private, read-only mappings of regular files (the binary's and the libraries' code and data). */
export function trimmableMappings(maps: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) [0-9a-f]+ \S+ (\d+)\s+(\S.*)?$/.exec(line);
    if (m === null) continue;
    const [, start, end, perms, inode, path] = m;
    if (inode === "0" || path === undefined || !path.startsWith("/")) continue;
    if (/^\/(dev|proc|sys)\//.test(path)) continue;
    if (perms[1] === "w" || perms[3] !== "p") continue;
    out.push({ start: BigInt(`0x${start}`), end: BigInt(`0x${end}`) });
  }
  return out;
}

/** Runs [firstPage, endPage) of pages that are present and still the file's own. */
export function fileRuns(entries: BigUint64Array, firstPage: bigint): Array<[bigint, bigint]> {
  const runs: Array<[bigint, bigint]> = [];
  let runStart = -1;
  for (let i = 0; i <= entries.length; i++) {
    const e = i < entries.length ? entries[i] : 0n;
    const droppable = (e & PRESENT) !== 0n && (e & FILE_PAGE) !== 0n;
    if (droppable && runStart < 0) runStart = i;
    if (!droppable && runStart >= 0) {
      runs.push([firstPage + BigInt(runStart), firstPage + BigInt(i)]);
      runStart = -1;
    }
  }
  return runs;
}

/**
 * Drop this process's clean file pages of its read-only private mappings from its page tables.
 * Never throws: a kernel without pagemap access or a refused madvise leaves the pages mapped.
 */
export function trimCodePages(): CodePageTrim {
  let pages = 0;
  let mappings = 0;
  let pagemap: Deno.FsFile;
  let maps: string;
  try {
    maps = Deno.readTextFileSync("/proc/self/maps");
    pagemap = Deno.openSync("/proc/self/pagemap", { read: true });
  } catch {
    return { pages, mappings };
  }
  try {
    for (const m of trimmableMappings(maps)) {
      mappings++;
      const first = m.start / BigInt(PAGE);
      const count = Number((m.end - m.start) / BigInt(PAGE));
      const entries = new BigUint64Array(count);
      const bytes = new Uint8Array(entries.buffer);
      pagemap.seekSync(Number(first) * 8, Deno.SeekMode.Start);
      let got = 0;
      while (got < bytes.length) {
        const n = pagemap.readSync(bytes.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      if (got < bytes.length) continue;
      for (const [a, b] of fileRuns(entries, first)) {
        if (madvise(a * BigInt(PAGE), (b - a) * BigInt(PAGE), MADV_DONTNEED) === 0) pages += Number(b - a);
      }
    }
  } catch {
    // pagemap unreadable mid-way (a kernel that hides it): what was done stays done.
  } finally {
    pagemap.close();
  }
  return { pages, mappings };
}
