// The file backend: a snapshot of the whole tree plus an append-only log of checksummed commit
// records (docs/backends.md has the formats). Directory layout:
//
//   snapshot     "DXSSNAP1" + one frame (KIND_SNAPSHOT: gen, epoch E, every node parents first)
//   log          "DXSLOG01" + u32 epoch E + u32 crc32(previous 12 bytes), then KIND_COMMIT frames
//   lock         held (flock) while a daemon uses the directory
//   *.tmp        a compaction in progress (removed at start)
//   log.dropped-<epoch>-<offset>   bytes discarded by --recover
//
// The log of epoch E continues the snapshot of epoch E. Compaction writes snapshot E+1 and an empty
// log E+1 to temp files (fsync), then renames the snapshot, then the log: a crash between the two
// renames leaves a stale log E, recognised by its epoch and ignored.
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Commit } from "../store/database.ts";
import { initialRoot } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  ioError,
  type LoadedState,
} from "./backend.ts";
import {
  ApplyError,
  applyOp,
  applyOps,
  buildTree,
  commitOps,
  crc32,
  decodePayload,
  encodePayload,
  frameRecord,
  KIND_COMMIT,
  KIND_SNAPSHOT,
  maxGen,
  readFrame,
  treeOps,
} from "./records.ts";

const SNAP_MAGIC = "DXSSNAP1";
const LOG_MAGIC = "DXSLOG01";
export const LOG_HEADER = 16;

