/**
 * A simulated disk under the file backend (src/backend/disk.ts Disk), driven by the simulation's seed.
 *
 * Each file (inode) has the bytes a reader sees now (`data`) and the bytes on the platter (`durable`),
 * with the operations between them (`pending`: writes and truncations since the last sync) in order.
 * The namespace (which name points at which inode) is the same: a live map, a durable map, and the
 * pending creations, renames and removals, made durable by syncing the directory. What it can do:
 *
 *  - lose unsynced data: a crash keeps, per file and for the namespace, a random prefix of the pending
 *    operations (write-back in order, stopped at a random point), the last write possibly torn (a prefix
 *    of its bytes) — so a record the backend never synced may be half there, or there, or not;
 *  - fail fsync (EIO): a random prefix of that file's pending writes reached the platter, the rest is
 *    lost, yet a reader still sees it all (Linux drops the dirty pages' error state, "fsyncgate");
 *  - fail a write (EIO), and run out of space (ENOSPC, after writing what fits);
 *  - crash at its N-th operation: the platter is frozen as it is at that moment (then `onCrash` runs) and
 *    every later operation fails, as the process is dead — its later output is thrown away by the world.
 *
 * Everything is deterministic: the faults come from the seeded Rng passed in.
 */
import type { Disk, DiskFile } from "../../src/backend/disk.ts";
import type { Rng } from "../helpers/rng.ts";

type Op = { readonly kind: "write"; readonly at: number; readonly bytes: Uint8Array } | {
  readonly kind: "truncate";
  readonly len: number;
};

type NsOp =
  | { readonly kind: "link"; readonly name: string; readonly ino: Inode }
  | { readonly kind: "unlink"; readonly name: string }
  /** rename(2): atomic, also across a crash. */
  | { readonly kind: "rename"; readonly from: string; readonly name: string; readonly ino: Inode };

class Inode {
  data: Uint8Array = new Uint8Array(0);
  durable: Uint8Array = new Uint8Array(0);
  pending: Op[] = [];
  constructor(readonly id: number) {}
}

export interface DiskFaults {
  /** Probability that one fsync/fdatasync fails with EIO. */
  readonly fsyncFail: number;
  /** Probability that one write fails with EIO (before writing anything). */
  readonly writeFail: number;
  /** Bytes the disk holds (sum of the files' sizes): beyond, writes fail with ENOSPC. */
  readonly capacity: number;
  /** Probability that the last kept write of a file is torn at a crash. */
  readonly tear: number;
}

export const NO_FAULTS: DiskFaults = {
  fsyncFail: 0,
  writeFail: 0,
  capacity: Number.MAX_SAFE_INTEGER,
  tear: 0,
};

/** The process died (a crash point was reached): nothing it does from here on is real. */
export class DeadProcessError extends Error {
  override name = "DeadProcessError";
}

function osError(code: "EIO" | "ENOSPC", what: string): Error {
  const msg = code === "EIO" ? "Input/output error (os error 5)" : "No space left on device (os error 28)";
  return Object.assign(new Error(`${msg}: ${what}`), { code });
}

function resized(b: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(b.subarray(0, Math.min(len, b.length)));
  return out;
}

function applyOp(b: Uint8Array, op: Op): Uint8Array {
  if (op.kind === "truncate") return resized(b, op.len);
  const end = op.at + op.bytes.length;
  const out = end > b.length ? resized(b, end) : b;
  out.set(op.bytes, op.at);
  return out;
}

export class SimDisk implements Disk {
  readonly directIo = false;
  private live = new Map<string, Inode>();
  private durableNs = new Map<string, Inode>();
  private pendingNs: NsOp[] = [];
  private readonly dirs = new Set<string>(["/"]);
  private locks = new Set<Inode>();
  private nextIno = 1;
  /** Operations so far (the crash point counts them). */
  ops = 0;
  /** Crash when `ops` reaches this (0: never). */
  crashAt = 0;
  /** The process is dead: every operation fails until `restart()`. */
  dead = false;
  /** Faults injected so far, by kind (the run's statistics). */
  readonly injected = { fsyncFail: 0, writeFail: 0, enospc: 0, torn: 0, lostOps: 0 };
  /** Runs when the crash point is reached (the world freezes what else the process shared). */
  onCrash: () => void = () => {};

