// What a backend stores: node records. A committed change set (a plain write or a whole
// transaction) becomes a list of idempotent node operations derived from the committed tree:
//
//   delete(path)                        remove the node and its subtree (if present)
//   put(path, value, perms, gen)        set a node's own content, keeping its children; create it
//                                       (as a leaf) if missing — its parent must exist
//
// Replaying a record needs no policy and no generation counter: it restores value, permissions and
// generation exactly as committed. This module also holds the binary encoding shared by the file
// backend's log and snapshot, CRC-32, and bulk tree building for loading.
import { latin1, writeLatin1 } from "../common/latin1.ts";
import { childrenFrom, withChild, withoutChild } from "../store/node.ts";
import { ownValue } from "../store/strings.ts";
import { ABS_PATH_MAX } from "../protocol/wire.ts";
import { components, isNodePath, parentOf } from "../store/path.ts";
import { Perms } from "../store/perms.ts";
import { existingChain, lookup, Node, walk } from "../store/tree.ts";
import type { Commit } from "../store/database.ts";

export type NodeOp =
  | { readonly op: "delete"; readonly path: string }
  | {
    readonly op: "put";
    readonly path: string;
    readonly value: string;
    readonly perms: Perms;
    readonly gen: number;
  };

function depth(path: string): number {
  if (path === "/") return 0;
  let n = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) === 0x2f) n++;
  return n;
}

/** The put that stores node `n` at `path` as it is. */
function putOp(path: string, n: Node): NodeOp {
  return { op: "put", path, value: n.value, perms: n.perms, gen: n.gen };
}

/**
 * The node operations that turn `c.before` into `c.after`, in O(changes · depth):
 * first every removed subtree is deleted (in change order), then every touched path that exists in
 * `after` is put with its final content, shallowest first (so parents precede children). A touched
 * path is a written node, every node a write created, the parent that gained a child, a node whose
 * permissions changed, and the parent of a removed node.
 */
export function commitOps(c: Commit): NodeOp[] {
  if (c.changes.length === 1) {
    // The common case, a plain WRITE of an existing node: one put, no ordering to do.
    const ch = c.changes[0];
    if (ch.kind === "write" && ch.created.length === 0) {
      const n = lookup(c.after, components(ch.path));
      return n === undefined ? [] : [putOp(ch.path, n)];
    }
  }
  const ops: NodeOp[] = [];
  const touched = new Set<string>();
  for (const ch of c.changes) {
    if (ch.kind === "rm") {
      ops.push({ op: "delete", path: ch.path });
      touched.add(parentOf(ch.path));
    } else if (ch.kind === "write") {
      if (ch.created.length > 0) {
        touched.add(parentOf(ch.created[0]));
        for (const p of ch.created) touched.add(p);
      } else touched.add(ch.path);
    } else touched.add(ch.path);
  }
  const paths = [...touched].map((p) => ({ p, d: depth(p) }));
  paths.sort((a, b) => a.d - b.d);
  for (const { p } of paths) {
    const n = lookup(c.after, components(p));
    if (n !== undefined) ops.push(putOp(p, n));
  }
  return ops;
}

/** Every node of a tree as put operations, parents first (a snapshot). */
export function treeOps(root: Node): NodeOp[] {
  const ops: NodeOp[] = [];
  walk(root, "/", (path, n) => ops.push(putOp(path, n)));
  return ops;
}

export class ApplyError extends Error {
  override name = "ApplyError";
}

/** Rebuild ancestors chain[0..d) above `replacement` (null = remove), keeping their content. */
function rebuild(
  chain: readonly Node[],
  comps: readonly string[],
  d: number,
  replacement: Node | null,
): Node {
  let cur = replacement;
  for (let i = d - 1; i >= 0; i--) {
    const p = chain[i];
    const children = cur === null ? withoutChild(p.children, comps[i]) : withChild(p.children, comps[i], cur);
    cur = new Node(p.value, p.perms, children, p.gen);
  }
  return cur!;
}

/** Apply one node operation to an immutable tree; throws ApplyError if a put has no parent. */
/**
 * What the readers check of a stored node before it enters the tree: a canonical path and a
 * generation that is a safe integer ≥ 0 — a record that passed its checksum may still be wrong
 * (media damage, an edited file), and the tree's invariants (src/store/check.ts) must hold anyway.
 */
