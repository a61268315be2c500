// A whole store out of a running xenstored, and into one, for `dxenstored export|import --socket`
// (docs/backends.md, "Export and import"). Requests are pipelined (src/cli/xs_socket.ts): the
// speed is the daemon's.
//
// Reading must give a snapshot — the store as it was at one instant — not a smear of whatever
// changed while 100 000 nodes were read. How, depends on the daemon:
//   - dxenstored, oxenstored: one transaction. Both start it in O(1) on an immutable tree and let
//     dom0 read any number of nodes in it (dxenstored: snapshotOnOverflow in src/txn/transaction.ts;
//     oxenstored exempts dom0 from quota-maxrequests). The copy is the store at TRANSACTION_START.
//   - cxenstored (and a daemon we do not recognise): a watch on "/" instead. cxenstored would let
//     dom0 read in a transaction too, but looks every access up in a list of the nodes the
//     transaction touched — O(n²): minutes for 100 000 nodes. So the store is read outside any
//     transaction while a watch on "/" reports every change; each pass re-reads what changed during
//     the previous one, until a pass sees no change. A daemon queues a change's event before the reply
//     to any request it handles later, so once a pass's last reply is in, every node read is known to
//     have been unchanged from its read until then: the copy is the store at that instant. A store
//     that never stops changing for the length of one pass fails after MAX_PASSES (an error, never a
//     smear).
// Writing goes in transactions of a few hundred nodes (importBatchFor): a node never shows its value
// without its permissions, and a persistent daemon syncs once per batch instead of once per request;
// a batch that conflicts (EAGAIN) is written again.
import type { ExportNode } from "../backend/export.ts";
import { MsgType } from "../protocol/wire.ts";
import { joinPath, parentOf } from "../store/path.ts";
import { stripNul, XsConnection, type XsReply, XsReplyError } from "./xs_socket.ts";

export type DaemonKind = "dxenstored" | "oxenstored" | "cxenstored" | "unknown";
export type SnapshotMethod = "transaction" | "watch";

/** Passes over a changing store before the watch method gives up. */
export const MAX_PASSES = 20;
/**
 * Nodes per import transaction (each costs a WRITE and a SET_PERMS): one commit, hence one sync of a
 * persistent daemon, per batch. cxenstored looks up every access in a list of the transaction's nodes,
 * so its batches are smaller.
 */
export function importBatchFor(d: DaemonKind): number {
  return d === "dxenstored" || d === "oxenstored" ? 512 : 128;
}
/** Commit attempts of one import batch (EAGAIN: another client changed a node it touched). */
const IMPORT_ATTEMPTS = 10;

/**
 * Which daemon serves the socket, from its answer to CONTROL "help": cxenstored lists its commands,
 * dxenstored the same plus its own (`policy-reload`), oxenstored acknowledges any command with "OK".
 */
export async function identifyDaemon(c: XsConnection): Promise<DaemonKind> {
  let help: string;
  try {
    help = stripNul(await c.request(MsgType.CONTROL, "help\0"));
  } catch (e) {
    if (e instanceof XsReplyError) return "unknown";
    throw e;
  }
  if (help === "OK") return "oxenstored";
  const commands = new Set(help.split("\n").map((l) => l.split("\t")[0]));
  if (commands.has("policy-reload")) return "dxenstored";
  if (commands.has("live-update") && commands.has("memreport")) return "cxenstored";
  return "unknown";
}

/**
 * Children of "/" that are not nodes: oxenstored keeps the special watch paths in its tree and lists
 * them in DIRECTORY "/" (cxenstored and dxenstored do not); copied, they would become plain nodes.
 */
const OXENSTORED_SPECIAL = new Set(["@introduceDomain", "@releaseDomain"]);

/** The snapshot method `auto` picks for a daemon (see the top of this file). */
export function snapshotMethodFor(d: DaemonKind): SnapshotMethod {
  return d === "dxenstored" || d === "oxenstored" ? "transaction" : "watch";
}

const list = (s: string) => (s === "" ? [] : stripNul(s).split("\0"));
const isError = (r: XsReply) => r.type === MsgType.ERROR;
const errnoOf = (r: XsReply) => stripNul(r.payload);

interface Entry {
  readonly value: string;
  readonly perms: readonly string[];
  /** Child names as last listed. */
  children: string[];
}

