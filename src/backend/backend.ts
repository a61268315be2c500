// The storage backend interface, the `--backend` syntax, and the wiring between a backend and the
// live Database. Every call is synchronous: the server loop blocks in epoll_wait, so a backend never
// awaits (Deno.*Sync, fdatasync, node:sqlite's DatabaseSync).
//
//   load()             once at start: the persisted tree and generation counter, or null (nothing yet)
//   persist(c, gen)    each committed change set, atomically, BEFORE it takes effect: throwing an
//                      XsError (EIO, ENOSPC) aborts the commit, so a failed write is never acknowledged
//   compact(root,gen)  rewrite the whole state compactly (snapshot); called when wantsCompaction()
//   persistDomains(d)  the whole set of introduced domains, whenever it changes (src/backend/domains.ts)
//   deferredSync()     group commit: records written but not yet synced, and the sync that covers them
//   close()            sync what is pending, release files
import { log } from "../common/log.ts";
import { type Errno, StorageError, XsError } from "../common/xs_error.ts";
import { type Commit, Database } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import type { DomainRecord } from "./domains.ts";

export type { DomainRecord } from "./domains.ts";

export interface LoadedState {
  readonly root: Node;
  /** The database's generation counter (≥ every node's gen). */
  readonly gen: number;
  /** Introduced domains stored with the tree (absent: none). */
  readonly domains?: readonly DomainRecord[];
}

/**
 * Group commit: a backend in `--sync=group:<ms>` mode stores each record at commit time (so a full
 * disk still fails that one commit) but syncs later, once for many commits. Records are numbered in
 * commit order; the server loop tags each turn's replies and watch events with the latest number and
 * sends them only once that record is durable (src/backend/group.ts).
 */
export interface DeferredSync {
  /** Records (commits, domain sets) stored so far: the number of the latest. */
  committedSeq(): number;
  /** Every record up to this number is on stable storage. */
  durableSeq(): number;
  /** committedSeq() - durableSeq(). */
  unsynced(): number;
  /** Make every record durable before returning (after a write in flight). Throws if that fails. */
  syncNow(): void;
  /** Syncs that need not block the loop (file backend: O_DIRECT + Linux AIO); null: syncNow only. */
  asyncSync?(): AsyncSync | null;
}

/** A sync the loop starts and is told about when it completes (one write in flight at a time). */
export interface AsyncSync {
  /** An eventfd: readable when the write in flight has completed (then call complete()). */
  readonly completionFd: number;
  /** A write is in flight. */
  inFlightNow(): boolean;
  /**
   * Start making every stored record durable without waiting (nothing if a write is in flight);
   * where that cannot be done asynchronously it is done inline. Throws if a write fails.
   */
  startSync(): void;
  /** Collect the completed write: durableSeq() advances. Throws if the write failed. */
  complete(): void;
}

export interface Backend {
  /** Human-readable description for logs ("file:/var/lib/xenstored"). */
  readonly name: string;
  load(): LoadedState | null;
  /** Store one committed change set, all or nothing. `gen` is the database counter after it. */
  persist(c: Commit, gen: number): void;
  /** True when compact() would pay off (log grown, fresh store, state recovered). */
  wantsCompaction(): boolean;
  compact(root: Node, gen: number): void;
  /**
   * Store the whole set of introduced domains, atomically, ordered with the commits around it
   * (throws XsError EIO/ENOSPC like persist). Absent: the backend stores no domains (memory).
   */
  persistDomains?(records: readonly DomainRecord[]): void;
  /** Group commit state, when the backend runs in group mode; null or absent otherwise. */
  deferredSync?(): DeferredSync | null;
  close(): void;
}

/**
 * always: each commit is on stable storage before its reply is sent; group:<ms>: replies wait for
 * one sync shared by the commits of a loop turn (gathered for up to <ms> while more keep arriving);
 * none: the OS decides when data reaches the disk.
 */
export type SyncMode = "always" | "none" | `group:${number}`;

/** Longest group-commit window accepted (ms). */
export const GROUP_WINDOW_MAX_MS = 1000;

