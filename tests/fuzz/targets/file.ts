// The file backend's readers (src/backend/records.ts, src/backend/domains.ts, src/backend/file.ts).
//
//  - "file-records": one record payload, as the loader reads it: decodePayload (DecodeError only),
//    applied to a tree with applyOps / built with buildTree (ApplyError only); a domain record
//    (KIND_DOMAINS) with decodeDomains (SyntaxError for bad JSON, a plain Error naming the problem);
//    readFrame over the bytes (never throws). Invariant: a record the readers accept builds a sound
//    tree (src/store/check.ts checkStore), with the generation it claims — the CRC protects against
//    random damage, not against a wrong record, so these readers must not trust content either.
//  - "file-backend": whole store directories — a valid snapshot plus a mutated log (its records'
//    lengths and checksums recomputed half the time, so damage inside records gets past the CRC) —
//    loaded by FileBackend.load, with and without --recover. Only BackendError may escape; a loaded
//    tree must be sound. Slow (files are written per case).
import {
  ApplyError,
  applyOps,
  buildTree,
  crc32,
  DecodeError,
  decodePayload,
  encodePayload,
  FRAME_HEADER,
  frameRecord,
  KIND_COMMIT,
  KIND_DOMAINS,
  KIND_SNAPSHOT,
  type NodeOp,
  readFrame,
} from "../../../src/backend/records.ts";
import { decodeDomains } from "../../../src/backend/domains.ts";
import { FileBackend } from "../../../src/backend/file.ts";
import { BackendError } from "../../../src/backend/backend.ts";
import { Perms } from "../../../src/store/perms.ts";
import { check, checkLoaded, type Target } from "../engine.ts";

const enc = new TextEncoder();

function put(path: string, value: string, perms: Perms, gen: number): NodeOp {
  return { op: "put", path, value, perms, gen };
}

const P0 = Perms.of(0, 0);
const P5 = Perms.of(5, 1, [{ domid: 7, bits: 3 }]);

function payloads(): Uint8Array[] {
  const snapshot = encodePayload({
    kind: KIND_SNAPSHOT,
    gen: 9,
    epoch: 1,
    ops: [
      put("/", "", P0, 0),
      put("/local", "", P0, 1),
      put("/local/domain", "", P0, 2),
      put("/local/domain/5", "name", P5, 3),
      put("/tool", "", P0, 4),
      put("/tool/xenstored", "", P0, 5),
    ],
  });
  const commit = encodePayload({
    kind: KIND_COMMIT,
    gen: 12,
    epoch: 0,
    ops: [
      { op: "delete", path: "/tool/xenstored" },
      put("/local/domain/5/data", "\x00\x01\xff bytes", P5, 10),
      put("/local/domain/5/data/x", "v".repeat(300), P0, 11),
      put("/tool", "t", P0, 12),
    ],
  });
  const small = encodePayload({ kind: KIND_COMMIT, gen: 13, epoch: 0, ops: [put("/a", "1", P0, 13)] });
  const domains = enc.encode(
    JSON.stringify([{ domid: 5, ringGfn: 4096, eventChannel: 7, extra: { features: 7, watches: [] } }]),
  );
  const dom = new Uint8Array(1 + domains.length);
  dom[0] = KIND_DOMAINS;
  dom.set(domains, 1);
  return [snapshot, commit, small, dom];
}

/** A plain Error (a validation message) or SyntaxError (JSON) — not a TypeError from a bad access. */
function isMessageError(e: unknown): boolean {
  return e instanceof SyntaxError || (e instanceof Error && e.constructor === Error);
}