/** Reads nodes (value, permissions, child names) and, recursively, every child not read yet. */
class StoreReader {
  readonly entries = new Map<string, Entry>();
  /** Set once the first pass is over: nodes found then must be linked into their parent's list. */
  refreshing = false;

  constructor(
    private readonly c: XsConnection,
    private readonly daemon: DaemonKind,
    private readonly txId: number,
    /** A directory's listing was not consistent (DIRECTORY_PART pages of different generations). */
    private readonly inconsistent: (path: string) => void,
    private readonly progress: (nodes: number) => void,
  ) {}

  visit(path: string): void {
    let value: XsReply | null = null;
    let perms: XsReply | null = null;
    this.c.send(MsgType.READ, `${path}\0`, this.txId, (r) => value = r);
    this.c.send(MsgType.GET_PERMS, `${path}\0`, this.txId, (r) => perms = r);
    this.c.send(MsgType.DIRECTORY, `${path}\0`, this.txId, (d) => {
      // Replies come in order: READ's and GET_PERMS' are in.
      const v = value!;
      const p = perms!;
      // Removed since its parent was listed (outside a transaction): its event follows.
      if ([v, p, d].some((r) => isError(r) && errnoOf(r) === "ENOENT")) return this.forget(path);
      if (isError(v)) throw new XsReplyError(errnoOf(v), `READ ${path}`);
      if (isError(p)) throw new XsReplyError(errnoOf(p), `GET_PERMS ${path}`);
      if (!isError(d)) return this.found(path, v.payload, list(p.payload), this.children(path, d.payload));
      if (errnoOf(d) !== "E2BIG") throw new XsReplyError(errnoOf(d), `DIRECTORY ${path}`);
      // Too many children for one reply: DIRECTORY_PART (Xen ≥ 4.14), page by page.
      this.listParts(path, 0, null, [], (names) => this.found(path, v.payload, list(p.payload), names));
    });
  }

  private children(path: string, payload: string): string[] {
    const names = list(payload);
    return path === "/" && this.daemon === "oxenstored"
      ? names.filter((n) => !OXENSTORED_SPECIAL.has(n))
      : names;
  }

  /**
   * What to re-read when an event reports `path` changed: the node itself, or, if it was created with
   * ancestors not read yet, the shallowest of them (below a node that is known).
   */
  lift(path: string): string {
    while (path !== "/" && !this.entries.has(parentOf(path))) path = parentOf(path);
    return path;
  }

  private listParts(
    path: string,
    offset: number,
    gen: string | null,
    names: string[],
    done: (names: string[]) => void,
  ): void {
    this.c.send(MsgType.DIRECTORY_PART, `${path}\0${offset}\0`, this.txId, (r) => {
      if (isError(r)) {
        if (errnoOf(r) === "ENOENT") return this.forget(path);
        throw new XsReplyError(errnoOf(r), `DIRECTORY_PART ${path}`);
      }
      const nul = r.payload.indexOf("\0");
      const g = r.payload.slice(0, nul);
      if (gen !== null && g !== gen) this.inconsistent(path);
      const rest = r.payload.slice(nul + 1);
      if (rest === "\0" || rest === "") return done(names); // an empty string ends the list
      const last = rest.endsWith("\0\0");
      const part = last ? rest.slice(0, -2) : stripNul(rest);
      for (const n of part.split("\0")) if (n !== "") names.push(n);
      if (last) return done(names);
      this.listParts(path, offset + part.length + 1, g, names, done);
    });
  }

  private found(path: string, value: string, perms: readonly string[], names: string[]): void {
    const old = this.entries.get(path);
    if (path !== "/" && old === undefined) {
      const parent = this.entries.get(parentOf(path));
      // Its parent was removed meanwhile: the parent's event brings the truth.
      if (parent === undefined) return;
      const name = path.slice(path.lastIndexOf("/") + 1);
      if (this.refreshing && !parent.children.includes(name)) parent.children.push(name);
    }
    this.entries.set(path, { value, perms, children: names });
    this.progress(this.entries.size);
    for (const n of names) {
      const child = joinPath(path, n);
      if (!this.entries.has(child)) this.visit(child);
    }
    if (old !== undefined) {
      const now = new Set(names);
      for (const n of old.children) if (!now.has(n)) this.forget(joinPath(path, n));
    }
  }

