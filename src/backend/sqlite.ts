// The SQLite backend (node:sqlite, built into Deno): one row per node, WAL journal, one SQL
// transaction per committed change set (group mode: one SQL transaction per group of commits, each
// commit inside a SAVEPOINT so a failing one rolls back alone).
//
//   nodes(path TEXT PRIMARY KEY, value BLOB, perms TEXT, gen INTEGER)   WITHOUT ROWID
//   meta(key TEXT PRIMARY KEY, value INTEGER)                           key 'gen': the counter
//   domains(domid INTEGER PRIMARY KEY, record TEXT)                     introduced domains (JSON)
//
// Values are BLOBs (any byte string); perms are "n0 r5 w9!" (records.ts permsToText: GET_PERMS strings
// joined by spaces, an inactive entry marked "!").
// A subtree delete is one range scan on the primary key: paths under P sort in [P + "/", P + "0").
import { latin1 } from "../common/latin1.ts";
import { log } from "../common/log.ts";
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  type DeferredSync,
  groupWindowMs,
  ioError,
  type LoadedState,
} from "./backend.ts";
import { checkDomainRecords, type DomainRecord } from "./domains.ts";
import { buildTree, commitOps, type NodeOp, permsFromText, permsToText, treeOps } from "./records.ts";

// node:sqlite's types ship in @types/node, which this repo does not install (deno check would fail
// on a static import): declare the subset used here and load the built-in module dynamically.
interface StatementSync {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface DatabaseSync {
  exec(sql: string): void;
  prepare(sql: string): StatementSync;
  close(): void;
}
const SQLITE_MODULE = "node:sqlite";
const { DatabaseSync } = (await import(SQLITE_MODULE)) as {
  DatabaseSync: new (path: string) => DatabaseSync;
};

function toBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

const fromBytes = (b: Uint8Array): string => latin1(b);

interface Stmts {
  put: StatementSync;
  del: StatementSync;
  delTree: StatementSync;
  setGen: StatementSync;
  delDomains: StatementSync;
  putDomain: StatementSync;
}

/**
 * The store from the rows of the three tables, as SQLite returns them: values whatever a damaged or
 * hand-edited file holds (a TEXT value, a NULL, a REAL generation, …). Anything that is not what this
 * backend writes is a BackendError naming the problem, never another exception (tests/fuzz/).
 */
export function stateFromRows(
  name: string,
  gen: unknown,
  rows: readonly unknown[],
  domainRows: readonly unknown[],
): LoadedState & { readonly domains: readonly DomainRecord[] } {
  const g = typeof gen === "bigint" ? Number(gen) : gen;
  if (typeof g !== "number" || !Number.isSafeInteger(g) || g < 0) {
    throw new BackendError(`${name}: bad generation counter ${String(gen).slice(0, 32)}`);
  }
  const permsSeen = new Map<string, ReturnType<typeof permsFromText>>(); // few distinct lists
  const permsOf = (t: string) => {
    let p = permsSeen.get(t);
    if (p === undefined) {
      p = permsFromText(t);
      if (permsSeen.size < 4096) permsSeen.set(t, p);
    }
    return p;
  };
  let root: Node;
  try {
    root = buildTree(rows.map((row, i) => {
      const r = row as Record<string, unknown>;
      const rgen = typeof r.gen === "bigint" ? Number(r.gen) : r.gen;
      if (
        typeof r.path !== "string" || !(r.value instanceof Uint8Array) || typeof r.perms !== "string" ||
        typeof rgen !== "number" || !Number.isSafeInteger(rgen) || rgen < 0
      ) {
        throw new Error(`row ${i} is not (TEXT path, BLOB value, TEXT perms, INTEGER gen)`);
      }
      return { path: r.path, value: fromBytes(r.value), perms: permsOf(r.perms), gen: rgen };
    }));
  } catch (e) {
    throw new BackendError(`${name}: inconsistent node table: ${(e as Error).message}`);
  }
  let domains: DomainRecord[];
  try {
    domains = checkDomainRecords(domainRows.map((row) => {
      const r = (row as Record<string, unknown>).record;
      if (typeof r !== "string") throw new Error("a domain record is not TEXT");
      return JSON.parse(r);
    }));
  } catch (e) {
    throw new BackendError(`${name}: bad domain records: ${(e as Error).message}`);
  }
  return { root, gen: g, domains };
}

export class SqliteBackend implements Backend, DeferredSync {
  readonly name: string;
  private readonly opts: BackendOptions;
  private readonly group: boolean;
  private db: DatabaseSync | null = null;
  private st: Stmts | null = null;
  private fresh = false;
  /** Group mode: commits inside the open SQL transaction, not yet committed (synced). */
  private pendingSync = 0;
  /** Change sets committed in earlier groups (group mode: the durable sequence number). */
  private syncedCount = 0;
  private failed: string | null = null;