/** Parse a --sync value; null if it is none of the modes. */
export function parseSyncMode(s: string): SyncMode | null {
  if (s === "always" || s === "none") return s;
  const m = /^group:([0-9]{1,4})$/.exec(s);
  return m !== null && Number(m[1]) <= GROUP_WINDOW_MAX_MS ? `group:${Number(m[1])}` : null;
}

/** What --sync accepts, for error messages. */
export const SYNC_MODES_TEXT = `always, none or group:<ms> (0..${GROUP_WINDOW_MAX_MS})`;

/** The group-commit window in ms, or null when `sync` is not a group mode. */
export function groupWindowMs(sync: SyncMode): number | null {
  return sync.startsWith("group:") ? Number(sync.slice(6)) : null;
}

export interface BackendOptions {
  /** See SyncMode. */
  readonly sync: SyncMode;
  /** Start from the longest valid prefix of a damaged store instead of refusing. */
  readonly recover: boolean;
  /** Group mode: let the loop go on serving while a group's write is in flight (default true). */
  readonly asyncIo?: boolean;
}

export const DEFAULT_BACKEND_OPTIONS: BackendOptions = { sync: "always", recover: false };

/** The store on disk cannot be used as it is (the daemon refuses to start). */
export class BackendError extends Error {
  override name = "BackendError";
  /** The errno name a start-up failure shows; unset: EBADMSG (a store that cannot be used as it is). */
  constructor(message: string, readonly errno?: string) {
    super(message);
  }
}

/** An I/O failure as the errno a client sees: ENOSPC for a full disk, EIO for everything else. */
export function ioErrno(e: unknown): Errno {
  const code = (e as { code?: unknown })?.code;
  const msg = e instanceof Error ? e.message : String(e);
  if (
    code === "ENOSPC" || code === "EDQUOT" || /SQLITE_FULL|database or disk is full|No space left/i.test(msg)
  ) {
    return "ENOSPC";
  }
  return "EIO";
}

/** Any failure of a backend as the StorageError the client and the operator see. */
export function asStorageError(e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  if (e instanceof XsError) return new StorageError(e.errno, e.detail);
  return new StorageError(ioErrno(e), e instanceof Error ? e.message : String(e));
}

/** What the storage does, for the daemon's metrics and log (src/observe/storage.ts); must not throw. */
export interface StorageObserver {
  /** One commit stored by the backend (its records written, and with --sync always synced). */
  stored(seconds: number): void;
  /** One group-commit sync (--sync group:N): the write and sync covering `records` commits. */
  synced(seconds: number, records: number): void;
  /** The backend failed: a commit not applied, a compaction, the domain records. */
  failed(stage: StorageStage, e: StorageError, what: string): void;
}

export type StorageStage = "commit" | "compact" | "domains";

export function ioError(what: string, e: unknown): XsError {
  if (e instanceof XsError) return e;
  return new XsError(ioErrno(e), `${what}: ${e instanceof Error ? e.message : String(e)}`);
}

export type BackendSpec =
  | { readonly kind: "memory" }
  | { readonly kind: "file"; readonly dir: string }
  | { readonly kind: "sqlite"; readonly file: string }
  | { readonly kind: "tdb"; readonly file: string }
  /** A storage module in C (ffi/dxenstored_backend.h): its shared object and the text it is given. */
  | { readonly kind: "so"; readonly library: string; readonly args: string };

/** What --backend accepts, for help and error messages. */
export const BACKEND_SPECS_TEXT =
  "memory | file:<dir> | sqlite:<file> | tdb:<file> | so:<library.so>[:<args>]";

/**
 * Parse `memory`, `file:<dir>`, `sqlite:<file>`, `tdb:<file>` or `so:<library>[:<args>]` (the
 * library's path ends at the first colon; everything after it is the module's); returns an error
 * message otherwise.
 */
