// The backend behind `--backend so:<library>:<args>`: a storage module written in C
// (ffi/dxenstored_backend.h, loaded by src/backend/native_ffi.ts) keeps the store as key-value
// records in the layout of src/backend/kv_layout.ts (one record per node, as TDB).
//
//   load            dlopen + ABI check, dxs_backend_open, stream every record (dxs_backend_load_next)
//   persist         one dxs_backend_apply per committed change set (a whole transaction is one batch)
//   persistDomains  one batch: the "dxenstored:domains" record, ordered with the commits around it
//   group commit    batches are numbered; dxs_backend_sync is the group's sync (inline: the loop
//                   waits for it); a failed sync stops the daemon (src/backend/group.ts)
//   compact         the initial tree of a new store; later dxs_backend_compact every
//                   DXS_COMPACT_BYTES of batches (in group mode right after a sync)
//
// What a module returns decides what a client sees: DXS_E_NOSPC → ENOSPC, other failures → EIO, and
// the commit does not happen. DXS_E_BROKEN (or a code this daemon does not know) means the store's
// state is not known: every later commit is refused with EIO (group mode: the next sync fails, so
// the daemon stops) until a restart. At start any failure, or a malformed record, refuses the start
// with the module's message: nothing is ever written over a store that was not read whole.
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  type DeferredSync,
  groupWindowMs,
  type LoadedState,
} from "./backend.ts";
import type { DomainRecord } from "./domains.ts";
import { kvCommit, kvDomains, kvInitial, type KvOp, KvStoreReader } from "./kv_layout.ts";
import {
  codeName,
  DXS_COMPACT_BYTES,
  DXS_E_CORRUPT,
  DXS_E_IO,
  DXS_E_NOMEM,
  DXS_E_NOSPC,
  DXS_KEY_MAX,
  DXS_OPEN_RECOVER,
  DXS_RECORD_HEADER,
  DXS_SYNC_ALWAYS,
  DXS_SYNC_GROUP,
  DXS_SYNC_NONE,
  loadModule,
  ModuleLoadError,
  NativeStore,
  type Status,
} from "./native_ffi.ts";
import { commitOps } from "./records.ts";

/** Codes a failed apply may return and leave the store as it was. */
const CLEAN_FAILURES = new Set([DXS_E_IO, DXS_E_NOSPC, DXS_E_NOMEM, DXS_E_CORRUPT]);

export interface NativeBackendOptions extends BackendOptions {
  /** Call dxs_backend_compact after this many bytes of batches (default DXS_COMPACT_BYTES; tests). */
  readonly compactBytes?: number;
  /** The first load buffer's size (default 1 MiB; tests make it tiny to exercise DXS_E_RANGE). */
  readonly loadBufferBytes?: number;
}

export class NativeBackend implements Backend, DeferredSync {
  readonly name: string;
  private readonly opts: NativeBackendOptions;
  private readonly compactBytes: number;
  private readonly group: boolean;
  private store: NativeStore | null = null;
  private fresh = false;
  /** Batches applied, and (group mode) how many of them are known durable. */
  private committed = 0;
  private durable = 0;
  private bytesSinceCompact = 0;
  /** Why the store can no longer be written (DXS_E_BROKEN, an unknown code, a failed sync). */
  private failed: string | null = null;