export interface FileBackendOptions extends BackendOptions {
  /** Compact once the log exceeds max(this, 2 × snapshot size). Default 4 MiB. */
  readonly compactBytes?: number;
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function logHeader(epoch: number): Uint8Array {
  const h = new Uint8Array(LOG_HEADER);
  h.set(ascii(LOG_MAGIC));
  const dv = new DataView(h.buffer);
  dv.setUint32(8, epoch, true);
  dv.setUint32(12, crc32(h.subarray(0, 12)), true);
  return h;
}

function readIfExists(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function writeAll(f: Deno.FsFile, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += f.writeSync(b.subarray(off));
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

export class FileBackend implements Backend {
  readonly name: string;
  private readonly opts: FileBackendOptions;
  private lockFile: Deno.FsFile | null = null;
  private logFile: Deno.FsFile | null = null;
  private epoch = 0;
  private logSize = 0;
  private snapshotSize = 0;
  private needCompact = false;
  /** Set after an I/O failure that leaves the on-disk state uncertain: every later persist fails. */
  private failed: string | null = null;

  constructor(readonly dir: string, opts: Partial<FileBackendOptions> = {}) {
    this.name = `file:${dir}`;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts };
  }

  private p(name: string): string {
    return `${this.dir}/${name}`;
  }

  load(): LoadedState | null {
    try {
      return this.loadLocked();
    } catch (e) {
      this.close(); // release the lock: a refused start leaves the directory as it was
      throw e;
    }
  }

  private loadLocked(): LoadedState | null {
    Deno.mkdirSync(this.dir, { recursive: true });
    this.lockFile = Deno.openSync(this.p("lock"), { read: true, write: true, create: true });
    if (!this.lockFile.tryLockSync(true)) {
      this.lockFile.close();
      this.lockFile = null;
      throw new BackendError(`${this.dir} is in use by another daemon (lock held)`);
    }
    removeIfExists(this.p("snapshot.tmp"));
    removeIfExists(this.p("log.tmp"));
    const snapBytes = readIfExists(this.p("snapshot"));
    const logBytes = readIfExists(this.p("log"));
    if (snapBytes === null && logBytes === null) {
      this.needCompact = true; // fresh: the first compaction writes snapshot 1 and log 1
      return null;
    }
    const recover = this.opts.recover;
    let root: Node;
    let gen: number;
    let tolerant = false;
    if (snapBytes !== null) {
      const s = this.readSnapshot(snapBytes);
      root = s.root;
      gen = s.gen;
      this.epoch = s.epoch;
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
      return { root, gen };
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
      return { root, gen: Math.max(gen, maxGen(root)) };
    }
    if (snapBytes === null) this.epoch = header;
    if (header < this.epoch) {
      // A compaction was interrupted between its two renames: the snapshot already holds this log.
      log("info", `${this.name}: ignoring stale log of epoch ${header} (snapshot epoch ${this.epoch})`);
      this.needCompact = true;
      return { root, gen };
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
        torn = f.reachesEof || logBytes.subarray(pos).every((b) => b === 0);
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
      if (torn) {
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
      Deno.truncateSync(this.p("log"), pos);
    }
    if (tolerant) gen = Math.max(gen, maxGen(root));
    this.openLog(pos);
    log("info", `${this.name}: loaded snapshot epoch ${this.epoch} + ${records} log records, gen ${gen}`);
    return { root, gen };
  }

  private readSnapshot(b: Uint8Array): { root: Node; gen: number; epoch: number } {
    const bad = (why: string) =>
      new BackendError(
        `${this.p("snapshot")} is damaged (${why}). Snapshots are replaced atomically, so this is ` +
          `media or operator damage: restore it from a backup (--recover does not rebuild snapshots).`,
      );
    if (b.length < 8 || String.fromCharCode(...b.subarray(0, 8)) !== SNAP_MAGIC) throw bad("bad magic");
    const f = readFrame(b, 8);
    if (!f.ok) throw bad(f.reason);
    if (f.end !== b.length) throw bad("trailing bytes");
    try {
      const rec = decodePayload(f.payload);
      if (rec.kind !== KIND_SNAPSHOT) throw new Error(`record kind ${rec.kind}`);
      const root = buildTree(rec.ops.map((op) => {
        if (op.op !== "put") throw new Error("delete in snapshot");
        return op;
      }));
      return { root, gen: rec.gen, epoch: rec.epoch };
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
    Deno.writeFileSync(this.p(name), b.subarray(pos));
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

  private openLog(size: number): void {
    const f = Deno.openSync(this.p("log"), { read: true, write: true });
    f.seekSync(size, Deno.SeekMode.Start);
    this.logFile = f;
    this.logSize = size;
  }

  persist(c: Commit, gen: number): void {
    if (this.failed !== null) throw new XsError("EIO", `${this.name} disabled: ${this.failed}`);
    const f = this.logFile;
    if (f === null) throw new XsError("EIO", `${this.name}: log not open`);
    const frame = frameRecord(encodePayload({ kind: KIND_COMMIT, gen, epoch: 0, ops: commitOps(c) }));
    try {
      this.writeLog(f, frame);
    } catch (e) {
      this.undo(f, e);
      throw ioError(`${this.name}: log write`, e);
    }
    if (this.opts.sync === "always") {
      try {
        this.syncLog(f);
      } catch (e) {
        // After a failed fsync the kernel may have dropped the pages: nothing written since is
        // trustworthy. Take the record back and refuse further writes until a restart.
        this.undo(f, e);
        this.failed ??= `fsync failed: ${(e as Error).message}`;
        throw ioError(`${this.name}: fsync`, e);
      }
    }
    this.logSize += frame.length;
  }

  /** The one place a log record is written (tests override it to inject faults). */
  protected writeLog(f: Deno.FsFile, frame: Uint8Array): void {
    writeAll(f, frame);
  }

  /** The one place the log is synced (tests override it to inject faults). */
  protected syncLog(f: Deno.FsFile): void {
    f.syncDataSync();
  }

  /** Cut a partly written record off the end so the log stays a clean sequence of records. */
  private undo(f: Deno.FsFile, cause: unknown): void {
    try {
      f.truncateSync(this.logSize);
      f.seekSync(this.logSize, Deno.SeekMode.Start);
    } catch (e) {
      this.failed ??= `could not take back a failed write (${(cause as Error).message}): ${
        (e as Error).message
      }`;
      log("error", `${this.name}: ${this.failed}; refusing further writes`);
    }
  }

  wantsCompaction(): boolean {
    if (this.failed !== null) return false;
    return this.needCompact ||
      this.logSize > Math.max(this.opts.compactBytes ?? 4 << 20, 2 * this.snapshotSize);
  }

  compact(root: Node, gen: number): void {
    if (this.failed !== null) throw new Error(`${this.name} disabled: ${this.failed}`);
    const next = this.epoch + 1;
    const frame = frameRecord(encodePayload({ kind: KIND_SNAPSHOT, gen, epoch: next, ops: treeOps(root) }));
    const snap = new Uint8Array(8 + frame.length);
    snap.set(ascii(SNAP_MAGIC));
    snap.set(frame, 8);
    try {
      this.writeDurably(this.p("snapshot.tmp"), snap);
      this.writeDurably(this.p("log.tmp"), logHeader(next));
      Deno.renameSync(this.p("snapshot.tmp"), this.p("snapshot"));
    } catch (e) {
      try {
        removeIfExists(this.p("snapshot.tmp"));
        removeIfExists(this.p("log.tmp"));
      } catch { /* best effort */ }
      throw e;
    }
    // From here the old log is superseded: failing to switch to the new one must stop all writes
    // (appending to the old log would be ignored at the next start).
    try {
      this.syncDir();
      Deno.renameSync(this.p("log.tmp"), this.p("log"));
      this.syncDir();
      this.logFile?.close();
      this.logFile = null;
      this.epoch = next;
      this.openLog(LOG_HEADER);
    } catch (e) {
      this.failed = `compaction could not switch logs: ${(e as Error).message}`;
      log("error", `${this.name}: ${this.failed}; refusing further writes`);
      throw e;
    }
    this.snapshotSize = snap.length;
    this.needCompact = false;
    log("debug", `${this.name}: compacted to epoch ${next} (${snap.length} bytes, gen ${gen})`);
  }

  private writeDurably(path: string, b: Uint8Array): void {
    const f = Deno.openSync(path, { write: true, create: true, truncate: true });
    try {
      writeAll(f, b);
      f.syncSync();
    } finally {
      f.close();
    }
  }

  private syncDir(): void {
    const d = Deno.openSync(this.dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  }

  close(): void {
    this.logFile?.close();
    this.logFile = null;
    this.lockFile?.close();
    this.lockFile = null;
  }
}
