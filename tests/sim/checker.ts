/**
 * The simulation's invariant checker. It watches the real daemon from outside its logic — the
 * database's commit listener, the dispatcher's request observer, the requests' boundaries — and keeps
 * the model (./model.ts) in the daemon's commit order:
 *
 *  - every answer to a node request equals the model's answer at the point the daemon served it;
 *  - a committed transaction, replayed whole on the model at its commit point, gives the answers the
 *    transaction got (serializability) and leaves the model equal to the daemon's tree;
 *  - each watcher gets each event once, in commit order: the expected events are derived from each
 *    commit's changes and the watches the daemon acknowledged, by the rule of docs/watches.md;
 *  - every answer or event a client received was durable (a crash never takes it back): the state it
 *    showed is the floor of what a restart may come back with (`lastAck`);
 *  - a request never ends in an internal error (the daemon never throws).
 */
import { StorageError } from "../../src/common/xs_error.ts";
import type { Client } from "../../src/dispatch/client.ts";
import type { Core } from "../../src/dispatch/core.ts";
import { Refusal } from "../../src/dispatch/dispatcher.ts";
import type { RequestObserver } from "../../src/dispatch/extensions.ts";
import type { Message } from "../../src/protocol/codec.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { Commit, Database } from "../../src/store/database.ts";
import { components } from "../../src/store/path.ts";
import { lookup, type Node } from "../../src/store/tree.ts";
import { Model, type ModelOp, modelOp, type ModelResult, modifies } from "./model.ts";

export interface ExpectedEvent {
  readonly path: string;
  readonly token: string;
  /** The history index of the state the event reports (0: none in particular). */
  readonly idx: number;
  /**
   * Which commit (or registration) fired it: events of one commit may arrive in any order among
   * themselves (the protocol orders commits, not the watches one change fires), commits in order.
   */
  readonly serial: number;
}

interface SimWatch {
  readonly abs: string;
  readonly token: string;
  /** Strip this prefix from event paths (watch registered with a relative path). */
  readonly relBase: string | null;
  readonly given: string;
}

interface TxEntry {
  readonly op: ModelOp;
  readonly ok: boolean;
  readonly payload: string;
}

const DEBUG = Deno.env.get("SIM_DEBUG") === "1";
const isUnder = (p: string, w: string) => p === w || w === "/" || p.startsWith(w + "/");

export class Checker {
  model = new Model();
  /** Model states since the daemon (re)started: history[i] after the i-th change. */
  history: Model[] = [this.model.clone()];
  /** States that a failed (EIO/ENOSPC) write may have left on the disk: `state` follows history[at]. */
  maybes: Array<{ readonly at: number; readonly state: Model }> = [];
  /** The newest state some client has seen: a restart must come back with it or a later one. */
  lastAck = 0;
  readonly violations: string[] = [];
  /** Served requests: "clientId:reqId" → the history index of the state the reply showed. */
  readonly replyIdx = new Map<string, number>();
  readonly expected = new Map<number, ExpectedEvent[]>();
  readonly watches = new Map<number, SimWatch[]>();
  /** Open transactions: their requests and answers, and the history index when they started. */
  private readonly txLogs = new Map<string, { readonly start: number; readonly log: TxEntry[] }>();
  private inRequest = false;
  private serial = 1;
  private requestCommits = 0;
  /** After the crash point the process is dead: nothing it does is real. */
  dead = false;
  readonly stats = { requests: 0, commits: 0, txCommitted: 0, txConflicts: 0, storageErrors: 0, events: 0 };
  /** Running digest of what the daemon did (the determinism check compares it between two runs). */
  digest = 0x811c9dc5;

  fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(what);
  }

  mix(s: string): void {
    let h = this.digest;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    this.digest = h;
  }

  private core: Core | null = null;

  /** Hook into a new incarnation's database, before the backend (its compaction) is attached. */
  instrumentDatabase(db: Database): void {
    db.onCommit((c) => this.onCommit(this.core!, c));
  }

  /** Hook into a new daemon incarnation (before anything is served). */
  instrument(core: Core): void {
    this.core = core;
    const handle = core.dispatcher.handle.bind(core.dispatcher);
    core.dispatcher.handle = (c: Client, m: Message) => {
      this.inRequest = true;
      this.requestCommits = 0;
      this.pendingRequestCommits = [];
      try {
        handle(c, m);
      } finally {
        this.inRequest = false;
      }
    };
  }

  /** The observer every daemon incarnation's core is built with (it sees every reply). */
  readonly observer: RequestObserver = {
    opened: () => {},
    closed: (c) => {
      this.watches.delete(c.id);
      this.expected.delete(c.id);
      for (const k of [...this.txLogs.keys()]) if (k.startsWith(`${c.id}:`)) this.txLogs.delete(k);
    },
    replied: (c, m, type, reply, failure) => this.replied(c, m, type, reply, failure),
    watchEvent: () => {},
  };

  /** Start over after a restart from `state` (a candidate the recovered store matched). */
  restart(state: Model): void {
    this.model = state;
    this.history = [state.clone()];
    this.maybes = [];
    this.lastAck = 0;
    this.replyIdx.clear();
    this.expected.clear();
    this.watches.clear();
    this.txLogs.clear();
    this.dead = false;
  }

  /** Which state the recovered store is: a history index ≥ lastAck, or a maybe after it; else null. */
  matchRecovered(recovered: Model): Model | null {
    for (let k = this.history.length - 1; k >= this.lastAck; k--) {
      if (this.history[k].diff(recovered) === null) return this.history[k];
    }
    for (const m of this.maybes) if (m.at >= this.lastAck && m.state.diff(recovered) === null) return m.state;
    return null;
  }

  /** A client saw an answer or event showing history state `idx`. */
  ack(idx: number | undefined): void {
    if (idx !== undefined && idx > this.lastAck) this.lastAck = idx;
  }

  private onCommit(core: Core, c: Commit): void {
    if (this.dead) return;
    this.stats.commits++;
    const idx = this.history.length;
    if (this.inRequest) {
      this.requestCommits++;
      this.pendingRequestCommits.push(c);
    }
    this.queueEvents(core, c, idx);
    if (!this.inRequest) {
      // The daemon's own commits (a dead domain's nodes removed): only removals under a domain's home.
      this.applyInternal(c);
      this.history.push(this.model.clone());
    }
  }

  private applyInternal(c: Commit): void {
    for (const ch of c.changes) {
      if (ch.kind === "rm") {
        if (!/^\/local\/domain\/[0-9]+\//.test(ch.path)) this.fail(`internal commit removes ${ch.path}`);
        this.model.removeTree(ch.path);
      } else if (ch.kind === "write") this.fail(`internal commit writes ${ch.path}`);
    }
  }

  /** Expected events of a commit: for each change, the acknowledged watches it fires, once each. */
  private queueEvents(core: Core, c: Commit, idx: number): void {
    const told = new Set<string>();
    const serial = this.serial++;
    if (DEBUG) {
      console.log(
        `commit serial ${serial} idx ${idx} dom${c.domid} inRequest=${this.inRequest}`,
        c.changes.map((x) => `${x.kind} ${x.path}`),
      );
    }
    for (const [owner, ws] of this.watches) {
      if (!core.clients.has(owner)) continue;
      for (const w of ws) {
        for (const ch of c.changes) {
          const paths: string[] = [];
          if (isUnder(ch.path, w.abs)) paths.push(ch.path);
          else if (ch.kind === "rm" && isUnder(w.abs, ch.path)) paths.push(w.abs);
          for (const p of paths) {
            // Visible only where the node exists (dom0 and a guest in its own data/ may read anything
            // there): a write in the tree after the commit, a removal in the tree before it — so a node
            // a transaction created and removed again fires nothing (docs/watches.md).
            const where = ch.kind === "rm" ? c.before : ch.kind === "write" ? c.after : null;
            const exists = (root: Node) => lookup(root, components(p)) !== undefined;
            if (where !== null ? !exists(where) : !exists(c.before) && !exists(c.after)) continue;
            const key = `${owner}\0${w.abs}\0${w.token}\0${p}`;
            if (told.has(key)) continue;
            told.add(key);
            const rel = w.relBase !== null && p.startsWith(w.relBase) && p.length > w.relBase.length
              ? p.slice(w.relBase.length)
              : p;
            this.push(owner, { path: rel, token: w.token, idx, serial });
          }
        }
      }
    }
  }

  /** A connection the daemon dropped (ring fault, reconnection): nothing more is owed to it. */
  forgetClient(id: number): void {
    this.watches.delete(id);
    this.expected.delete(id);
  }

  /** A watch the daemon restored at a restart: registered, with its one registration event owed. */
  adoptWatch(owner: number, abs: string, token: string, relBase: string | null, given: string): void {
    const list = this.watches.get(owner) ?? [];
    list.push({ abs, token, relBase, given });
    this.watches.set(owner, list);
    this.push(owner, { path: given, token, idx: 0, serial: this.serial++ });
  }

  push(owner: number, e: ExpectedEvent): void {
    if (DEBUG) console.log(`expect #${owner} ${JSON.stringify(e)}`);
    let q = this.expected.get(owner);
    if (q === undefined) this.expected.set(owner, q = []);
    q.push(e);
  }

  /** A client received watch events: they must be the next expected ones, in order. */
  receivedEvents(owner: number, who: string, got: ReadonlyArray<{ path: string; token: string }>): void {
    const q = this.expected.get(owner) ?? [];
    if (DEBUG) {
      console.log(
        `events to ${who}#${owner}: ${JSON.stringify(got)} expected ${JSON.stringify(q.slice(0, 6))}`,
      );
    }
    for (const e of got) {
      this.stats.events++;
      this.mix(`E${who}${e.path}\0${e.token}`);
      // The event must belong to the oldest commit still owed.
      let i = 0;
      while (
        i < q.length && q[i].serial === q[0].serial && (q[i].path !== e.path || q[i].token !== e.token)
      ) i++;
      const x = i < q.length && q[i].serial === q[0].serial ? q.splice(i, 1)[0] : q.shift();
      if (x === undefined || x.path !== e.path || x.token !== e.token) {
        this.fail(
          `${who}: event ${JSON.stringify(e)} but expected ${x === undefined ? "none" : JSON.stringify(x)} ` +
            `(then ${JSON.stringify(q.slice(0, 4))})`,
        );
        q.length = 0;
        return;
      }
      this.ack(x.idx);
    }
  }

  /** Events still owed to `owner` (checked once its output was all delivered). */
  owed(owner: number): number {
    return this.expected.get(owner)?.length ?? 0;
  }

  private replied(c: Client, m: Message, type: number, reply: string, failure: unknown): void {
    // After the crash point nothing is real — except a commit that took effect before it, in the
    // request that was being handled when the process died, or its write that failed at the crash
    // point (either may have left its record on disk).
    if (this.dead && this.requestCommits === 0 && !(failure instanceof StorageError)) return;
    this.stats.requests++;
    if (DEBUG) {
      console.log(
        `req ${c.label}#${c.id} tx${m.txId} type ${m.type} ${
          JSON.stringify(m.payload.slice(0, 40))
        } -> ${type} ${JSON.stringify(reply.slice(0, 40))} hist ${this.history.length}`,
      );
    }
    this.mix(`R${c.id}:${m.reqId}:${type}:${reply}`);
    // A refusal: an XsError thrown, or the Refusal a READ returns (src/dispatch/dispatcher.ts).
    if (
      failure !== null && !(failure instanceof Refusal) && !(failure instanceof Error && "errno" in failure)
    ) {
      this.fail(
        `internal error answering type ${m.type} ${JSON.stringify(m.payload.slice(0, 60))}: ${failure}`,
      );
    }
    const storage = failure instanceof StorageError;
    if (storage) this.stats.storageErrors++;
    const ok = type !== MsgType.ERROR;
    const errno = ok ? "" : reply.replace(/\0$/, "");
    const abs = (p: string) => p.startsWith("/") ? p : `${c.base}/${p}`;
    const key = (tx: number) => `${c.id}:${tx}`;
    const op = modelOp(m.type, m.payload, abs);
    const committed = this.requestCommits > 0;
    if (op !== null && m.txId !== 0) {
      this.txLogs.get(key(m.txId))?.log.push({ op, ok, payload: ok ? reply : errno });
    } else if (op !== null) {
      if (storage && modifies(op)) {
        const s = this.model.clone();
        s.apply(op);
        this.maybes.push({ at: this.history.length - 1, state: s });
      } else if (ok || errno === "ENOENT") this.check(this.model, op, ok, ok ? reply : errno, "");
    } else if (m.type === MsgType.TRANSACTION_START && ok) {
      this.txLogs.set(key(Number(reply.replace(/\0$/, ""))), { start: this.history.length - 1, log: [] });
    } else if (m.type === MsgType.TRANSACTION_END) {
      const tx = this.txLogs.get(key(m.txId));
      if (tx !== undefined && (ok || errno !== "ENOENT")) this.txLogs.delete(key(m.txId));
      if (tx !== undefined && m.payload.startsWith("T")) {
        const log = tx.log;
        const what = `transaction ${m.txId} of ${c.label}`;
        if (ok && !log.some((e) => e.ok && modifies(e.op))) {
          // Read-only: it commits at once, serialized at its snapshot (the state when it started).
          this.stats.txCommitted++;
          this.replay(this.history[tx.start], log, `read-only ${what}`);
        } else if (ok) {
          this.stats.txCommitted++;
          this.model = this.replay(this.model, log, what);
        } else if (storage) {
          this.maybes.push({ at: this.history.length - 1, state: this.replay(this.model, log, "") });
        } else if (errno === "EAGAIN") this.stats.txConflicts++;
      }
    } else if (m.type === MsgType.WATCH && ok) {
      const [path, token] = m.payload.split("\0");
      const list = this.watches.get(c.id) ?? [];
      list.push({ abs: abs(path), token, given: path, relBase: path.startsWith("/") ? null : `${c.base}/` });
      this.watches.set(c.id, list);
      this.push(c.id, { path, token, idx: 0, serial: this.serial++ });
    } else if (m.type === MsgType.UNWATCH && ok) {
      const [path, token] = m.payload.split("\0");
      const list = this.watches.get(c.id) ?? [];
      const i = list.findIndex((w) => w.abs === abs(path) && w.token === token);
      if (i < 0) this.fail(`UNWATCH ${path} ${token} succeeded for a watch never acknowledged`);
      else list.splice(i, 1);
    }
    if (committed && op === null && m.type !== MsgType.TRANSACTION_END) {
      // Requests that are no node operation but commit (SET_PERMS, RELEASE): values unchanged, or
      // a released domain's nodes removed — applied as the daemon's own commits are.
      this.applyRequestCommits(m);
    }
    if (committed) this.history.push(this.model.clone());
    this.replyIdx.set(`${c.id}:${m.reqId}`, this.history.length - 1);
  }

  /** Commits of the request being handled (applied as the daemon's own for non-node requests). */
  private pendingRequestCommits: Commit[] = [];

  private applyRequestCommits(_m: Message): void {
    for (const c of this.pendingRequestCommits) this.applyInternal(c);
    this.pendingRequestCommits = [];
  }

  /** Compare one answer with the model's (and apply the operation). */
  private check(model: Model, op: ModelOp, ok: boolean, got: string, ctx: string): void {
    const r: ModelResult = model.apply(op);
    const want = r.ok ? r.payload : r.errno;
    if (r.ok !== ok || want !== got) {
      this.fail(
        `${ctx}${op.op} ${op.path}: daemon answered ${ok ? "" : "error "}${
          JSON.stringify(got.slice(0, 80))
        }, ` +
          `model ${r.ok ? "" : "error "}${JSON.stringify(want.slice(0, 80))}`,
      );
    }
  }

  /** A transaction's log replayed at its commit point: the state after it (answers compared). */
  private replay(base: Model, log: readonly TxEntry[], ctx: string): Model {
    const s = base.clone();
    for (const e of log) {
      if (!e.ok && e.payload !== "ENOENT") continue; // refused (quota, size): no effect in the view
      if (ctx === "") s.apply(e.op);
      else this.check(s, e.op, e.ok, e.payload, `${ctx} not serializable: `);
    }
    return s;
  }
}