  constructor(private readonly rng: Rng, public faults: DiskFaults = NO_FAULTS) {}

  // ---- the world's side ---------------------------------------------------------------------------

  /** Bytes in use (what ENOSPC is measured against). */
  get used(): number {
    let n = 0;
    for (const ino of new Set(this.live.values())) n += ino.data.length;
    return n;
  }

  /**
   * Power loss / kill -9: keep a random prefix of each file's unsynced writes and of the namespace's
   * unsynced changes, then start over from the platter (locks released: the process is gone).
   */
  crash(): void {
    if (!this.dead) this.freeze();
    this.dead = false;
    this.crashAt = 0;
  }

  /** A clean stop: everything written reached the platter (the backend synced what mattered). */
  private freeze(): void {
    const inodes = new Set<Inode>([...this.live.values(), ...this.durableNs.values()]);
    for (const op of this.pendingNs) if (op.kind !== "unlink") inodes.add(op.ino);
    for (const ino of inodes) {
      ino.durable = this.writeBack(
        ino,
        ino.pending.length === 0 ? 0 : this.rng.int(ino.pending.length + 1),
        true,
      );
      ino.pending = [];
    }
    const keep = this.pendingNs.length === 0 ? 0 : this.rng.int(this.pendingNs.length + 1);
    this.injected.lostOps += this.pendingNs.length - keep;
    for (const op of this.pendingNs.slice(0, keep)) this.applyNs(op);
    this.pendingNs = [];
    this.live = new Map(this.durableNs);
    for (const ino of new Set(this.live.values())) ino.data = ino.durable.slice();
    this.locks = new Set();
  }

  /** The platter after the first `keep` pending operations of `ino` (the last one possibly torn). */
  private writeBack(ino: Inode, keep: number, mayTear: boolean): Uint8Array {
    let b = ino.durable;
    this.injected.lostOps += ino.pending.length - keep;
    for (let i = 0; i < keep; i++) {
      let op = ino.pending[i];
      const last = i === keep - 1 && op.kind === "write" && op.bytes.length > 1;
      if (last && op.kind === "write" && mayTear && this.rng.chance(this.faults.tear)) {
        op = { kind: "write", at: op.at, bytes: op.bytes.subarray(0, 1 + this.rng.int(op.bytes.length - 1)) };
        this.injected.torn++;
      }
      b = applyOp(b, op);
    }
    return b.slice();
  }

  /** Every file's bytes as a reader sees them (a digest of the disk for the trace). */
  files(): Array<[string, Uint8Array]> {
    return [...this.live.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([n, i]) => [n, i.data]);
  }

  // ---- the process's side -------------------------------------------------------------------------

  /** Count one operation; reaching the crash point kills the process. */
  private step(what: string): void {
    if (this.dead) throw new DeadProcessError(`dead process: ${what}`);
    this.ops++;
    if (this.crashAt > 0 && this.ops >= this.crashAt) {
      this.freeze();
      this.dead = true;
      this.onCrash();
      throw new DeadProcessError(`crash point reached at ${what}`);
    }
  }

  private write(ino: Inode, at: number, p: Uint8Array): number {
    this.step("write");
    if (this.rng.chance(this.faults.writeFail)) {
      this.injected.writeFail++;
      throw osError("EIO", "write");
    }
    const grow = Math.max(0, at + p.length - ino.data.length);
    const room = this.faults.capacity - this.used;
    let n = p.length;
    if (grow > room) {
      n = Math.max(0, p.length - (grow - Math.max(0, room)));
      if (n === 0) {
        this.injected.enospc++;
        throw osError("ENOSPC", "write");
      }
    }
    const bytes = p.slice(0, n);
    ino.data = applyOp(ino.data, { kind: "write", at, bytes });
    ino.pending.push({ kind: "write", at, bytes });
    return n;
  }

  private truncate(ino: Inode, len: number): void {
    this.step("truncate");
    ino.data = resized(ino.data, len);
    ino.pending.push({ kind: "truncate", len });
  }

