// The file backend's on-disk format and reading a store back at start: the snapshot, then the log
// replayed over it. The writing side — appends, group commit, compaction — is ./file.ts. Directory
// layout (docs/backends.md has the formats):
//
//   snapshot     "DXSSNAP1" + one frame (KIND_SNAPSHOT: gen, epoch E, every node parents first)
//                [+ one KIND_DOMAINS frame: the introduced domains]
//   log          "DXSLOG01" + u32 epoch E + u32 crc32(previous 12 bytes), then KIND_COMMIT and
//                KIND_DOMAINS frames
//   lock         held (flock) while a daemon uses the directory
//   *.tmp        a compaction in progress (removed at start)
//   log.dropped-<epoch>-<offset>   bytes discarded by --recover
//
// The log of epoch E continues the snapshot of epoch E. Compaction writes snapshot E+1 and an empty
// log E+1 to temp files (fsync), then renames the snapshot, then the log: a crash between the two
// renames leaves a stale log E, recognised by its epoch and ignored.
import { log } from "../common/log.ts";
import { initialRoot } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import { BackendError, type LoadedState } from "./backend.ts";
import { type Disk, readIfExists, REAL_DISK } from "./disk.ts";
import { decodeDomains, type DomainRecord, encodeDomains } from "./domains.ts";
import {
  ApplyError,
  applyOp,
  applyOps,
  buildTree,
  crc32,
  decodePayload,
  FRAME_HEADER,
  KIND_COMMIT,
  KIND_DOMAINS,
  KIND_SNAPSHOT,
  maxGen,
  readFrame,
} from "./records.ts";

export const SNAP_MAGIC = "DXSSNAP1";
const LOG_MAGIC = "DXSLOG01";
export const LOG_HEADER = 16;

