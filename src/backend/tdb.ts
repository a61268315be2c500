// The TDB backend: one TDB record per node, written through Samba's libtdb (src/backend/tdb_ffi.ts),
// one TDB transaction per committed change set. The proof that a native library plugs in behind the
// same interface, and the format cxenstored used (src/backend/xs_tdb.ts has the record layout).
//
//   "/path"               the node: cxenstored's xs_tdb_record_hdr layout (Xen 4.9+), child list empty
//   "dxenstored:format"   "1": this file is a dxenstored store (not a legacy xenstored database)
//   "dxenstored:gen"      the database's generation counter (decimal)
//   "dxenstored:domains"  the introduced domains (JSON, src/backend/domains.ts)
// (the layout shared with the C storage modules: src/backend/kv_layout.ts)
//
// libtdb's transactions are crash-safe (a recovery area is written and synced before the data;
// libtdb replays or discards it on the next open). With --sync=none the file is opened TDB_NOSYNC:
// still atomic against a daemon crash, not against power loss. Group commit is not offered: a TDB
// transaction cannot roll back one change set of a group (it has no savepoints).
import { log } from "../common/log.ts";
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  groupWindowMs,
  ioError,
  type LoadedState,
} from "./backend.ts";
import type { DomainRecord } from "./domains.ts";
import { KV_FORMAT_KEY, kvCommit, kvDomains, kvInitial, type KvOp, KvStoreReader } from "./kv_layout.ts";
import { commitOps } from "./records.ts";
import { latin1, TDB_DEFAULT, TDB_NOMMAP, TDB_NOSYNC, TdbFile } from "./tdb_ffi.ts";
import { O_CREAT, O_RDONLY, O_RDWR } from "../../ffi/libc.ts";
import { TDB_VERSION_XEN, tdbVersion } from "./xs_tdb.ts";

const KEY_FORMAT = latin1.encode(KV_FORMAT_KEY);
/** Hash buckets of a new file: 7919 is cxenstored's choice; more keeps chains short at 100k nodes. */
const HASH_SIZE = 65521;

export class TdbBackend implements Backend {
  readonly name: string;
  private readonly opts: BackendOptions;
  private tdb: TdbFile | null = null;
  private lockFile: Deno.FsFile | null = null;
  private fresh = false;

