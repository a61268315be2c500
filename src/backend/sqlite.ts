// The SQLite backend (node:sqlite, built into Deno): one row per node, WAL journal, one SQL
// transaction per committed change set.
//
//   nodes(path TEXT PRIMARY KEY, value BLOB, perms TEXT, gen INTEGER)   WITHOUT ROWID
//   meta(key TEXT PRIMARY KEY, value INTEGER)                           key 'gen': the counter
//
// Values are BLOBs (any byte string); perms are "n0 r5" (GET_PERMS strings joined by spaces).
// A subtree delete is one range scan on the primary key: paths under P sort in [P + "/", P + "0").
import { log } from "../common/log.ts";
import type { Commit } from "../store/database.ts";
import type { Node } from "../store/tree.ts";
import {
  type Backend,
  BackendError,
  type BackendOptions,
  DEFAULT_BACKEND_OPTIONS,
  ioError,
  type LoadedState,
} from "./backend.ts";
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

function fromBytes(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, Math.min(b.length, i + 8192)));
  }
  return s;
}

interface Stmts {
  put: StatementSync;
  del: StatementSync;
  delTree: StatementSync;
  setGen: StatementSync;
}

export class SqliteBackend implements Backend {
  readonly name: string;
  private readonly opts: BackendOptions;
  private db: DatabaseSync | null = null;
  private st: Stmts | null = null;
  private fresh = false;

  constructor(readonly file: string, opts: Partial<BackendOptions> = {}) {
    this.name = `sqlite:${file}`;
    this.opts = { ...DEFAULT_BACKEND_OPTIONS, ...opts };
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
      db.exec(`PRAGMA synchronous = ${this.opts.sync === "always" ? "FULL" : "OFF"}`);
      db.exec(`CREATE TABLE IF NOT EXISTS nodes (
        path TEXT PRIMARY KEY, value BLOB NOT NULL, perms TEXT NOT NULL, gen INTEGER NOT NULL
      ) WITHOUT ROWID`);
      db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
    } catch (e) {
      throw new BackendError(`${this.name}: cannot open: ${(e as Error).message}`);
    }
    this.db = db;
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
    };
    const g = db.prepare("SELECT value FROM meta WHERE key = 'gen'").get() as { value: number } | undefined;
    if (g === undefined) {
      this.fresh = true;
      return null;
    }
    const rows = db.prepare("SELECT path, value, perms, gen FROM nodes ORDER BY path").all() as Array<
      { path: string; value: Uint8Array; perms: string; gen: number }
    >;
    let root: Node;
    try {
      root = buildTree(rows.map((r) => ({
        path: r.path,
        value: fromBytes(r.value),
        perms: permsFromText(r.perms),
        gen: Number(r.gen),
      })));
    } catch (e) {
      throw new BackendError(`${this.name}: inconsistent node table: ${(e as Error).message}`);
    }
    log("info", `${this.name}: loaded ${rows.length} nodes, gen ${g.value}`);
    return { root, gen: Number(g.value) };
  }

  private apply(ops: readonly NodeOp[], gen: number): void {
    const db = this.db!;
    const st = this.st!;
    db.exec("BEGIN IMMEDIATE");
    try {
      for (const op of ops) {
        if (op.op === "delete") {
          st.del.run(op.path);
          st.delTree.run(op.path + "/", op.path + "0");
        } else st.put.run(op.path, toBytes(op.value), permsToText(op.perms), op.gen);
      }
      st.setGen.run(gen);
      db.exec("COMMIT");
    } catch (e) {
      try {
        db.exec("ROLLBACK");
      } catch { /* the failed statement may have rolled back already */ }
      throw e;
    }
  }

  persist(c: Commit, gen: number): void {
    if (this.db === null) throw ioError(this.name, new Error("not open"));
    try {
      this.apply(commitOps(c), gen);
    } catch (e) {
      throw ioError(`${this.name}: commit`, e);
    }
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
      this.fresh = false;
    } else db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

  close(): void {
    if (this.db === null) return;
    try {
      this.db.close();
    } finally {
      this.db = null;
      this.st = null;
    }
  }
}
