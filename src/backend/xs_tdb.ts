// cxenstored's TDB node records, and reading the TDB files Xen's C xenstored leaves behind.
//
// cxenstored (Xen ≤ 4.17; tools/xenstore/xenstored_core.c) keeps every node in a TDB keyed by its
// full path (no NUL). The value is (little-endian, native layout):
//
//   Xen 4.9 – 4.17  struct xs_tdb_record_hdr { u64 generation; u32 num_perms; u32 datalen;
//                   u32 childlen; struct xs_permissions perms[]; }      perms at offset 20,
//                   then datalen value bytes, then childlen bytes of NUL-terminated child names.
//                   The record is sizeof(hdr) = 24 + 8·n + datalen + childlen bytes long: the 4
//                   bytes of struct padding end up (uninitialised) at the end of the record.
//   Xen ≤ 4.8       struct record_hdr { u32 num_perms; u32 datalen; u32 childlen; perms[] }
//                   (no generation), exactly 12 + 8·n + datalen + childlen bytes.
//   struct xs_permissions { u32 id; u32 perms; }  perms: 1 read, 2 write (3 both, 0 none); 4
//   ENOENT_OK, 8 OWNER and 0x10 IGNORE are daemon-internal (IGNORE marks an entry naming a domain
//   that no longer exists).
//
// Keys not starting with "/" are cxenstored's per-transaction copies ("<txgen>/local/...") and are
// skipped: open transactions do not survive a restart.
//
// Xen's bundled TDB (tools/xenstore/tdb.c, an old Samba TDB) writes the file format Samba's libtdb
// reads, but its header's version word is 0x26011967 + 7 since the generation field was added (Xen
// commit 9d81162fd2, 2017: "bump TDB_VERSION" so older daemons would not misread the records);
// libtdb accepts only + 6 and fails with EIO. The importer therefore reads a private copy whose
// version word is set back to + 6 — the only difference — and never touches the original.
import { type PermBits, type PermEntry, Perms } from "../store/perms.ts";
import { isNodePath, parentOf } from "../store/path.ts";
import type { Node } from "../store/tree.ts";
import { buildTree, maxGen, parentsFirst } from "./records.ts";
import { latin1, TDB_NOMMAP, TdbFile } from "./tdb_ffi.ts";
import { O_RDONLY } from "../../ffi/libc.ts";

export const TDB_MAGIC_FOOD = "TDB file\n";
/** libtdb's TDB_VERSION; also Xen ≤ 4.8's. */
export const TDB_VERSION_SAMBA = 0x26011967 + 6;
/** Xen 4.9+'s bundled tdb.c TDB_VERSION. */
export const TDB_VERSION_XEN = 0x26011967 + 7;
/** Offset of the version word in a TDB header (after char magic_food[32]). */
const VERSION_OFFSET = 32;

/** Record layouts: with the generation (Xen 4.9+ and dxenstored) or without (Xen ≤ 4.8). */
export type RecordLayout = "gen" | "nogen";

export interface NodeRecord {
  readonly value: string;
  readonly perms: Perms;
  readonly gen: number;
  /** Child names as listed in the record (dxenstored writes none: it rebuilds them from keys). */
  readonly children: readonly string[];
}

const PERM_MASK = 3;
const PERM_IGNORE = 0x10;
const DOMID_LIMIT = 0xffff;

/** A node record in the Xen 4.9+ layout, with an empty child list (see docs/backends.md). */
export function encodeNodeRecord(value: string, perms: Perms, gen: number): Uint8Array {
  const entries: Array<[number, number]> = [[perms.owner, perms.other]];
  for (const e of perms.acl) entries.push([e.domid, e.bits]);
  const b = new Uint8Array(24 + 8 * entries.length + value.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, gen % 0x100000000, true);
  dv.setUint32(4, Math.floor(gen / 0x100000000), true);
  dv.setUint32(8, entries.length, true);
  dv.setUint32(12, value.length, true);
  dv.setUint32(16, 0, true);
  let o = 20;
  for (const [id, bits] of entries) {
    dv.setUint32(o, id, true);
    dv.setUint32(o + 4, bits, true);
    o += 8;
  }
  for (let i = 0; i < value.length; i++) b[o + i] = value.charCodeAt(i);
  return b; // the last 4 bytes stay zero: struct padding, as in Xen's records
}