export function parseBackendSpec(s: string): BackendSpec | string {
  if (s === "memory") return { kind: "memory" };
  const colon = s.indexOf(":");
  const kind = colon < 0 ? s : s.slice(0, colon);
  const arg = colon < 0 ? "" : s.slice(colon + 1);
  if (kind === "file" || kind === "sqlite" || kind === "tdb") {
    if (arg === "") return `--backend ${kind} needs a path: ${kind}:<${kind === "file" ? "dir" : "file"}>`;
    return kind === "file" ? { kind, dir: arg } : { kind, file: arg };
  }
  if (kind === "so") {
    const c = arg.indexOf(":");
    const library = c < 0 ? arg : arg.slice(0, c);
    if (library === "") return "--backend so needs a shared object: so:<library.so>[:<args>]";
    return { kind, library, args: c < 0 ? "" : arg.slice(c + 1) };
  }
  return `unknown backend "${s}" (${BACKEND_SPECS_TEXT})`;
}

/** The spec back as text ("file:/var/lib/dxenstored"). */
export function formatBackendSpec(b: BackendSpec): string {
  switch (b.kind) {
    case "memory":
      return "memory";
    case "file":
      return `file:${b.dir}`;
    case "so":
      return `so:${b.library}${b.args === "" ? "" : `:${b.args}`}`;
    default:
      return `${b.kind}:${b.file}`;
  }
}

/**
 * Load the persisted state into a new Database and make the backend see every later commit:
 * persist() runs as a before-commit hook (a failure aborts the commit with EIO/ENOSPC), and once a
 * commit has taken effect the backend may compact. A compaction failure is logged, not fatal: the
 * log it would have replaced stays valid.
 */
export function openDatabase(backend: Backend): Database {
  return openState(backend).db;
}

/** openDatabase, plus the introduced domains stored with the tree (for the domain registry). */
export function openState(
  backend: Backend,
  observer?: StorageObserver,
): { db: Database; domains: readonly DomainRecord[] } {
  const state = backend.load();
  const db = state === null ? new Database() : new Database(state.root, state.gen);
  attachBackend(db, backend, observer);
  return { db, domains: state?.domains ?? [] };
}

/**
 * Wire `backend` to an existing database. A fresh or recovered store is compacted first, strictly
 * (a failure throws BackendError: the daemon must not start without a consistent base on disk).
 * A commit the backend cannot store fails with a StorageError (nothing applied); `observer` hears of
 * it, and of how long each commit took to store.
 */
export function attachBackend(db: Database, backend: Backend, observer?: StorageObserver): void {
  if (backend.wantsCompaction()) {
    try {
      backend.compact(db.root, db.generation);
    } catch (e) {
      throw new BackendError(`${backend.name}: cannot write the initial snapshot: ${(e as Error).message}`);
    }
  }
  db.beforeCommit((c) => {
    const started = observer !== undefined ? performance.now() : 0;
    try {
      backend.persist(c, db.generation);
    } catch (e) {
      const err = asStorageError(e);
      const first = c.changes.length > 0 ? ` (${c.changes[0].kind} ${c.changes[0].path})` : "";
      observer?.failed("commit", err, `a commit of domain ${c.domid}, ${c.changes.length} change(s)${first}`);
      throw err;
    }
    observer?.stored((performance.now() - started) / 1000);
  });
  db.onCommit(() => {
    if (!backend.wantsCompaction()) return;
    try {
      backend.compact(db.root, db.generation);
    } catch (e) {
      const err = asStorageError(e);
      if (observer !== undefined) {
        observer.failed("compact", err, "compaction (the store stays in use as it was)");
      } else {log(
          "error",
          `${backend.name}: compaction failed (the store stays in use as it was): ${err.message}`,
        );}
    }
  });
}

/**
 * Store the introduced domains (the domain registry's onDomainsChanged): a failure is a StorageError,
 * reported to `observer` and thrown to the request that changed them.
 */
export function persistDomainRecords(
  backend: Backend,
  domains: readonly DomainRecord[],
  observer?: StorageObserver,
): void {
  if (backend.persistDomains === undefined) return;
  try {
    backend.persistDomains(domains);
  } catch (e) {
    const err = asStorageError(e);
    observer?.failed("domains", err, `the records of ${domains.length} introduced domain(s)`);
    throw err;
  }
}