  constructor(readonly file: string, opts: Partial<BackendOptions> = {}) {
    this.name = `tdb:${file}`;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts };
  }

  load(): LoadedState | null {
    try {
      return this.loadLocked();
    } catch (e) {
      this.close();
      if (e instanceof BackendError) throw e;
      throw new BackendError(`${this.name}: ${(e as Error).message}`);
    }
  }

  private loadLocked(): LoadedState | null {
    if (groupWindowMs(this.opts.sync) !== null) {
      throw new BackendError(
        `${this.name}: --sync=${this.opts.sync} is not supported by the tdb backend (a TDB ` +
          `transaction cannot undo one change set of a group); use always or none`,
      );
    }
    const slash = this.file.lastIndexOf("/");
    if (slash > 0) Deno.mkdirSync(this.file.slice(0, slash), { recursive: true });
    let size = 0;
    try {
      size = Deno.statSync(this.file).size;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (size > 0 && tdbVersion(this.file) === TDB_VERSION_XEN) {
      throw new BackendError(
        `${this.file} is a database of Xen's C xenstored (4.9–4.17), not a dxenstored store. ` +
          `Import it into a new store: dxenstored import --format xenstored-tdb --backend <spec> ` +
          `${this.file} (see docs/backends.md)`,
      );
    }
    // One daemon per file: libtdb's own locks are per operation. flock() a separate descriptor of
    // the same file (flock and libtdb's fcntl locks do not interact), closed only after tdb_close.
    this.lockFile = Deno.openSync(this.file, { read: true, write: true, create: true });
    if (!this.lockFile.tryLockSync(true)) {
      throw new BackendError(`${this.file} is in use by another daemon (lock held)`, "EWOULDBLOCK");
    }
    // The writer: TDB_NOMMAP, because libtdb 1.4.8 leaks the tail of its mapping each time a
    // transaction grows the file (it unmaps with the old size), and pread/pwrite turn a full disk
    // into an error rather than a SIGBUS (Xen's xenstored built its TDB without mmap too). O_CREAT
    // only for a new, empty file: given an existing file whose header is damaged, libtdb would
    // quietly initialise a new database over it. Opening it also replays an interrupted commit.
    const openWriter = () =>
      TdbFile.open(this.file, {
        hashSize: HASH_SIZE,
        tdbFlags: TDB_NOMMAP | (this.opts.sync === "none" ? TDB_NOSYNC : TDB_DEFAULT),
        openFlags: size === 0 ? O_RDWR | O_CREAT : O_RDWR,
      });
    this.tdb = openWriter();
    if (size === 0) {
      this.fresh = true;
      return null;
    }
    // Read everything through a memory-mapped, read-only handle (walking 65521 hash chains with
    // pread costs a syscall per chain), then reopen the writer. libtdb refuses two handles on one
    // file in one process, hence close first.
    this.tdb.close();
    this.tdb = null;
    const reader = TdbFile.open(this.file, { hashSize: 0, tdbFlags: TDB_DEFAULT, openFlags: O_RDONLY });
    let state: LoadedState | null;
    try {
      state = this.readStore(reader);
    } finally {
      reader.close();
    }
    this.tdb = openWriter();
    return state;
  }

  private readStore(tdb: TdbFile): LoadedState | null {
    const format = tdb.fetch(KEY_FORMAT);
    if (format === null) {
      let any = false;
      tdb.forEach(() => any = true);
      if (any) {
        throw new BackendError(
          `${this.file} holds records but is no dxenstored store (no dxenstored:format key); if it ` +
            `is an old xenstored database, import it: dxenstored import --format xenstored-tdb ` +
            `--backend <spec> ${this.file}`,
        );
      }
      this.fresh = true; // created, but the first daemon died before writing the initial tree
      return null;
    }
    if (!tdb.check()) {
      if (!this.opts.recover) {
        throw new BackendError(
          `${this.file}: tdb_check found damage; start with --recover to load the readable records`,
        );
      }
      log("warn", `${this.name}: tdb_check found damage; --recover: loading the readable records`);
    }
    return this.readAll(tdb);
  }

  private readAll(tdb: TdbFile): LoadedState | null {
    const reader = new KvStoreReader(this.name, this.opts.recover);
    tdb.forEach((k, v) => reader.add(k, v));
    return reader.finish();
  }

  /** Run `body` in one TDB transaction; any failure cancels it and becomes EIO/ENOSPC. */
  private transaction(what: string, body: (tdb: TdbFile) => void): void {
    const tdb = this.tdb;
    if (tdb === null) throw ioError(this.name, new Error("not open"));
    try {
      tdb.transactionStart();
    } catch (e) {
      throw ioError(`${this.name}: ${what}`, e);
    }
    try {
      body(tdb);
      tdb.transactionCommit();
    } catch (e) {
      tdb.transactionCancel();
      throw ioError(`${this.name}: ${what}`, e);
    }
  }

  private store(tdb: TdbFile, ops: readonly KvOp[]): void {
    for (const op of ops) {
      if (op.kind === "put") tdb.store(op.key, op.value);
      else tdb.delete(op.key);
    }
  }

  persist(c: Commit, gen: number): void {
    const ops = kvCommit(c.before, commitOps(c), gen);
    this.transaction("commit", (tdb) => this.store(tdb, ops));
  }

  persistDomains(records: readonly DomainRecord[]): void {
    this.transaction("domains", (tdb) => this.store(tdb, kvDomains(records)));
  }

  wantsCompaction(): boolean {
    return this.fresh;
  }

  /** A fresh file gets the whole initial tree and its format marker in one transaction. */
  compact(root: Node, gen: number): void {
    if (!this.fresh) return;
    this.transaction("initial tree", (tdb) => this.store(tdb, kvInitial(root, gen)));
    this.fresh = false;
  }

  close(): void {
    this.tdb?.close();
    this.tdb = null;
    this.lockFile?.close(); // after tdb_close: closing any descriptor drops the process's fcntl locks
    this.lockFile = null;
  }
}