export interface DecodeOutcome {
  readonly record?: NodeRecord;
  /** Why the record cannot be used. */
  readonly problem?: string;
  /** ACL entries dropped because cxenstored had marked their domain gone (XS_PERM_IGNORE). */
  readonly ignoredEntries: number;
}

/** Decode one record of either layout; never throws. */
export function decodeNodeRecord(b: Uint8Array, layout: RecordLayout): DecodeOutcome {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const head = layout === "gen" ? 20 : 12;
  if (b.length < head) {
    return { problem: `record of ${b.length} bytes is shorter than its header`, ignoredEntries: 0 };
  }
  const gen = layout === "gen" ? dv.getUint32(0, true) + dv.getUint32(4, true) * 0x100000000 : 0;
  const h = layout === "gen" ? 8 : 0;
  const n = dv.getUint32(h, true);
  const datalen = dv.getUint32(h + 4, true);
  const childlen = dv.getUint32(h + 8, true);
  const used = head + 8 * n + datalen + childlen;
  // Xen 4.9+: sizeof(hdr) = 24 counts 4 bytes of padding the fields never use.
  const okSize = layout === "gen" ? b.length === used + 4 || b.length === used : b.length === used;
  if (n < 1 || n > 1 << 16 || !Number.isSafeInteger(used) || !okSize) {
    return {
      problem:
        `record size ${b.length} does not match its header (${n} perms, ${datalen} + ${childlen} bytes)`,
      ignoredEntries: 0,
    };
  }
  if (!Number.isSafeInteger(gen)) return { problem: "generation beyond 2^53", ignoredEntries: 0 };
  let o = head;
  let owner = 0;
  let other: PermBits = 0;
  const acl: PermEntry[] = [];
  let ignored = 0;
  for (let i = 0; i < n; i++, o += 8) {
    const id = dv.getUint32(o, true);
    const bits = dv.getUint32(o + 4, true);
    if (id > DOMID_LIMIT) return { problem: `permission entry for domain ${id}`, ignoredEntries: 0 };
    if (i === 0) {
      owner = id;
      other = (bits & PERM_MASK) as PermBits;
    } else if (bits & PERM_IGNORE) ignored++;
    else acl.push({ domid: id, bits: (bits & PERM_MASK) as PermBits });
  }
  const value = latin1.decode(b.subarray(o, o + datalen));
  o += datalen;
  const children = childlen === 0 ? [] : latin1.decode(b.subarray(o, o + childlen)).split("\0");
  if (children.length > 0) {
    if (children[children.length - 1] !== "") {
      return { problem: "child list not NUL-terminated", ignoredEntries: 0 };
    }
    children.pop();
  }
  return { record: { value, perms: Perms.of(owner, other, acl), gen, children }, ignoredEntries: ignored };
}

export { isNodePath } from "../store/path.ts";