  /** `library`: a path (with a "/") or a name the dynamic linker looks up; `args`: for the module. */
  constructor(readonly library: string, readonly args: string, opts: Partial<NativeBackendOptions> = {}) {
    this.name = `so:${library}${args === "" ? "" : `:${args}`}`;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts };
    this.compactBytes = this.opts.compactBytes ?? DXS_COMPACT_BYTES;
    this.group = groupWindowMs(this.opts.sync) !== null;
  }

  load(): LoadedState | null {
    try {
      return this.loadRecords();
    } catch (e) {
      this.close();
      if (e instanceof BackendError) throw e;
      throw new BackendError(`${this.name}: ${(e as Error).message}`);
    }
  }

  private loadRecords(): LoadedState | null {
    let module;
    try {
      module = loadModule(this.library);
    } catch (e) {
      if (e instanceof ModuleLoadError) throw new BackendError(e.message);
      throw e;
    }
    const mode = this.opts.sync === "always" ? DXS_SYNC_ALWAYS : this.group ? DXS_SYNC_GROUP : DXS_SYNC_NONE;
    const opened = module.open(
      this.args,
      mode | (this.opts.recover ? DXS_OPEN_RECOVER : 0),
      this.opts.loadBufferBytes,
    );
    if (!(opened instanceof NativeStore)) {
      throw new BackendError(`${this.name}: cannot open the store: ${describe(opened)}`);
    }
    this.store = opened;
    const reader = new KvStoreReader(this.name, this.opts.recover);
    let loadedBytes = 0;
    for (let batch = 0;; batch++) {
      const r = opened.loadNext();
      if (!r.ok) throw new BackendError(`${this.name}: cannot read the store: ${describe(r.status)}`);
      if (r.bytes.length === 0) break;
      loadedBytes += r.bytes.length;
      const problem = unpack(r.bytes, (k, v) => reader.add(k, v));
      if (problem !== null) {
        throw new BackendError(
          `${this.name}: the module returned a malformed load batch (batch ${batch}: ${problem}); ` +
            `the store was not changed`,
        );
      }
    }
    const state = reader.finish();
    this.fresh = state === null;
    // As the file backend: a store's batches may grow to twice what it held before a compaction.
    this.bytesSinceCompact = -Math.max(0, loadedBytes * 2 - this.compactBytes);
    return state;
  }

  private usable(): NativeStore {
    if (this.store === null) throw new XsError("EIO", `${this.name}: not open`);
    if (this.failed !== null) throw new XsError("EIO", `${this.name}: refusing writes: ${this.failed}`);
    return this.store;
  }

  /** One batch through dxs_backend_apply; a failure throws the XsError the client gets. */
  private apply(ops: readonly KvOp[], what: string): void {
    const store = this.usable();
    const s = store.apply(ops);
    if (s.code === 0) {
      this.committed++;
      for (const op of ops) {
        this.bytesSinceCompact += op.key.length + (op.kind === "put" ? op.value.length : 0);
      }
      return;
    }
    const text = `${this.name}: ${what}: ${describe(s)}`;
    if (!CLEAN_FAILURES.has(s.code)) {
      this.failed = `${what} failed and left the store in an unknown state (${
        describe(s)
      }); restart the daemon`;
      log("error", `${this.name}: ${this.failed}`);
    }
    throw new XsError(s.code === DXS_E_NOSPC ? "ENOSPC" : "EIO", text);
  }

  persist(c: Commit, gen: number): void {
    this.apply(kvCommit(c.before, commitOps(c), gen), "commit");
  }

  persistDomains(records: readonly DomainRecord[]): void {
    this.apply(kvDomains(records), "domains");
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

  /** Group mode: dxs_backend_sync, then a compaction if one is due (nothing is pending then). */
  syncNow(): void {
    const n = this.unsynced();
    if (n === 0) return;
    if (this.failed !== null) throw new Error(`${this.name}: ${n} change sets not stored: ${this.failed}`);
    const s = this.store!.sync();
    if (s.code !== 0) {
      this.failed = `sync failed (${describe(s)})`;
      throw new Error(`${this.name}: sync of ${n} change sets failed: ${describe(s)}`);
    }
    this.durable = this.committed;
    if (this.bytesSinceCompact >= this.compactBytes) {
      try {
        this.compactStore();
      } catch (e) {
        log("error", `${this.name}: compaction failed (the store stays in use): ${(e as Error).message}`);
      }
    }
  }

  /** A new store; or (always/none) batches worth a compaction since the last. Group mode: syncNow. */
  wantsCompaction(): boolean {
    return this.fresh || (!this.group && this.bytesSinceCompact >= this.compactBytes);
  }

  /** A new store gets the whole tree as its first batch (group mode: synced at once); else compact. */
  compact(root: Node, gen: number): void {
    if (this.fresh) {
      this.apply(kvInitial(root, gen), "initial tree");
      if (this.group) this.syncNow();
      this.fresh = false;
      this.bytesSinceCompact = 0;
      return;
    }
    this.compactStore();
  }

  private compactStore(): void {
    const s = this.usable().compact();
    this.bytesSinceCompact = 0;
    if (s.code === 0) return;
    if (!CLEAN_FAILURES.has(s.code)) {
      this.failed = `compaction left the store in an unknown state (${describe(s)})`;
    }
    throw new Error(describe(s));
  }

  close(): void {
    const store = this.store;
    if (store === null) return;
    this.store = null;
    const s = store.close();
    if (s.code !== 0) log("error", `${this.name}: close: ${describe(s)}`);
  }
}

/** "DXS_E_IO: the module's message". */
function describe(s: Status): string {
  return `${codeName(s.code)}: ${s.message}`;
}

/**
 * Split a load batch into records (u32 key_len, u32 value_len, key, value), checking every length
 * against the batch; returns what is wrong, or null.
 */
function unpack(b: Uint8Array, each: (key: Uint8Array, value: Uint8Array) => void): string | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let o = 0;
  for (let i = 0; o < b.length; i++) {
    if (b.length - o < DXS_RECORD_HEADER) return `record ${i}: header cut at byte ${o} of ${b.length}`;
    const kl = dv.getUint32(o, true);
    const vl = dv.getUint32(o + 4, true);
    if (kl === 0 || kl > DXS_KEY_MAX) return `record ${i}: key length ${kl}`;
    if (kl + vl > b.length - o - DXS_RECORD_HEADER) {
      return `record ${i}: key ${kl} + value ${vl} bytes overrun the batch at byte ${o} of ${b.length}`;
    }
    o += DXS_RECORD_HEADER;
    each(b.subarray(o, o + kl), b.subarray(o + kl, o + kl + vl));
    o += kl + vl;
  }
  return null;
}
