// The file backend: a snapshot of the whole tree plus an append-only log of checksummed commit
// records, in a directory (the layout: ./file_load.ts, which also reads a store back; the formats:
// docs/backends.md). This module writes: appends, group commit (buffered frames, direct and
// asynchronous writes, preallocation) and compaction.
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type AsyncSync,
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  type DeferredSync,
  groupWindowMs,
  ioError,
  type LoadedState,
} from "./backend.ts";
import type { DomainRecord } from "./domains.ts";
import {
  commitOps,
  encodeFrame,
  encodePayload,
  frameRecord,
  KIND_COMMIT,
  KIND_SNAPSHOT,
  treeOps,
} from "./records.ts";
import { DirectAppender, DirectWriteError } from "./direct_log.ts";
import { ascii, domainsPayload, FileStoreLoader, LOG_HEADER, logHeader, SNAP_MAGIC } from "./file_load.ts";
import {
  type Disk,
  type DiskFile,
  REAL_DISK,
  removeIfExists,
  syncDir,
  writeAll,
  writeDurably,
} from "./disk.ts";
import { AioContext } from "../../ffi/aio.ts";
import * as libc from "../../ffi/libc.ts";

export interface FileBackendOptions extends BackendOptions {
  /** Compact once the log exceeds max(this, 2 × snapshot size). Default 4 MiB. */
  readonly compactBytes?: number;
  /** Zero-filled space kept ahead of the log's end when syncing (0 = none). Default 1 MiB. */
  readonly preallocBytes?: number;
  /** Group mode: write each group with O_DIRECT|O_DSYNC where the file system allows (default true). */
  readonly directIo?: boolean;
  /** The file system (default: the real one). Any other has no O_DIRECT/AIO path (src/backend/disk.ts). */
  readonly disk?: Disk;
}

/** A group write submitted through AIO and not yet completed. */
interface InFlight {
  readonly frames: Uint8Array[];
  readonly bytes: number;
  /** committedSeq when it was submitted: durableSeq once it completes. */
  readonly seq: number;
}

export class FileBackend implements Backend, DeferredSync, AsyncSync {
  readonly name: string;
  private readonly opts: FileBackendOptions;
  private readonly group: boolean;
  /** Records stored so far, and how many of them are known durable (group mode: a running count). */
  private committed = 0;
  private durable = 0;
  /** Group mode: the AIO context and the eventfd its completions signal (null: synchronous writes). */
  private aio: AioContext | null = null;
  private aioFd = -1;
  private inFlight: InFlight | null = null;
  private readonly eventCount = new Uint8Array(8);
  private directRefusalLogged = false;
  /** Group mode: durable appends in one write (src/backend/direct_log.ts); null: write + fdatasync. */
  private direct: DirectAppender | null = null;
  /** The appender knows the log's last partial block (false after any write through the page cache). */
  private directReady = false;
  /** Log bytes were written through the page cache since the last sync: only fdatasync covers them. */
  private plainUnsynced = false;
  /** The introduced domains as last stored (rewritten into every snapshot). */
  private domains: readonly DomainRecord[] = [];
  private lockFile: DiskFile | null = null;
  private logFile: DiskFile | null = null;
  private epoch = 0;
  private logSize = 0;
  /** Bytes the log file really has: logSize plus zero-filled space ahead (preallocation). */
  private allocated = 0;
  /** After a reserve failed for lack of space: no new attempt before the log reaches this size. */
  private reserveAfter = 0;
  /**
   * Group mode: frames committed but not yet written, all inside preallocated space (so writing them
   * at the group's sync cannot fail for lack of space). `logSize` counts them; the file's write
   * position is at logSize - bufferedBytes.
   */
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private snapshotSize = 0;
  private needCompact = false;
  /** Set after an I/O failure that leaves the on-disk state uncertain: every later persist fails. */
  private failed: string | null = null;

  private readonly disk: Disk;