const NODE_NAME = /^[A-Za-z0-9\-_@]+$/;

function checkNode(path: string, gen: number | null): void {
  if (!isNodePath(path)) throw new ApplyError(`invalid node path ${JSON.stringify(path.slice(0, 80))}`);
  if (gen !== null && !(Number.isSafeInteger(gen) && gen >= 0)) {
    throw new ApplyError(`node ${path.slice(0, 80)}: bad generation ${gen}`);
  }
}

export function applyOp(root: Node, op: NodeOp): Node {
  checkNode(op.path, op.op === "put" ? op.gen : null);
  const comps = components(op.path);
  const chain = existingChain(root, comps);
  if (op.op === "delete") {
    if (comps.length === 0) throw new ApplyError("delete of /");
    if (chain.length - 1 !== comps.length) return root;
    return rebuild(chain, comps, comps.length, null);
  }
  if (chain.length - 1 === comps.length) {
    const old = chain[comps.length];
    return rebuild(chain, comps, comps.length, new Node(ownValue(op.value), op.perms, old.children, op.gen));
  }
  if (chain.length !== comps.length) throw new ApplyError(`put ${op.path}: parent missing`);
  return rebuild(chain, comps, comps.length, new Node(ownValue(op.value), op.perms, null, op.gen));
}

/** Apply a whole record: all or nothing (the input tree is immutable). */
export function applyOps(root: Node, ops: readonly NodeOp[]): Node {
  for (const op of ops) root = applyOp(root, op);
  return root;
}

/**
 * Build a tree from puts given parents first (snapshot order, or SQL `ORDER BY path`), in O(n):
 * children are attached bottom-up. Throws ApplyError for an orphan or a missing root.
 */
export function buildTree(
  entries: Iterable<{ path: string; value: string; perms: Perms; gen: number }>,
): Node {
  interface Slot {
    value: string;
    perms: Perms;
    gen: number;
  }
  const slots: Slot[] = [];
  const index = new Map<string, number>();
  const parents: number[] = [];
  const names: string[] = [];
  for (const e of entries) {
    // Parents come first and are checked (a node whose parent is not in the index is refused
    // below), so what is left to check is the node's own name and the one slash before it.
    if (!(Number.isSafeInteger(e.gen) && e.gen >= 0)) checkNode(e.path, e.gen);
    if (e.path !== "/") {
      const slash = e.path.lastIndexOf("/");
      const ok = e.path.length <= ABS_PATH_MAX && e.path.charCodeAt(0) === 0x2f &&
        (slash === 0 || e.path.charCodeAt(slash - 1) !== 0x2f) && NODE_NAME.test(e.path.slice(slash + 1));
      if (!ok) checkNode(e.path, null);
    }
    if (index.has(e.path)) throw new ApplyError(`duplicate node ${e.path}`);
    const i = slots.length;
    if (e.path === "/") {
      if (i !== 0) throw new ApplyError("root not first");
      parents.push(-1);
      names.push("");
    } else {
      const pi = index.get(parentOf(e.path));
      if (pi === undefined) throw new ApplyError(`node ${e.path}: parent missing`);
      parents.push(pi);
      names.push(e.path.slice(e.path.lastIndexOf("/") + 1));
    }
    index.set(e.path, i);
    slots.push({ value: e.value, perms: e.perms, gen: e.gen });
  }
  if (slots.length === 0) throw new ApplyError("no root node");
  // Parents precede children, so walking backwards builds every child before its parent.
  const built: Array<Node | undefined> = new Array(slots.length);
  const kids: Array<Array<[string, Node]> | undefined> = new Array(slots.length);
  for (let i = slots.length - 1; i >= 0; i--) {
    const s = slots[i];
    const n = new Node(ownValue(s.value), s.perms, childrenFrom(kids[i] ?? []), s.gen);
    kids[i] = undefined;
    built[i] = n;
    const p = parents[i];
    if (p >= 0) (kids[p] ??= []).push([names[i], n]);
  }
  return built[0]!;
}