export const fileRecordsTarget: Target = {
  name: "file-records",
  contract: "file log/snapshot records: readFrame (never throws), decodePayload (DecodeError), " +
    "applyOps/buildTree (ApplyError), decodeDomains (SyntaxError, Error)",
  corpus: payloads,
  run(input) {
    // The bytes as a file region: framing must never throw or overrun.
    const f = readFrame(input, 0);
    if (f.ok) check(f.end <= input.length && f.payload.length === f.end - FRAME_HEADER, "frame bounds");
    // The bytes as a record payload.
    if (input.length > 0 && input[0] === KIND_DOMAINS) {
      try {
        decodeDomains(input.subarray(1));
      } catch (e) {
        if (!isMessageError(e)) throw e;
      }
      return;
    }
    const rec = decodePayload(input);
    check(rec.ops.every((o) => typeof o.path === "string"), "op without a path");
    if (rec.kind === KIND_SNAPSHOT) {
      if (rec.ops.some((o) => o.op !== "put")) return; // the loader refuses it (a BackendError)
      const root = buildTree(rec.ops as Array<NodeOp & { op: "put" }>);
      checkLoaded(root, rec.gen, "an accepted snapshot");
    } else {
      const root = applyOps(BASE, rec.ops);
      checkLoaded(root, Math.max(rec.gen, BASE_GEN), "an accepted commit record");
    }
  },
  expected: (e) => e instanceof DecodeError || e instanceof ApplyError,
  ciCases: 10_000,
};

const BASE = buildTree(
  decodePayload(payloads()[0]).ops as Array<NodeOp & { op: "put" }>,
);
const BASE_GEN = 9; // the snapshot's counter

// ---- whole directories --------------------------------------------------------------------------

const LOG_MAGIC = "DXSLOG01";

function logFile(epoch: number, records: Uint8Array[]): Uint8Array {
  const h = new Uint8Array(16);
  h.set(enc.encode(LOG_MAGIC));
  const dv = new DataView(h.buffer);
  dv.setUint32(8, epoch, true);
  dv.setUint32(12, crc32(h.subarray(0, 12)), true);
  const frames = records.map(frameRecord);
  const out = new Uint8Array(16 + frames.reduce((n, f) => n + f.length, 0));
  out.set(h);
  let o = 16;
  for (const f of frames) {
    out.set(f, o);
    o += f.length;
  }
  return out;
}

/** Recompute every frame's inverted length and checksum, walking by the (possibly damaged) lengths. */
function fixChecksums(log: Uint8Array): void {
  let o = 16;
  while (o + FRAME_HEADER <= log.length) {
    const dv = new DataView(log.buffer, log.byteOffset + o, FRAME_HEADER);
    const len = dv.getUint32(0, true);
    if (o + FRAME_HEADER + len > log.length) break;
    dv.setUint32(4, ~len >>> 0, true);
    dv.setUint32(8, crc32(log.subarray(o + FRAME_HEADER, o + FRAME_HEADER + len)), true);
    o += FRAME_HEADER + len;
  }
}

let dirCounter = 0;
const TMP = (() => {
  try {
    return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
})();

export const fileBackendTarget: Target = {
  name: "file-backend",
  contract: "FileBackend.load of a snapshot + mutated log, with and without --recover (BackendError)",
  corpus() {
    const [, commit, small, dom] = payloads();
    // Input: u8 flags (bit 0: --recover, bit 1: recompute checksums), then the log file.
    const withFlags = (flags: number, log: Uint8Array) => {
      const b = new Uint8Array(1 + log.length);
      b[0] = flags;
      b.set(log, 1);
      return b;
    };
    return [
      withFlags(2, logFile(1, [commit, small, dom])),
      withFlags(3, logFile(1, [commit, dom, small])),
      withFlags(0, logFile(1, [small])),
      withFlags(2, logFile(2, [commit])),
    ];
  },
  run(input) {
    if (input.length < 1) return;
    const flags = input[0];
    const log = input.slice(1);
    if (flags & 2) fixChecksums(log);
    const dir = Deno.makeTempDirSync({ dir: TMP, prefix: `dxs-fuzz-${dirCounter++ % 1000}-` });
    try {
      Deno.writeFileSync(`${dir}/snapshot`, SNAPSHOT_FILE);
      Deno.writeFileSync(`${dir}/log`, log);
      const b = new FileBackend(dir, { recover: (flags & 1) === 1, preallocBytes: 0 });
      try {
        const st = b.load();
        if (st !== null) checkLoaded(st.root, st.gen, "a loaded store");
      } finally {
        b.close();
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  expected: (e) => e instanceof BackendError,
  ciCases: 100,
};

/** The snapshot file every case starts from (magic, the tree record). */
const SNAPSHOT_FILE = (() => {
  const magic = enc.encode("DXSSNAP1");
  const rec = frameRecord(payloads()[0]);
  const out = new Uint8Array(magic.length + rec.length);
  out.set(magic);
  out.set(rec, magic.length);
  return out;
})();