/** The version word of a TDB file, or null if it does not start with a TDB header. */
export function tdbVersion(file: string): number | null {
  let f: Deno.FsFile;
  try {
    f = Deno.openSync(file, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const h = new Uint8Array(VERSION_OFFSET + 4);
    let got = 0;
    while (got < h.length) {
      const n = f.readSync(h.subarray(got));
      if (n === null || n === 0) return null;
      got += n;
    }
    if (latin1.decode(h.subarray(0, TDB_MAGIC_FOOD.length)) !== TDB_MAGIC_FOOD) return null;
    return new DataView(h.buffer).getUint32(VERSION_OFFSET, true);
  } finally {
    f.close();
  }
}

export interface LegacyImport {
  readonly root: Node;
  readonly gen: number;
  readonly layout: RecordLayout;
  readonly nodes: number;
  /** Human-readable notes on what was skipped or repaired. */
  readonly warnings: string[];
}

/**
 * Read a TDB file written by Xen's C xenstored (either layout). Transaction copies are skipped,
 * orphans (a node whose parent has no record) dropped, a missing root recreated; every such repair
 * is listed in `warnings`. Throws Error if the file is not a TDB xenstored database at all.
 */
export function readXenstoredTdb(file: string): LegacyImport {
  const version = tdbVersion(file);
  if (version === null) throw new Error(`${file} is not a TDB file`);
  let layout: RecordLayout;
  if (version === TDB_VERSION_XEN) layout = "gen";
  else if (version === TDB_VERSION_SAMBA) layout = "nogen";
  else throw new Error(`${file}: unknown TDB version 0x${version.toString(16)}`);
  // libtdb reads a private copy (with Xen's version word set back to libtdb's).
  const copy = Deno.makeTempFileSync({ prefix: "dxs-xstdb-" });
  try {
    Deno.copyFileSync(file, copy);
    if (layout === "gen") {
      const f = Deno.openSync(copy, { read: true, write: true });
      try {
        const w = new Uint8Array(4);
        new DataView(w.buffer).setUint32(0, TDB_VERSION_SAMBA, true);
        f.seekSync(VERSION_OFFSET, Deno.SeekMode.Start);
        f.writeSync(w);
      } finally {
        f.close();
      }
    }
    return readRecords(copy, file, layout);
  } finally {
    Deno.removeSync(copy);
  }
}

function readRecords(copy: string, file: string, layout: RecordLayout): LegacyImport {
  const tdb = TdbFile.open(copy, { hashSize: 0, tdbFlags: TDB_NOMMAP, openFlags: O_RDONLY });
  const warnings: string[] = [];
  const entries: Array<{ path: string; value: string; perms: Perms; gen: number }> = [];
  const listed = new Map<string, readonly string[]>();
  let txCopies = 0;
  let ignored = 0;
  try {
    if (!tdb.check()) warnings.push(`${file}: tdb_check reports damage; importing the readable records`);
    tdb.forEach((k, v) => {
      const path = latin1.decode(k);
      if (!path.startsWith("/")) {
        txCopies++;
        return;
      }
      if (!isNodePath(path)) {
        warnings.push(`skipped a record with an invalid path ${JSON.stringify(path.slice(0, 80))}`);
        return;
      }
      const d = decodeNodeRecord(v, layout);
      if (d.record === undefined) {
        warnings.push(`skipped ${path}: ${d.problem}`);
        return;
      }
      ignored += d.ignoredEntries;
      entries.push({ path, value: d.record.value, perms: d.record.perms, gen: d.record.gen });
      listed.set(path, d.record.children);
    });
  } finally {
    tdb.close();
  }
  if (txCopies > 0) warnings.push(`skipped ${txCopies} records of transactions that were open`);
  if (ignored > 0) {
    warnings.push(`dropped ${ignored} permission entries naming domains that no longer existed`);
  }
  const ordered = parentsFirst(entries);
  if (ordered.length === 0 || ordered[0].path !== "/") {
    warnings.push("no root record: recreated / (owner dom0, no access for others)");
    ordered.unshift({ path: "/", value: "", perms: Perms.of(0, 0), gen: 0 });
  }
  // Parents come before their children, so one pass finds every orphan (and its descendants).
  const kept = new Set<string>();
  const tree: typeof entries = [];
  let orphans = 0;
  for (const e of ordered) {
    if (e.path !== "/" && !kept.has(parentOf(e.path))) {
      orphans++;
      continue;
    }
    kept.add(e.path);
    tree.push(e);
  }
  if (orphans > 0) warnings.push(`dropped ${orphans} nodes whose parent has no record`);
  let dangling = 0;
  for (const [p, kids] of listed) {
    for (const k of kids) if (!kept.has(p === "/" ? `/${k}` : `${p}/${k}`)) dangling++;
  }
  if (dangling > 0) warnings.push(`${dangling} listed children have no record (ignored)`);
  const root = buildTree(tree);
  return { root, gen: maxGen(root), layout, nodes: tree.length, warnings };
}