/**
 * Order entries so that every parent precedes its children, in O(n): by depth (number of "/"), the
 * order within a depth kept. What buildTree needs, without comparing path strings.
 */
export function parentsFirst<T extends { path: string }>(entries: readonly T[]): T[] {
  const byDepth: T[][] = [];
  for (const e of entries) {
    const d = depth(e.path);
    (byDepth[d] ??= []).push(e);
  }
  return byDepth.flatMap((x) => x ?? []);
}

/** Every node of a tree as path → [value, perms text, gen] (tests and diagnostics). */
export function flatten(root: Node): Map<string, [string, string, number]> {
  const m = new Map<string, [string, string, number]>();
  walk(root, "/", (p, n) => m.set(p, [n.value, n.perms.text, n.gen]));
  return m;
}

/** The highest node generation in a tree. */
export function maxGen(root: Node): number {
  let g = 0;
  walk(root, "/", (_p, n) => g = Math.max(g, n.gen));
  return g;
}

// ---- Permissions as text -------------------------------------------------------------------------

/** Perms are interned and immutable: their text form is computed once each. */
const permsText = new WeakMap<Perms, string>();

/** "n0 r5" (GET_PERMS strings joined by spaces: no NUL, safe in SQL TEXT). */
export function permsToText(p: Perms): string {
  let t = permsText.get(p);
  if (t === undefined) {
    t = p.strings().join(" ");
    permsText.set(p, t);
  }
  return t;
}

export function permsFromText(s: string): Perms {
  return Perms.parse(s.split(" "));
}

// ---- CRC-32 (IEEE 802.3, as zlib) ----------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---- Binary encoding -----------------------------------------------------------------------------
//
// payload := u8 kind, f64 gen, u32 epoch, u32 count, op*            (little-endian)
// op      := u8 0, u16 pathLen, path                                 delete
//          | u8 1, u16 pathLen, path, u32 valueLen, value, u16 permsLen, perms, f64 gen    put
// Strings are Latin-1 (one byte per char); perms are permsToText's form.

export const KIND_COMMIT = 1;
export const KIND_SNAPSHOT = 2;
/** Not a node payload: u8 kind, then the introduced domains as JSON (src/backend/domains.ts). */
export const KIND_DOMAINS = 3;

export interface Payload {
  readonly kind: number;
  /** The database's generation counter after this record. */
  readonly gen: number;
  /** Snapshots: the log epoch that continues them. Commits: 0. */
  readonly epoch: number;
  readonly ops: NodeOp[];
}

/** Bytes an encoded payload takes (exact: strings are Latin-1, one byte per char). */
function payloadSize(p: Payload): number {
  let n = 17;
  for (const op of p.ops) {
    n += 3 + op.path.length;
    if (op.op === "put") n += 4 + op.value.length + 2 + permsToText(op.perms).length + 8;
  }
  return n;
}

/** Write `p` into `b` from `off` (exactly payloadSize(p) bytes). */
function writePayload(p: Payload, b: Uint8Array, off: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = off;
  b[o] = p.kind;
  dv.setFloat64(o + 1, p.gen, true);
  dv.setUint32(o + 9, p.epoch >>> 0, true);
  dv.setUint32(o + 13, p.ops.length >>> 0, true);
  o += 17;
  for (const op of p.ops) {
    b[o] = op.op === "delete" ? 0 : 1;
    dv.setUint16(o + 1, op.path.length, true);
    o = writeLatin1(b, o + 3, op.path);
    if (op.op === "put") {
      dv.setUint32(o, op.value.length >>> 0, true);
      o = writeLatin1(b, o + 4, op.value);
      const t = permsToText(op.perms);
      dv.setUint16(o, t.length, true);
      o = writeLatin1(b, o + 2, t);
      dv.setFloat64(o, op.gen, true);
      o += 8;
    }
  }
}

export function encodePayload(p: Payload): Uint8Array {
  const b = new Uint8Array(payloadSize(p));
  writePayload(p, b, 0);
  return b;
}

/** frameRecord(encodePayload(p)) in one allocation (the per-commit path of the file backend). */
export function encodeFrame(p: Payload): Uint8Array {
  const len = payloadSize(p);
  const out = new Uint8Array(FRAME_HEADER + len);
  writePayload(p, out, FRAME_HEADER);
  writeFrameHeader(out, len);
  return out;
}