  /** Drop a node and everything below it, and its name from its parent's list. */
  private forget(path: string): void {
    const e = this.entries.get(path);
    if (e === undefined) return;
    const stack = [path];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = this.entries.get(p);
      if (x === undefined) continue;
      this.entries.delete(p);
      for (const n of x.children) stack.push(joinPath(p, n));
    }
    const parent = this.entries.get(parentOf(path));
    const name = path.slice(path.lastIndexOf("/") + 1);
    if (parent !== undefined && path !== "/") parent.children = parent.children.filter((n) => n !== name);
  }

  /** The nodes parents first, siblings by name (the order of treeNodes in src/backend/export.ts). */
  nodes(): ExportNode[] {
    const out: ExportNode[] = [];
    const stack = ["/"];
    while (stack.length > 0) {
      const p = stack.pop()!;
      const e = this.entries.get(p);
      if (e === undefined) continue;
      out.push({ path: p, value: e.value, perms: e.perms });
      const names = [...e.children].sort();
      for (let i = names.length - 1; i >= 0; i--) stack.push(joinPath(p, names[i]));
    }
    return out;
  }
}

export interface HostReadOptions {
  /** auto (default): by daemon, see snapshotMethodFor. */
  readonly snapshot?: "auto" | SnapshotMethod;
  /** Called as nodes are read (often: throttle in the callee). */
  readonly onProgress?: (nodes: number) => void;
  readonly maxPasses?: number;
}

export interface HostReadResult {
  readonly nodes: ExportNode[];
  readonly daemon: DaemonKind;
  readonly method: SnapshotMethod;
  /** Passes over the store (watch method; 1 = nothing changed while it was read). */
  readonly passes: number;
  /** Changes reported (and re-read) after the first pass started (watch method). */
  readonly changes: number;
  /** Why `auto` fell back from a transaction to the watch method, if it did. */
  readonly fallback: string | null;
}

/** Every node (value, permissions) of a running daemon, as one snapshot (see the top of this file). */
export async function readHostStore(socketPath: string, opts: HostReadOptions = {}): Promise<HostReadResult> {
  const progress = opts.onProgress ?? (() => {});
  let c = await XsConnection.connect(socketPath);
  try {
    const daemon = await identifyDaemon(c);
    const choice = opts.snapshot ?? "auto";
    let fallback: string | null = null;
    if ((choice === "auto" ? snapshotMethodFor(daemon) : choice) === "transaction") {
      try {
        const nodes = await readInTransaction(c, daemon, progress);
        return { nodes, daemon, method: "transaction", passes: 1, changes: 0, fallback };
      } catch (e) {
        // A daemon whose transactions are too small for the store (a per-transaction quota): the
        // watch method has no size limit. The connection is in an unknown state: start afresh.
        const quota = e instanceof XsReplyError && (e.errno === "ENOSPC" || e.errno === "EQUOTA");
        if (choice !== "auto" || !quota) throw e;
        fallback = `${(e as Error).message} inside a transaction`;
        c.close();
        c = await XsConnection.connect(socketPath);
      }
    }
    const r = await readWithWatch(c, daemon, progress, opts.maxPasses ?? MAX_PASSES);
    return { ...r, daemon, method: "watch", fallback };
  } finally {
    c.close();
  }
}

async function readInTransaction(
  c: XsConnection,
  daemon: DaemonKind,
  progress: (n: number) => void,
): Promise<ExportNode[]> {
  const tx = Number(stripNul(await c.request(MsgType.TRANSACTION_START, "\0")));
  const reader = new StoreReader(c, daemon, tx, (path) => {
    throw new Error(`${path} changed while it was listed inside a transaction`);
  }, progress);
  reader.visit("/");
  await c.drain();
  await c.request(MsgType.TRANSACTION_END, "F\0", tx);
  return reader.nodes();
}

async function readWithWatch(
  c: XsConnection,
  daemon: DaemonKind,
  progress: (n: number) => void,
  maxPasses: number,
): Promise<{ nodes: ExportNode[]; passes: number; changes: number }> {
  const token = `dxenstored-export-${Deno.pid}`;
  const changed = new Set<string>();
  c.onEvent = (path, tok) => {
    if (tok === token && path.startsWith("/")) changed.add(path);
  };
  await c.request(MsgType.WATCH, `/\0${token}\0`);
  // The watch fires once when set; its event precedes this reply. Nothing has been read yet.
  await c.request(MsgType.READ, "/\0");
  changed.clear();
  const reader = new StoreReader(c, daemon, 0, (path) => changed.add(path), progress);
  reader.visit("/");
  await c.drain();
  let passes = 1;
  let changes = 0;
  while (changed.size > 0) {
    if (passes >= maxPasses) {
      throw new Error(
        `the store kept changing: ${changed.size} node(s) changed during pass ${passes} of ${maxPasses}; ` +
          `no consistent copy (retry when the host is quieter)`,
      );
    }
    passes++;
    changes += changed.size;
    const paths = [...changed];
    changed.clear();
    reader.refreshing = true;
    for (const p of new Set(paths.map((p) => reader.lift(p)))) reader.visit(p);
    await c.drain();
  }
  c.onEvent = null;
  return { nodes: reader.nodes(), passes, changes };
}