  constructor(readonly file: string, opts: Partial<BackendOptions> = {}) {
    this.name = `sqlite:${file}`;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts };
    this.group = groupWindowMs(this.opts.sync) !== null;
  }

  load(): LoadedState | null {
    const dir = this.file.includes("/") ? this.file.slice(0, this.file.lastIndexOf("/")) : "";
    if (dir) Deno.mkdirSync(dir, { recursive: true });
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.file);
      db.exec("PRAGMA busy_timeout = 0");
      // An exclusive lock: a second daemon on the same file fails here instead of interleaving.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${this.opts.sync === "none" ? "OFF" : "FULL"}`);
      db.exec(`CREATE TABLE IF NOT EXISTS nodes (
        path TEXT PRIMARY KEY, value BLOB NOT NULL, perms TEXT NOT NULL, gen INTEGER NOT NULL
      ) WITHOUT ROWID`);
      db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      db.exec("CREATE TABLE IF NOT EXISTS domains (domid INTEGER PRIMARY KEY, record TEXT NOT NULL)");
    } catch (e) {
      throw new BackendError(`${this.name}: cannot open: ${(e as Error).message}`);
    }
    this.db = db;
    try {
      return this.readStore(db);
    } catch (e) {
      // A damaged file can make any statement fail ("database disk image is malformed").
      if (e instanceof BackendError) throw e;
      throw new BackendError(`${this.name}: unreadable: ${(e as Error).message}`);
    }
  }

  private readStore(db: DatabaseSync): LoadedState | null {
    const check = db.prepare("PRAGMA quick_check").all() as Array<Record<string, unknown>>;
    const verdict = check.map((r) => String(Object.values(r)[0])).join("; ");
    if (verdict !== "ok") {
      if (!this.opts.recover) {
        throw new BackendError(`${this.name}: integrity check failed (${verdict}); restore a backup`);
      }
      log("warn", `${this.name}: integrity check failed (${verdict}); --recover: loading what is readable`);
    }
    this.st = {
      put: db.prepare("INSERT OR REPLACE INTO nodes (path, value, perms, gen) VALUES (?, ?, ?, ?)"),
      del: db.prepare("DELETE FROM nodes WHERE path = ?"),
      delTree: db.prepare("DELETE FROM nodes WHERE path >= ? AND path < ?"),
      setGen: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('gen', ?)"),
      delDomains: db.prepare("DELETE FROM domains"),
      putDomain: db.prepare("INSERT INTO domains (domid, record) VALUES (?, ?)"),
    };
    const g = db.prepare("SELECT value FROM meta WHERE key = 'gen'").get() as { value: unknown } | undefined;
    const rows = db.prepare("SELECT path, value, perms, gen FROM nodes ORDER BY path").all();
    let gen = g?.value;
    if (g === undefined) {
      if (rows.length === 0) {
        this.fresh = true;
        return null;
      }
      // Nodes but no counter: a damaged file, not a fresh one (a fresh start would write an empty
      // tree over the nodes). --recover continues from the highest generation it finds.
      if (!this.opts.recover) {
        throw new BackendError(
          `${this.name}: ${rows.length} nodes but no generation counter; restore a backup`,
        );
      }
      gen = rows.reduce<number>((m, r) => {
        const x = Number((r as { gen?: unknown }).gen);
        return Number.isSafeInteger(x) ? Math.max(m, x) : m;
      }, 0);
      log("warn", `${this.name}: no generation counter; --recover: continuing from ${gen}`);
    }
    const drows = db.prepare("SELECT record FROM domains ORDER BY domid").all();
    const state = stateFromRows(this.name, gen, rows, drows);
    log(
      "info",
      `${this.name}: loaded ${rows.length} nodes, ${state.domains.length} domains, gen ${state.gen}`,
    );
    return state;
  }

  /**
   * Run `body` atomically: its own SQL transaction (always/none), or a SAVEPOINT inside the group's
   * open transaction (group mode), so that a failure undoes exactly this change set.
   */
  private atomically(body: (st: Stmts) => void): void {
    const db = this.db!;
    const st = this.st!;
    if (!this.group) {
      db.exec("BEGIN IMMEDIATE");
      try {
        body(st);
        db.exec("COMMIT");
      } catch (e) {
        try {
          db.exec("ROLLBACK");
        } catch { /* the failed statement may have rolled back already */ }
        throw e;
      }
      return;
    }
    if (this.pendingSync === 0) db.exec("BEGIN IMMEDIATE");
    db.exec("SAVEPOINT c");
    try {
      body(st);
      db.exec("RELEASE c");
    } catch (e) {
      let undone = true;
      try {
        db.exec("ROLLBACK TO c");
        db.exec("RELEASE c");
      } catch {
        undone = false; // SQLite may roll back the whole transaction itself (SQLITE_FULL, IOERR)
      }
      if (this.pendingSync === 0) {
        try {
          db.exec("ROLLBACK"); // nothing else in the group: end it, whatever state it is in
        } catch { /* already rolled back */ }
      } else if (!undone) {
        // The group's earlier commits (in memory, replies held) are gone from the transaction.
        this.failed ??= `a failed commit took its group with it: ${(e as Error).message}`;
      }
      throw e;
    }
    this.pendingSync++;
  }

  private apply(ops: readonly NodeOp[], gen: number): void {
    this.atomically((st) => {
      for (const op of ops) {
        if (op.op === "delete") {
          st.del.run(op.path);
          st.delTree.run(op.path + "/", op.path + "0");
        } else st.put.run(op.path, toBytes(op.value), permsToText(op.perms), op.gen);
      }
      st.setGen.run(gen);
    });
  }

  private checkUsable(): void {
    if (this.db === null) throw ioError(this.name, new Error("not open"));
    if (this.failed !== null) throw ioError(this.name, new Error(`disabled: ${this.failed}`));
  }

  persist(c: Commit, gen: number): void {
    this.checkUsable();
    try {
      this.apply(commitOps(c), gen);
    } catch (e) {
      throw ioError(`${this.name}: commit`, e);
    }
  }

  persistDomains(records: readonly DomainRecord[]): void {
    this.checkUsable();
    try {
      this.atomically((st) => {
        st.delDomains.run();
        for (const r of records) st.putDomain.run(r.domid, JSON.stringify(r));
      });
    } catch (e) {
      throw ioError(`${this.name}: domains`, e);
    }
  }

  deferredSync(): DeferredSync | null {
    return this.group ? this : null;
  }

  unsynced(): number {
    return this.pendingSync;
  }

  committedSeq(): number {
    return this.syncedCount + this.pendingSync;
  }

  durableSeq(): number {
    return this.syncedCount;
  }

  /** Group mode: COMMIT the open SQL transaction (synchronous=FULL: one WAL fsync). */
  syncNow(): void {
    if (this.pendingSync === 0) return;
    const n = this.pendingSync;
    if (this.failed !== null) throw new Error(`${this.name}: ${n} change sets not stored: ${this.failed}`);
    try {
      this.endGroup("COMMIT");
    } catch (e) {
      this.failed ??= `group commit failed: ${(e as Error).message}`;
      throw new Error(`${this.name}: commit of ${n} change sets failed: ${(e as Error).message}`);
    }
  }

  /** End the group's SQL transaction; on failure it is rolled back and the count stays unsynced. */
  private endGroup(how: "COMMIT" | "ROLLBACK"): void {
    try {
      this.db!.exec(how);
    } catch (e) {
      if (how === "COMMIT") {
        try {
          this.db!.exec("ROLLBACK");
        } catch { /* already rolled back */ }
      }
      throw e;
    }
    if (how === "COMMIT") this.syncedCount += this.pendingSync;
    this.pendingSync = 0;
  }

  wantsCompaction(): boolean {
    return this.fresh;
  }

  /** Fresh store: write the whole tree. Otherwise: checkpoint the WAL into the main file. */
  compact(root: Node, gen: number): void {
    const db = this.db!;
    if (this.fresh) {
      // The table is empty (the counter row is written in the same SQL transaction as nodes).
      this.apply(treeOps(root), gen);
      this.syncNow(); // group mode: the initial tree must be stored before anything is served
      this.fresh = false;
    } else db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  close(): void {
    if (this.db === null) return;
    if (this.pendingSync > 0 && this.failed === null) {
      try {
        this.syncNow();
      } catch (e) {
        log("error", (e as Error).message);
      }
    }
    try {
      this.db.close();
    } finally {
      this.db = null;
      this.st = null;
    }
  }
}