/** True if b[from..] holds only zeros (preallocated or never-written space). */
function zeroFrom(b: Uint8Array, from: number): boolean {
  for (let i = from; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function logHeader(epoch: number): Uint8Array {
  const h = new Uint8Array(LOG_HEADER);
  h.set(ascii(LOG_MAGIC));
  const dv = new DataView(h.buffer);
  dv.setUint32(8, epoch, true);
  dv.setUint32(12, crc32(h.subarray(0, 12)), true);
  return h;
}

/** A KIND_DOMAINS payload: u8 kind, then the domain set as JSON (src/backend/domains.ts). */
export function domainsPayload(records: readonly DomainRecord[]): Uint8Array {
  const json = encodeDomains(records);
  const b = new Uint8Array(1 + json.length);
  b[0] = KIND_DOMAINS;
  b.set(json, 1);
  return b;
}

/**
 * Reading a store back: the snapshot, then the log replayed over it (torn tails cut, damage refused
 * or, with --recover, dropped and saved). What it finds sets the backend's starting state.
 */
export class FileStoreLoader {
  epoch = 0;
  domains: readonly DomainRecord[] = [];
  snapshotSize = 0;
  /** The store must be compacted before it is written (fresh, recovered, or a stale log). */
  needCompact = false;
  /** Where the log's valid records end (the log is opened there); null: not opened (compaction writes it). */
  logEnd: number | null = null;

  constructor(
    readonly dir: string,
    readonly name: string,
    private readonly recover: boolean,
    private readonly disk: Disk = REAL_DISK,
  ) {}

  private p(name: string): string {
    return `${this.dir}/${name}`;
  }

  /** Read the snapshot and replay the log; null for an empty directory (a fresh store). */
  load(): LoadedState | null {
    const snapBytes = readIfExists(this.disk, this.p("snapshot"));
    const logBytes = readIfExists(this.disk, this.p("log"));
    if (snapBytes === null && logBytes === null) {
      this.needCompact = true; // fresh: the first compaction writes snapshot 1 and log 1
      return null;
    }
    const recover = this.recover;
    let root: Node;
    let gen: number;
    let tolerant = false;
    if (snapBytes !== null) {
      const s = this.readSnapshot(snapBytes);
      root = s.root;
      gen = s.gen;
      this.epoch = s.epoch;
      this.domains = s.domains;
      this.snapshotSize = snapBytes.length;
    } else {
      if (!recover) {
        throw new BackendError(
          `${this.p("snapshot")} is missing but ${this.p("log")} exists: the log cannot be replayed ` +
            `without its snapshot. Restore the snapshot, or start with --recover to replay the log over ` +
            `the initial tree (records whose parent nodes are missing are dropped).`,
        );
      }
      log("warn", `${this.name}: snapshot missing; --recover: replaying the log over the initial tree`);
      root = initialRoot(0);
      gen = 0;
      tolerant = true;
      this.needCompact = true;
    }
    if (logBytes === null) {
      log("warn", `${this.name}: log missing; starting from the snapshot (epoch ${this.epoch})`);
      this.needCompact = true;
      return { root, gen, domains: this.domains };
    }
    const header = this.readLogHeader(logBytes);
    if (header === null) {
      if (!recover) {
        throw new BackendError(
          `${
            this.p("log")
          }: damaged header; start with --recover to drop the whole log (${logBytes.length} bytes)`,
        );
      }
      this.drop(logBytes, 0, "damaged log header");
      this.needCompact = true;
      return { root, gen: Math.max(gen, maxGen(root)), domains: this.domains };
    }
    if (snapBytes === null) this.epoch = header;
    if (header < this.epoch) {
      // A compaction was interrupted between its two renames: the snapshot already holds this log.
      log("info", `${this.name}: ignoring stale log of epoch ${header} (snapshot epoch ${this.epoch})`);
      this.needCompact = true;
      return { root, gen, domains: this.domains };
    }
    if (header > this.epoch) {
      if (!recover) {
        throw new BackendError(
          `${this.p("log")} (epoch ${header}) is newer than the snapshot (epoch ${this.epoch}): the ` +
            `snapshot it continues is missing. Start with --recover to replay it anyway (records whose ` +
            `parent nodes are missing are dropped).`,
        );
      }
      tolerant = true;
      this.needCompact = true;
    }
    // Replay.
    let pos = LOG_HEADER;
    let records = 0;
    let skippedOps = 0;
    while (pos < logBytes.length) {
      const f = readFrame(logBytes, pos);
      let problem: string | null = null;
      let torn = false;
      if (!f.ok) {
        problem = f.reason;
        // Torn: cut by the end of the file, or followed by nothing but zeros (preallocated space,
        // or blocks allocated but never written before a power loss).
        torn = f.reachesEof || zeroFrom(logBytes, pos) || zeroFrom(logBytes, f.end ?? pos + FRAME_HEADER);
      } else if (f.payload[0] === KIND_DOMAINS) {
        try {
          this.domains = decodeDomains(f.payload.subarray(1));
          records++;
          pos = f.end;
          continue;
        } catch (e) {
          problem = `undecodable domain record: ${(e as Error).message}`;
        }
      } else {
        try {
          const rec = decodePayload(f.payload);
          if (rec.kind !== KIND_COMMIT) throw new ApplyError(`unexpected record kind ${rec.kind}`);
          if (tolerant) {
            for (const op of rec.ops) {
              try {
                root = applyOp(root, op);
              } catch (e) {
                if (!(e instanceof ApplyError)) throw e;
                skippedOps++;
              }
            }
          } else root = applyOps(root, rec.ops);
          gen = Math.max(gen, rec.gen);
          records++;
          pos = f.end;
          continue;
        } catch (e) {
          problem = `undecodable record: ${(e as Error).message}`;
        }
      }
      if (torn && zeroFrom(logBytes, pos)) {
        log(
          "debug",
          `${this.name}: ${logBytes.length - pos} zero bytes after the last record (preallocated)`,
        );
      } else if (torn) {
        log(
          "warn",
          `${this.name}: discarding a torn last record at offset ${pos} ` +
            `(${logBytes.length - pos} bytes: ${problem}); it was never acknowledged`,
        );
      } else if (!recover) {
        throw new BackendError(
          `${this.p("log")} is corrupt at offset ${pos} of ${logBytes.length} (${problem}) after ` +
            `${records} valid records. Start with --recover to keep those records and drop the ` +
            `remaining ${logBytes.length - pos} bytes (saved to log.dropped-*).`,
        );
      } else {
        this.drop(logBytes, pos, problem!);
        this.needCompact = true;
      }
      break;
    }
    if (skippedOps > 0) {
      log("warn", `${this.name}: --recover dropped ${skippedOps} node operations whose parents are missing`);
    }
    if (pos < logBytes.length) {
      this.disk.truncateSync(this.p("log"), pos);
    }
    if (tolerant) gen = Math.max(gen, maxGen(root));
    this.logEnd = pos;
    log("info", `${this.name}: loaded snapshot epoch ${this.epoch} + ${records} log records, gen ${gen}`);
    return { root, gen, domains: this.domains };
  }

  private readSnapshot(
    b: Uint8Array,
  ): { root: Node; gen: number; epoch: number; domains: readonly DomainRecord[] } {
    const bad = (why: string) =>
      new BackendError(
        `${this.p("snapshot")} is damaged (${why}). Snapshots are replaced atomically, so this is ` +
          `media or operator damage: restore it from a backup (--recover does not rebuild snapshots).`,
      );
    if (b.length < 8 || String.fromCharCode(...b.subarray(0, 8)) !== SNAP_MAGIC) throw bad("bad magic");
    const f = readFrame(b, 8);
    if (!f.ok) throw bad(f.reason);
    let domains: readonly DomainRecord[] = [];
    if (f.end !== b.length) {
      const d = readFrame(b, f.end);
      if (!d.ok) throw bad(`domain records: ${d.reason}`);
      if (d.end !== b.length) throw bad("trailing bytes");
      if (d.payload[0] !== KIND_DOMAINS) throw bad(`record kind ${d.payload[0]} after the tree`);
      try {
        domains = decodeDomains(d.payload.subarray(1));
      } catch (e) {
        throw bad((e as Error).message);
      }
    }
    try {
      const rec = decodePayload(f.payload);
      if (rec.kind !== KIND_SNAPSHOT) throw new Error(`record kind ${rec.kind}`);
      const root = buildTree(rec.ops.map((op) => {
        if (op.op !== "put") throw new Error("delete in snapshot");
        return op;
      }));
      return { root, gen: rec.gen, epoch: rec.epoch, domains };
    } catch (e) {
      throw bad((e as Error).message);
    }
  }

  /** The epoch of a log header, or null if it is damaged. */
  private readLogHeader(b: Uint8Array): number | null {
    if (b.length < LOG_HEADER || String.fromCharCode(...b.subarray(0, 8)) !== LOG_MAGIC) return null;
    const dv = new DataView(b.buffer, b.byteOffset, LOG_HEADER);
    if (crc32(b.subarray(0, 12)) !== dv.getUint32(12, true)) return null;
    return dv.getUint32(8, true);
  }

  /** --recover: save the bytes from `pos` on for inspection and report them. */
  private drop(b: Uint8Array, pos: number, why: string): void {
    const name = `log.dropped-${this.epoch}-${pos}`;
    this.disk.writeFileSync(this.p(name), b.subarray(pos));
    let later = 0; // records that still look valid after the damage (lost with it)
    for (let i = pos + 1; i + 12 <= b.length; i++) {
      const f = readFrame(b, i);
      if (f.ok) {
        later++;
        i = f.end - 1;
      }
    }
    log(
      "warn",
      `${this.name}: --recover: dropped ${b.length - pos} bytes from offset ${pos} (${why}), ` +
        `including ${later} intact-looking later records; saved to ${this.p(name)}`,
    );
  }
}