export class DecodeError extends Error {
  override name = "DecodeError";
}

export function decodePayload(b: Uint8Array): Payload {
  const permsSeen = new Map<string, Perms>();
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  const need = (k: number) => {
    if (o + k > b.length) throw new DecodeError(`record ends early at byte ${o}`);
  };
  need(17);
  const kind = b[0];
  const gen = dv.getFloat64(1, true);
  if (!(Number.isSafeInteger(gen) && gen >= 0)) throw new DecodeError(`bad generation counter ${gen}`);
  const epoch = dv.getUint32(9, true);
  const count = dv.getUint32(13, true);
  o = 17;
  const ops: NodeOp[] = [];
  for (let i = 0; i < count; i++) {
    need(3);
    const t = b[o];
    const pl = dv.getUint16(o + 1, true);
    o += 3;
    need(pl);
    const path = latin1(b, o, o + pl);
    o += pl;
    if (t === 0) {
      ops.push({ op: "delete", path });
      continue;
    }
    if (t !== 1) throw new DecodeError(`unknown op ${t}`);
    need(4);
    const vl = dv.getUint32(o, true);
    o += 4;
    need(vl);
    const value = latin1(b, o, o + vl);
    o += vl;
    need(2);
    const ql = dv.getUint16(o, true);
    o += 2;
    need(ql + 8);
    const text = latin1(b, o, o + ql);
    let perms = permsSeen.get(text); // a store has few distinct permission lists: parse each once
    if (perms === undefined) {
      try {
        perms = permsFromText(text);
      } catch (e) {
        throw new DecodeError(`bad permissions: ${(e as Error).message}`);
      }
      if (permsSeen.size < 4096) permsSeen.set(text, perms);
    }
    o += ql;
    const g = dv.getFloat64(o, true);
    o += 8;
    ops.push({ op: "put", path, value, perms, gen: g });
  }
  if (o !== b.length) throw new DecodeError(`${b.length - o} trailing bytes`);
  return { kind, gen, epoch, ops };
}

// ---- Framing -------------------------------------------------------------------------------------
//
// frame := u32 len, u32 ~len, u32 crc32(payload), payload
// The inverted length makes a damaged length detectable before it is trusted.

export const FRAME_HEADER = 12;

export function frameRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  out.set(payload, FRAME_HEADER);
  writeFrameHeader(out, payload.length);
  return out;
}

/** Fill in the header of a frame whose payload of `len` bytes is already in place. */
function writeFrameHeader(out: Uint8Array, len: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, FRAME_HEADER);
  dv.setUint32(0, len, true);
  dv.setUint32(4, ~len >>> 0, true);
  dv.setUint32(8, crc32(out.subarray(FRAME_HEADER, FRAME_HEADER + len)), true);
}

export type FrameResult =
  | { readonly ok: true; readonly payload: Uint8Array; readonly end: number }
  | {
    readonly ok: false;
    readonly reason: string;
    readonly reachesEof: boolean;
    /** Where the record would end, when its length could be trusted. */
    readonly end?: number;
  };

/** Read the frame at `off` of `b` (b.length is the end of the file). */
export function readFrame(b: Uint8Array, off: number): FrameResult {
  const left = b.length - off;
  if (left < FRAME_HEADER) return { ok: false, reason: `partial header (${left} bytes)`, reachesEof: true };
  const dv = new DataView(b.buffer, b.byteOffset + off, FRAME_HEADER);
  const len = dv.getUint32(0, true);
  if ((~len >>> 0) !== dv.getUint32(4, true)) {
    return { ok: false, reason: "damaged record header", reachesEof: false };
  }
  const end = off + FRAME_HEADER + len;
  if (end > b.length) {
    return {
      ok: false,
      reason: `record of ${len} bytes cut short at ${left - FRAME_HEADER}`,
      reachesEof: true,
    };
  }
  const payload = b.subarray(off + FRAME_HEADER, end);
  if (crc32(payload) !== dv.getUint32(8, true)) {
    return { ok: false, reason: "checksum mismatch", reachesEof: end === b.length, end };
  }
  return { ok: true, payload, end };
}