export interface HostWriteOptions {
  readonly onProgress?: (nodes: number) => void;
  /** Nodes per transaction (default: importBatchFor the daemon). */
  readonly batch?: number;
}

export interface HostWriteResult {
  readonly nodes: number;
  readonly daemon: DaemonKind;
  readonly transactions: number;
  /** Batches committed again after EAGAIN. */
  readonly retries: number;
}

/**
 * Write nodes into a running daemon (parents first): WRITE of the value, then SET_PERMS, in
 * transactions of `batch` nodes, so no node is ever seen with its value but not yet its
 * permissions, and a persistent daemon syncs once per batch. Existing nodes are overwritten,
 * others left alone. The next batch's TRANSACTION_START follows the previous batch's end on the
 * wire, so the transactions never overlap (they would conflict with each other in cxenstored,
 * which counts a new child as a change of its parent). A batch that conflicts with another client
 * (EAGAIN) is written again; the first failing request stops the import, naming the node.
 */
export async function writeHostStore(
  socketPath: string,
  nodes: readonly ExportNode[],
  opts: HostWriteOptions = {},
): Promise<HostWriteResult> {
  const c = await XsConnection.connect(socketPath);
  try {
    const daemon = await identifyDaemon(c);
    const batch = opts.batch ?? importBatchFor(daemon);
    let transactions = 0;
    let retries = 0;
    let written = 0;
    let failure: Error | null = null;
    const fail = (e: Error) => failure ??= e;
    // Batches still to write, in order (a conflicting one goes to the back: its nodes' parents
    // are either written already or created by the later batches' WRITEs, and rewritten then).
    const todo: Array<{ from: number; attempt: number }> = [];
    for (let i = 0; i < nodes.length; i += batch) todo.push({ from: i, attempt: 1 });
    let next = 0;
    const startNext = () => {
      if (failure !== null || next >= todo.length) return;
      const b = todo[next++];
      transactions++;
      c.send(MsgType.TRANSACTION_START, "\0", 0, (r) => {
        if (failure !== null) return;
        if (isError(r)) return fail(new XsReplyError(errnoOf(r), "TRANSACTION_START"));
        const tx = Number(stripNul(r.payload));
        const part = nodes.slice(b.from, b.from + batch);
        const check = (what: string) => (r: XsReply) => {
          if (isError(r)) fail(new XsReplyError(errnoOf(r), what));
        };
        for (const n of part) {
          if (n.path !== "/") c.send(MsgType.WRITE, `${n.path}\0${n.value}`, tx, check(`WRITE ${n.path}`));
          const perms = n.perms.map((p) => p + "\0").join("");
          c.send(MsgType.SET_PERMS, `${n.path}\0${perms}`, tx, check(`SET_PERMS ${n.path}`));
        }
        c.send(MsgType.TRANSACTION_END, "T\0", tx, (e) => {
          if (failure !== null) return;
          if (!isError(e)) {
            written += part.length;
            opts.onProgress?.(written);
          } else if (errnoOf(e) !== "EAGAIN") {
            fail(new XsReplyError(errnoOf(e), `TRANSACTION_END of nodes ${part[0].path} ..`));
          } else if (b.attempt >= IMPORT_ATTEMPTS) {
            fail(
              new Error(
                `nodes ${part[0].path} .. ${part[part.length - 1].path}: the transaction conflicted ` +
                  `${b.attempt} times (EAGAIN: other clients keep changing these nodes)`,
              ),
            );
          } else {
            retries++;
            todo.push({ from: b.from, attempt: b.attempt + 1 });
            if (next === todo.length - 1) startNext();
          }
        });
        startNext();
      });
    };
    startNext();
    await c.drain();
    if (failure !== null) throw failure;
    return { nodes: nodes.length, daemon, transactions, retries };
  } finally {
    c.close();
  }
}