  constructor(readonly dir: string, opts: Partial<FileBackendOptions> = {}) {
    this.name = `file:${dir}`;
    this.disk = opts.disk ?? REAL_DISK;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts, ...(this.disk.directIo ? {} : { directIo: false }) };
    this.group = groupWindowMs(this.opts.sync) !== null;
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
    this.disk.mkdirSync(this.dir, { recursive: true });
    this.lockFile = this.disk.openSync(this.p("lock"), { read: true, write: true, create: true });
    if (!this.lockFile.tryLockSync(true)) {
      this.lockFile.close();
      this.lockFile = null;
      throw new BackendError(`${this.dir} is in use by another daemon (lock held)`, "EWOULDBLOCK");
    }
    removeIfExists(this.disk, this.p("snapshot.tmp"));
    removeIfExists(this.disk, this.p("log.tmp"));
    const loader = new FileStoreLoader(this.dir, this.name, this.opts.recover, this.disk);
    const state = loader.load();
    this.epoch = loader.epoch;
    this.domains = loader.domains;
    this.snapshotSize = loader.snapshotSize;
    this.needCompact = loader.needCompact;
    if (loader.logEnd !== null) this.openLog(loader.logEnd);
    return state;
  }

  private openLog(size: number): void {
    const f = this.disk.openSync(this.p("log"), { read: true, write: true });
    f.seekSync(size, Deno.SeekMode.Start);
    this.logFile = f;
    this.direct?.close();
    this.direct = null;
    this.directReady = false;
    if (this.group && this.opts.directIo !== false) {
      this.direct = DirectAppender.open(this.p("log"));
      if (this.direct === null && !this.directRefusalLogged) {
        this.directRefusalLogged = true;
        log("info", `${this.name}: O_DIRECT is not supported here; group syncs use write + fdatasync`);
      }
    }
    this.logSize = size;
    this.allocated = size;
    this.reserveAfter = 0;
  }

  /**
   * Keep zero-filled, synced space ahead of the log's end. Overwriting allocated blocks needs no
   * metadata update, so each commit's fdatasync writes just data (as PostgreSQL pre-zeroes its WAL);
   * the file's size changes once per preallocBytes. At start the zeros are recognised and cut off.
   */
  private reserve(f: DiskFile, need: number): void {
    const step = this.opts.preallocBytes ?? 1 << 20;
    if (this.opts.sync === "none" || step <= 0 || this.logSize + need <= this.allocated) return;
    if (this.logSize < this.reserveAfter) return;
    // From the log's end if records were appended past the reserve (after a reserve failed): zeros
    // written from a stale `allocated` would overwrite them.
    const start = Math.max(this.allocated, this.logSize - this.bufferedBytes);
    const target = Math.max(start + step, this.logSize + need);
    // A direct write in flight may cover the block where the zeros start: let it land first.
    this.settle();
    let written = false;
    try {
      f.seekSync(start, Deno.SeekMode.Start);
      writeAll(f, new Uint8Array(target - start));
      written = true;
      f.syncDataSync();
      this.allocated = target;
    } catch (e) {
      // Take the zeros back (never below `start`: what lies before it is the log).
      try {
        f.truncateSync(start);
      } catch { /* some zeros may stay: harmless, cut at the next start */ }
      if (written) {
        // The fsync failed: it covered the whole file, so (as for a record's own fsync) nothing
        // written since the last good sync is trustworthy: refuse further writes until a restart.
        this.failed ??= `fsync failed: ${(e as Error).message}`;
        throw ioError(`${this.name}: fsync`, e);
      }
      // No room for the reserve (a nearly full disk): append plainly (the record's own write then
      // succeeds or fails with the real error); retry one step later.
      this.reserveAfter = this.logSize + step;
    } finally {
      f.seekSync(this.logSize - this.bufferedBytes, Deno.SeekMode.Start);
    }
  }

  persist(c: Commit, gen: number): void {
    this.appendFrame(encodeFrame({ kind: KIND_COMMIT, gen, epoch: 0, ops: commitOps(c) }));
  }

  persistDomains(records: readonly DomainRecord[]): void {
    this.appendFrame(frameRecord(domainsPayload(records)));
    this.domains = [...records];
  }

  /** Append one framed record (and sync it in always mode); on failure the log is as before. */
  private appendFrame(frame: Uint8Array): void {
    if (this.failed !== null) throw new XsError("EIO", `${this.name} disabled: ${this.failed}`);
    const f = this.logFile;
    if (f === null) throw new XsError("EIO", `${this.name}: log not open`);
    if (this.group) {
      // Keep the record in memory until the group's sync writes and syncs them all at once; only
      // into preallocated space, else (a nearly full disk) it is written now, and fails now.
      this.reserve(f, frame.length);
      if (this.logSize + frame.length <= this.allocated) {
        this.buffered.push(frame);
        this.bufferedBytes += frame.length;
        this.logSize += frame.length;
        this.committed++;
        return;
      }
      this.settle();
      this.flushBuffered(f);
    }
    try {
      this.reserve(f, frame.length);
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
    if (this.group) this.committed++; // written (a nearly full disk) but not yet synced
  }

  deferredSync(): DeferredSync | null {
    return this.group ? this : null;
  }

  committedSeq(): number {
    return this.committed;
  }

  durableSeq(): number {
    return this.durable;
  }

  unsynced(): number {
    return this.committed - this.durable;
  }

  /** Group mode with direct I/O and Linux AIO available: the loop need not wait for group writes. */
  asyncSync(): AsyncSync | null {
    if (!this.group || this.opts.asyncIo === false || this.opts.directIo === false) return null;
    if (this.direct === null) return null; // O_DIRECT refused by this file system
    if (this.aio === null) {
      try {
        this.aio = AioContext.create(4);
        this.aioFd = libc.eventfd();
      } catch (e) {
        this.aio?.destroy();
        this.aio = null;
        log("info", `${this.name}: Linux AIO unavailable (${(e as Error).message}); group writes block`);
        return null;
      }
    }
    return this;
  }

  get completionFd(): number {
    return this.aioFd;
  }

  inFlightNow(): boolean {
    return this.inFlight !== null;
  }

  /**
   * Group mode: write the buffered records. Into preallocated space, so a failure is a media error:
   * the records are committed in memory with replies queued, so the backend stops (see syncNow).
   */
  private flushBuffered(f: DiskFile): void {
    // The direct appender writes through its own descriptor and reads the tail through this one:
    // this descriptor's position is set here, the one place group mode writes through it, and nowhere
    // on the per-group path.
    f.seekSync(this.logSize - this.bufferedBytes, Deno.SeekMode.Start);
    if (this.bufferedBytes === 0) return;
    const all = new Uint8Array(this.bufferedBytes);
    let o = 0;
    for (const b of this.buffered) {
      all.set(b, o);
      o += b.length;
    }
    try {
      this.writeLog(f, all);
    } catch (e) {
      this.failed ??= `writing ${this.buffered.length} group-committed records failed: ${
        (e as Error).message
      }`;
      log("error", `${this.name}: ${this.failed}; refusing further writes`);
      throw new XsError("EIO", `${this.name}: ${this.failed}`);
    }
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  /**
   * Group mode: make every record durable, inline — after the write in flight, one O_DIRECT|O_DSYNC
   * write where possible, else one write and one fdatasync.
   */
  syncNow(): void {
    if (this.failed !== null) throw new Error(`${this.name} disabled: ${this.failed}`);
    this.settle();
    const n = this.committed - this.durable;
    if (n === 0) return;
    try {
      if (!this.appendDirect()) {
        this.flushBuffered(this.logFile!);
        this.syncLog(this.logFile!);
        this.plainUnsynced = false;
      }
    } catch (e) {
      this.failed ??= `fsync failed: ${(e as Error).message}`;
      throw new Error(`${this.name}: fsync of ${n} records failed: ${(e as Error).message}`);
    }
    this.durable = this.committed;
  }

  /**
   * Group mode: start writing the buffered records durably through AIO and return at once; inline
   * (syncNow) where that cannot be done. Nothing while a write is in flight: the next one starts
   * after it completes, with everything buffered meanwhile.
   */
  startSync(): void {
    if (this.inFlight !== null) return;
    if (this.failed !== null) throw new Error(`${this.name} disabled: ${this.failed}`);
    const d = this.direct;
    if (this.aio === null || d === null || this.plainUnsynced || this.bufferedBytes === 0) {
      this.syncNow();
      return;
    }
    try {
      this.readyDirect(d);
      this.submitDirect(d, this.buffered, this.bufferedBytes);
    } catch (e) {
      this.directReady = false;
      if (e instanceof DirectWriteError) {
        // Not submitted (EINVAL, EAGAIN...): nothing was written; do it inline, which also decides
        // whether direct I/O is usable at all.
        log("info", `${this.name}: asynchronous group write refused (errno ${e.errno}); writing inline`);
        this.aio.destroy();
        this.aio = null;
        this.syncNow();
        return;
      }
      this.failed ??= `group write failed: ${(e as Error).message}`;
      throw e;
    }
    this.inFlight = { frames: this.buffered, bytes: this.bufferedBytes, seq: this.committed };
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  /** The completion eventfd was readable: collect the write in flight, if it has completed. */
  complete(): void {
    if (this.aio === null) return;
    libc.read(this.aioFd, this.eventCount); // reset the counter (nonblocking)
    if (this.inFlight === null) return;
    for (const c of this.aio.collect(false)) this.finishInFlight(c.res);
  }

  /** Wait for the write in flight, if any (before anything else touches the log). Throws if it failed. */
  private settle(): void {
    while (this.inFlight !== null && this.aio !== null) {
      for (const c of this.aio.collect(true)) this.finishInFlight(c.res);
    }
  }

  private finishInFlight(res: number): void {
    const w = this.inFlight;
    if (w === null) return;
    this.inFlight = null;
    let reached: number;
    try {
      reached = this.completeDirect(this.direct!, res);
    } catch (e) {
      this.directReady = false;
      if (e instanceof DirectWriteError && e.unsupported) {
        // Refused before any byte was written (alignment the device does not accept): write the
        // group again through the page cache and sync it, and stay on that path.
        this.buffered = w.frames.concat(this.buffered);
        this.bufferedBytes += w.bytes;
        this.giveUpDirect(e.errno);
        this.syncNow();
        return;
      }
      this.failed ??= `group write of ${w.frames.length} records failed: ${(e as Error).message}`;
      log("error", `${this.name}: ${this.failed}; refusing further writes`);
      // EIO also for a commit that was waiting for the write (preallocation settles it first).
      throw new XsError("EIO", `${this.name}: ${this.failed}`);
    }
    this.allocated = Math.max(this.allocated, reached);
    this.durable = w.seq;
  }

  /** Load the log's last partial block into the appender (after any write through the page cache). */
  private readyDirect(d: DirectAppender): void {
    if (this.directReady) return;
    const f = this.logFile!;
    const at = this.logSize - this.bufferedBytes;
    const start = DirectAppender.tailStart(at);
    const tail = new Uint8Array(at - start);
    f.seekSync(start, Deno.SeekMode.Start);
    for (let o = 0; o < tail.length;) {
      const n = f.readSync(tail.subarray(o));
      if (n === null) throw new Error(`log shorter than expected (${start + o} < ${at})`);
      o += n;
    }
    d.reset(at, tail);
    this.directReady = true;
  }

  /** The buffered records written durably with the direct appender; false if it cannot be used. */
  private appendDirect(): boolean {
    const d = this.direct;
    if (d === null || this.plainUnsynced || this.bufferedBytes === 0) return false;
    this.readyDirect(d);
    let reached: number;
    try {
      reached = this.writeLogDirect(d, this.buffered, this.bufferedBytes);
    } catch (e) {
      this.directReady = false;
      if (e instanceof DirectWriteError && e.unsupported) {
        this.giveUpDirect(e.errno);
        return false;
      }
      throw e;
    }
    this.allocated = Math.max(this.allocated, reached);
    this.buffered = [];
    this.bufferedBytes = 0;
    return true;
  }

  /** O_DIRECT writes are refused here (EINVAL): from now on every group is written and fdatasynced. */
  private giveUpDirect(errno: number): void {
    log("info", `${this.name}: O_DIRECT writes refused (errno ${errno}); syncing with fdatasync`);
    this.direct?.close();
    this.direct = null;
    this.aio?.destroy();
    this.aio = null;
  }

  /** The one place a group write is submitted through AIO (tests override it). */
  protected submitDirect(d: DirectAppender, frames: readonly Uint8Array[], bytes: number): void {
    d.submit(this.aio!, this.aioFd, frames, bytes);
  }

  /** The one place a submitted group write is completed (tests override it to inject faults). */
  protected completeDirect(d: DirectAppender, res: number): number {
    return d.complete(res);
  }

  /** The one place a group is written with the direct appender (tests override it). */
  protected writeLogDirect(d: DirectAppender, frames: readonly Uint8Array[], bytes: number): number {
    return d.append(frames, bytes);
  }

  /** The one place a log record is written (tests override it to inject faults). */
  protected writeLog(f: DiskFile, frame: Uint8Array): void {
    this.directReady = false;
    this.plainUnsynced = true;
    writeAll(f, frame);
  }

  /** The one place the log is synced (tests override it to inject faults). */
  protected syncLog(f: DiskFile): void {
    f.syncDataSync();
  }

  /** Cut a partly written record off the end so the log stays a clean sequence of records. */
  private undo(f: DiskFile, cause: unknown): void {
    try {
      f.truncateSync(this.logSize);
      f.seekSync(this.logSize, Deno.SeekMode.Start);
      this.allocated = this.logSize;
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
    this.settle(); // the old log's last group write lands before the logs switch
    const next = this.epoch + 1;
    const frame = frameRecord(encodePayload({ kind: KIND_SNAPSHOT, gen, epoch: next, ops: treeOps(root) }));
    const dom = this.domains.length > 0 ? frameRecord(domainsPayload(this.domains)) : new Uint8Array(0);
    const snap = new Uint8Array(8 + frame.length + dom.length);
    snap.set(ascii(SNAP_MAGIC));
    snap.set(frame, 8);
    snap.set(dom, 8 + frame.length);
    try {
      writeDurably(this.disk, this.p("snapshot.tmp"), snap);
      writeDurably(this.disk, this.p("log.tmp"), logHeader(next));
      this.disk.renameSync(this.p("snapshot.tmp"), this.p("snapshot"));
    } catch (e) {
      try {
        removeIfExists(this.disk, this.p("snapshot.tmp"));
        removeIfExists(this.disk, this.p("log.tmp"));
      } catch { /* best effort */ }
      throw e;
    }
    // From here the old log is superseded: failing to switch to the new one must stop all writes
    // (appending to the old log would be ignored at the next start).
    try {
      syncDir(this.disk, this.dir);
      this.disk.renameSync(this.p("log.tmp"), this.p("log"));
      syncDir(this.disk, this.dir);
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
    this.durable = this.committed; // the synced snapshot holds every record of the old log (and the buffer)
    this.buffered = [];
    this.bufferedBytes = 0;
    log("debug", `${this.name}: compacted to epoch ${next} (${snap.length} bytes, gen ${gen})`);
  }

  close(): void {
    if (this.committed > this.durable && this.failed === null) {
      try {
        this.syncNow();
      } catch (e) {
        log("error", (e as Error).message);
      }
    }
    if (this.inFlight !== null) {
      try {
        this.settle(); // the kernel still reads the buffer: never close under it
      } catch (e) {
        log("error", (e as Error).message);
      }
    }
    this.aio?.destroy();
    this.aio = null;
    if (this.aioFd >= 0) libc.close(this.aioFd);
    this.aioFd = -1;
    this.direct?.close();
    this.direct = null;
    if (this.logFile !== null && this.allocated > this.logSize && this.failed === null) {
      try {
        this.logFile.truncateSync(this.logSize); // a clean stop leaves no preallocated zeros
      } catch { /* cut at the next start */ }
    }
    this.logFile?.close();
    this.logFile = null;
    this.lockFile?.close();
    this.lockFile = null;
  }
}