  private sync(ino: Inode): void {
    this.step("fsync");
    if (this.rng.chance(this.faults.fsyncFail)) {
      this.injected.fsyncFail++;
      // Some of it reached the platter, the rest is lost for good; readers still see it all.
      ino.durable = this.writeBack(ino, this.rng.int(ino.pending.length + 1), true);
      ino.pending = [];
      throw osError("EIO", "fsync");
    }
    ino.durable = this.writeBack(ino, ino.pending.length, false);
    ino.pending = [];
  }

  private syncNamespace(): void {
    this.step("fsync(dir)");
    for (const op of this.pendingNs) this.applyNs(op);
    this.pendingNs = [];
  }

  private applyNs(op: NsOp): void {
    if (op.kind === "unlink") this.durableNs.delete(op.name);
    else {
      if (op.kind === "rename") this.durableNs.delete(op.from);
      this.durableNs.set(op.name, op.ino);
    }
  }

  private lookup(path: string): Inode {
    const ino = this.live.get(path);
    if (ino === undefined) throw new Deno.errors.NotFound(`no such file: ${path}`);
    return ino;
  }

  openSync(path: string, options: Deno.OpenOptions): DiskFile {
    this.step(`open ${path}`);
    if (this.dirs.has(path)) return this.dirHandle();
    let ino = this.live.get(path);
    if (ino === undefined) {
      if (options.create !== true) throw new Deno.errors.NotFound(`no such file: ${path}`);
      ino = new Inode(this.nextIno++);
      this.live.set(path, ino);
      this.pendingNs.push({ kind: "link", name: path, ino });
    } else if (options.truncate === true) this.truncate(ino, 0);
    return this.fileHandle(ino);
  }

  private dirHandle(): DiskFile {
    const no = (): never => {
      throw osError("EIO", "not a file");
    };
    return {
      writeSync: no,
      readSync: no,
      seekSync: no,
      truncateSync: no,
      syncDataSync: () => this.syncNamespace(),
      syncSync: () => this.syncNamespace(),
      tryLockSync: no,
      close: () => {},
    };
  }

  private fileHandle(ino: Inode): DiskFile {
    let pos = 0;
    let locked = false;
    return {
      writeSync: (p) => {
        const n = this.write(ino, pos, p);
        pos += n;
        return n;
      },
      readSync: (p) => {
        this.step("read");
        if (pos >= ino.data.length) return null;
        const n = Math.min(p.length, ino.data.length - pos);
        p.set(ino.data.subarray(pos, pos + n));
        pos += n;
        return n;
      },
      seekSync: (offset) => {
        pos = offset;
        return pos;
      },
      truncateSync: (len = 0) => this.truncate(ino, len),
      syncDataSync: () => this.sync(ino),
      syncSync: () => this.sync(ino),
      tryLockSync: () => {
        if (this.locks.has(ino)) return false;
        this.locks.add(ino);
        locked = true;
        return true;
      },
      close: () => {
        if (locked) this.locks.delete(ino);
        locked = false;
      },
    };
  }

  readFileSync(path: string): Uint8Array {
    this.step(`read ${path}`);
    return this.lookup(path).data.slice();
  }

  writeFileSync(path: string, data: Uint8Array): void {
    const f = this.openSync(path, { write: true, create: true, truncate: true });
    let o = 0;
    while (o < data.length) o += f.writeSync(data.subarray(o));
    f.close();
  }

  removeSync(path: string): void {
    this.step(`unlink ${path}`);
    this.lookup(path);
    this.live.delete(path);
    this.pendingNs.push({ kind: "unlink", name: path });
  }

  renameSync(from: string, to: string): void {
    this.step(`rename ${from}`);
    const ino = this.lookup(from);
    this.live.delete(from);
    this.live.set(to, ino);
    this.pendingNs.push({ kind: "rename", from, name: to, ino });
  }

  truncateSync(path: string, len: number): void {
    this.truncate(this.lookup(path), len);
  }

  mkdirSync(path: string): void {
    this.step(`mkdir ${path}`);
    this.dirs.add(path);
  }
}
