/**
 * Seeded random differential testing against Debian's cxenstored 4.17 (through ../shared/anchors):
 * one seed drives the same request sequence on several connections of each daemon — every node
 * operation (READ WRITE MKDIR RM DIRECTORY DIRECTORY_PART GET_PERMS SET_PERMS), transactions (ops
 * inside them, commits, aborts, stale ids), watches and their events, and malformed requests — and
 * every reply and every watch event must be the same, after the normalisations and documented
 * differences listed in DOCUMENTED below (docs/protocol.md, "Differences from cxenstored").
 *
 *   bin/deno task diff [--seeds N] [--seed S] [--requests R]     (a longer run than CI's)
 *
 * A failing seed prints a one-line command that replays exactly that run.
 */
import { WireClient, XS } from "../helpers/wire.ts";
import { Rng } from "../helpers/rng.ts";
import { Generator, type Step } from "./random_diff_gen.ts";

// ---- outcomes ------------------------------------------------------------------------------------

/** One request's result on one daemon, normalised for comparison. */
export interface Outcome {
  /** "ERR <errno>", "OK <normalised payload>". */
  readonly reply: string;
  /** Watch events that arrived on the connection before the reply, sorted ("path token"). */
  readonly events: string[];
}

function splitNames(s: string): string[] {
  const parts = s.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** A reply in a form both daemons must agree on (docs/protocol.md: DIRECTORY order, generations, ids). */
export function normalise(type: number, replyType: number, payload: string, request = ""): string {
  if (replyType === XS.ERROR) return `ERR ${payload.replace(/\0$/, "")}`;
  if (replyType !== type) return `TYPE ${replyType} ${JSON.stringify(payload)}`;
  switch (type) {
    case XS.DIRECTORY:
      // cxenstored lists children in insertion order, dxenstored sorted: compare the sets.
      return `OK ${JSON.stringify(splitNames(payload).sort())}`;
    case XS.DIRECTORY_PART: {
      // "<generation>\0" + names from the offset; the generation is each daemon's own counter, and
      // the order differs as for DIRECTORY, so only a complete single part ("...\0\0") is compared.
      // From a non-zero offset the part depends on the order: only its success is compared.
      if (request.split("\0")[1] !== "0") return "OK PART-OFFSET";
      const rest = payload.slice(payload.indexOf("\0") + 1);
      if (rest === "" || rest === "\0") return "OK PART-END";
      if (!rest.endsWith("\0\0")) return "OK PART-PARTIAL";
      return `OK PART ${JSON.stringify(splitNames(rest.slice(0, -1)).sort())}`;
    }
    case XS.TRANSACTION_START:
      return "OK TXID";
    default:
      return `OK ${JSON.stringify(payload)}`;
  }
}

// ---- documented differences ----------------------------------------------------------------------

export interface Difference {
  readonly index: number;
  readonly step: Step;
  readonly cx: Outcome;
  readonly dx: Outcome;
  /** The documented difference that explains it, or null (a failure). */
  readonly documented: string | null;
}

/**
 * Differences docs/protocol.md lists with their reason. Each returns its name if it explains a
 * differing outcome.
 */
export const DOCUMENTED: ReadonlyArray<(s: Step, cx: Outcome, dx: Outcome) => string | null> = [
  // GET_PERMS of an @-path: 4.17 answers EINVAL to all; later Xen and we answer the permissions of
  // @introduceDomain / @releaseDomain, and ENOENT for other special names.
  (s, cx, dx) =>
    s.type === XS.GET_PERMS && s.payload.startsWith("@") && cx.reply === "ERR EINVAL" && dx.reply !== cx.reply
      ? "GET_PERMS of a special path"
      : null,
  // UNWATCH of a path no watch can have (malformed): cxenstored looks for it (ENOENT), we say why.
  (s, cx, dx) =>
    s.type === XS.UNWATCH && cx.reply === "ERR ENOENT" && dx.reply === "ERR EINVAL"
      ? "UNWATCH of an invalid path"
      : null,
];

/** Events equal, or (after a documented commit difference) differing only by what the commit fired. */
function sameEvents(cx: Outcome, dx: Outcome, dxMayHaveMore: boolean): boolean {
  if (!dxMayHaveMore) return JSON.stringify(cx.events) === JSON.stringify(dx.events);
  return cx.events.every((e) => dx.events.includes(e));
}

// ---- running a seed ------------------------------------------------------------------------------

export interface RunResult {
  readonly seed: number;
  readonly requests: number;
  readonly differences: Difference[];
  /** Transactions whose commit differed and were replayed on cxenstored to bring the stores together. */
  readonly resyncs: number;
}

/** Connect, retrying while the listener's backlog is full (cxenstored accepts one at a time). */
async function connect(socket: string): Promise<WireClient> {
  for (let i = 0;; i++) {
    try {
      return await WireClient.connect(socket);
    } catch (e) {
      const retry = e instanceof Deno.errors.WouldBlock || e instanceof Deno.errors.ConnectionRefused;
      if (!retry || i > 200) throw e;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** One daemon's connections, and each connection's watch events that arrived before its replies. */
class Side {
  private constructor(readonly socket: string, readonly conns: WireClient[], readonly admin: WireClient) {}

  static async open(socket: string, n: number): Promise<Side> {
    const conns: WireClient[] = [];
    for (let i = 0; i < n; i++) conns.push(await connect(socket));
    return new Side(socket, conns, await connect(socket));
  }

  /** Send one request on connection `i`, return its outcome (events before the reply included). */
  async request(i: number, type: number, payload: string, txId: number): Promise<Outcome & { raw: string }> {
    const c = this.conns[i];
    const events: string[] = [];
    let reqId: number;
    try {
      reqId = await c.send(type, payload, { txId });
    } catch (e) {
      return await this.closed(i, events, e);
    }
    for (;;) {
      let m;
      try {
        m = await c.recv(10_000);
      } catch (e) {
        return await this.closed(i, events, e);
      }
      if (m.payload.length > 4096) throw new Error(`a ${m.payload.length}-byte packet`);
      if (m.type === XS.WATCH_EVENT) {
        const [p, tok] = m.payload.split("\0");
        events.push(`${p} ${tok}`);
        continue;
      }
      if (m.reqId !== reqId) throw new Error(`reply ${m.reqId} to request ${reqId}`);
      return { reply: normalise(type, m.type, m.payload, payload), events: events.sort(), raw: m.payload };
    }
  }

  /** The daemon closed connection `i`: that is the outcome; a fresh connection takes its place. */
  private async closed(i: number, events: string[], e: unknown): Promise<Outcome & { raw: string }> {
    if ((e as Error).name === "WireTimeout") throw e;
    if (TRACE) console.error(`${this.socket}: connection ${i} closed: ${e}`);
    this.conns[i].close();
    this.conns[i] = await connect(this.socket);
    return { reply: "CONNECTION CLOSED", events: events.sort(), raw: "" };
  }

  /** A request on the admin connection (never watches): its raw reply. */
  async admin1(type: number, payload: string): Promise<{ type: number; payload: string }> {
    const r = await this.admin.request(type, payload, { timeoutMs: 10_000 });
    return { type: r.type, payload: r.payload };
  }

  close(): void {
    for (const c of this.conns) c.close();
    this.admin.close();
  }
}

/** Every node under `root` as "path value perms" lines (sorted), read over the admin connection. */
export async function dumpTree(side: Side, root: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const v = await side.admin1(XS.READ, `${p}\0`);
    if (v.type === XS.ERROR) continue;
    const perms = await side.admin1(XS.GET_PERMS, `${p}\0`);
    out.push(`${p} ${JSON.stringify(v.payload)} ${JSON.stringify(perms.payload)}`);
    const d = await side.admin1(XS.DIRECTORY, `${p}\0`);
    if (d.type === XS.DIRECTORY) { for (const n of splitNames(d.payload)) stack.push(`${p}/${n}`); }
  }
  return out.sort();
}

const ROOTS = ["/t", "/local/domain/0/rel"];
const TRACE = Deno.env.get("DIFF_TRACE") === "1";

/** The absolute path a node request names (its first argument), or null if it is not a valid one. */
function pathOf(step: Step): string | null {
  const raw = step.payload.split("\0")[0];
  const abs = raw.startsWith("rel/") ? `/local/domain/0/${raw}` : raw;
  return /^\/t(\/[a-d])*$|^\/local\/domain\/0\/rel(\/[a-d])*$/.test(abs) ? abs : null;
}

/** Are `a` and `b` on one line of the tree (equal, or one an ancestor of the other)? */
function sameLine(a: string, b: string): boolean {
  return a === b || a.startsWith(b + "/") || b.startsWith(a + "/");
}

/**
 * Could a change at `c` (which also creates the missing ancestors of `c`) change a reply about `p`?
 * Yes if it is on `p`'s line, or on its parent's (the parent's existence decides ENOENT for RM).
 */
function affects(c: string, p: string): boolean {
  return sameLine(c, p) || sameLine(c, p.slice(0, p.lastIndexOf("/")) || "/");
}

const MODIFYING: ReadonlySet<number> = new Set([XS.WRITE, XS.MKDIR, XS.RM, XS.SET_PERMS]);

/**
 * Run `requests` random requests of seed `seed` on both daemons (sockets `cxSocket`, `dxSocket`) and
 * compare every outcome. Transactions are where the two designs differ by intent (docs/protocol.md):
 * we answer from a snapshot taken at TRANSACTION_START, cxenstored 4.17 from the current store the
 * first time a node is touched, and the commits fail in different cases. So a differing reply inside
 * a transaction is accepted only for a path some other request changed since the transaction
 * started, and a differing commit only as documented; the daemon that did not commit then gets the
 * transaction's modifications replayed, and the two stores must be equal again (the trees are
 * compared). Everything else must be identical.
 */
export async function runSeed(
  seed: number,
  requests: number,
  cxSocket: string,
  dxSocket: string,
  conns = 3,
  /** Go on after an undocumented difference (to survey them; later ones may follow from it). */
  survey = false,
): Promise<RunResult> {
  const r = new Rng(seed);
  const gen = new Generator(r, conns);
  const sides = [await Side.open(cxSocket, conns), await Side.open(dxSocket, conns)];
  const differences: Difference[] = [];
  /** Paths changed outside each transaction, in order (`seq` is the index + 1). */
  const changes: string[] = [];
  let resyncs = 0;
  const treesDiffer = async (i: number, step: Step): Promise<boolean> => {
    for (const root of ROOTS) {
      const [a, b] = [await dumpTree(sides[0], root), await dumpTree(sides[1], root)];
      if (JSON.stringify(a) === JSON.stringify(b)) continue;
      const cxOnly = a.filter((x) => !b.includes(x));
      const dxOnly = b.filter((x) => !a.includes(x));
      differences.push({
        index: i,
        step,
        cx: { reply: `tree ${root}`, events: cxOnly },
        dx: { reply: `tree ${root}`, events: dxOnly },
        documented: null,
      });
      return true;
    }
    return false;
  };
  const treesEqual = async (): Promise<boolean> => {
    for (const root of ROOTS) {
      const [a, b] = [await dumpTree(sides[0], root), await dumpTree(sides[1], root)];
      if (JSON.stringify(a) !== JSON.stringify(b)) return false;
    }
    return true;
  };
  try {
    for (const s of sides) {
      for (const root of ROOTS) await s.admin1(XS.MKDIR, `${root}\0`);
    }
    for (let i = 0; i < requests; i++) {
      const step = gen.next();
      if (TRACE) {
        console.error(
          `#${i} conn ${step.conn} type ${step.type} ${JSON.stringify(step.payload.slice(0, 80))} ` +
            `tx ${step.tx?.ids ?? step.staleTx}`,
        );
      }
      const out: Array<Outcome & { raw: string }> = [];
      for (const [k, s] of sides.entries()) {
        const txId = step.tx !== null ? step.tx.ids[k] : step.staleTx ?? 0;
        out.push(await s.request(step.conn, step.type, step.payload, txId));
      }
      const [cx, dx] = out;
      if (TRACE) console.error(`   cx ${cx.reply.slice(0, 60)} | dx ${dx.reply.slice(0, 60)}`);
      const path = pathOf(step);
      const tx = step.tx;
      // Bookkeeping: transactions, their modifications per daemon, changes made outside them.
      if (step.type === XS.TRANSACTION_START && cx.reply === "OK TXID" && dx.reply === "OK TXID") {
        gen.open[step.conn].push({
          conn: step.conn,
          ids: [Number(cx.raw.slice(0, -1)), Number(dx.raw.slice(0, -1))],
          mods: [[], []],
          startSeq: changes.length,
          touched: [],
          stale: false,
        });
      }
      if (tx !== null && step.type !== XS.TRANSACTION_END) {
        if (path !== null) tx.touched.push(path);
        if (MODIFYING.has(step.type)) {
          out.forEach((o, k) =>
            o.reply.startsWith("OK") && tx.mods[k].push({ type: step.type, payload: step.payload })
          );
        }
      }
      if (tx === null && MODIFYING.has(step.type) && path !== null && dx.reply.startsWith("OK")) {
        changes.push(path);
      }
      if (step.type === XS.TRANSACTION_END && tx !== null) {
        const list = gen.open[step.conn];
        list.splice(list.indexOf(tx), 1);
      }
      if (step.type === XS.RESET_WATCHES || cx.reply === "CONNECTION CLOSED") {
        gen.open[step.conn].length = 0;
        gen.watches[step.conn].length = 0;
      }
      const committed = step.type === XS.TRANSACTION_END && step.payload === "T\0" && tx !== null
        ? out.map((o) => o.reply === `OK ${JSON.stringify("OK\0")}`)
        : null;
      if (committed !== null && tx !== null && (committed[0] || committed[1])) {
        for (const m of tx.mods[committed[1] ? 1 : 0]) {
          changes.push(pathOf({ ...m, conn: 0, tx: null, staleTx: null }) ?? "/");
        }
      }

      let documented: string | null = null;
      const same = cx.reply === dx.reply && sameEvents(cx, dx, false);
      if (!same) {
        if (
          tx !== null && step.type !== XS.TRANSACTION_END && path !== null &&
          changes.slice(tx.startSeq).some((c) => affects(c, path))
        ) {
          documented = "transaction reads: a snapshot here, the current node in cxenstored";
          tx.stale = true;
        } else if (
          committed !== null && tx !== null && committed[1] && !committed[0] && cx.reply === "ERR EAGAIN"
        ) {
          documented = "commit conflicts: only real conflicts fail";
        } else if (committed !== null && tx !== null && committed[0] && committed[1] && tx.stale) {
          // Both committed, but the transaction's replies differed (snapshot): so may its effects
          // and the events they fire (e.g. cxenstored fires for an RM that removed nothing).
          documented = "transaction reads: a snapshot here, the current node in cxenstored";
        } else if (
          committed !== null && tx !== null && committed[0] && dx.reply === "ERR EAGAIN" &&
          (tx.stale || tx.touched.some((t) => changes.slice(tx.startSeq).some((c) => affects(c, t))))
        ) {
          documented = "commit conflicts: a transaction that saw a stale snapshot fails";
        } else {
          for (const d of DOCUMENTED) documented ??= d(step, cx, dx);
        }
        differences.push({ index: i, step, cx, dx, documented });
        if (documented === null && !survey) return { seed, requests: i + 1, differences, resyncs };
      }
      if (committed !== null && tx !== null && committed[0] !== committed[1]) {
        // One daemon committed, the other did not: replay the committed modifications on the other.
        const from = committed[1] ? 1 : 0;
        for (const m of tx.mods[from]) await sides[1 - from].admin1(m.type, m.payload);
        resyncs++;
        if (await treesDiffer(i, step) && !survey) return { seed, requests: i + 1, differences, resyncs };
        // The replay fired events on the other daemon's watchers that the commit fired on the first:
        // take every queued event off every connection, on both daemons alike.
        await drainAll(sides);
      } else if (committed !== null && tx !== null && committed[0] && tx.stale) {
        // Both committed a transaction whose replies differed because of the snapshot: its
        // modifications may differ too (one failed here that succeeded in cxenstored; a read-only
        // transaction commits at its snapshot). Replay cxenstored's on dxenstored if the stores
        // differ — they must then be equal — and drop the events either commit fired elsewhere.
        if (!(await treesEqual())) {
          for (const m of tx.mods[0]) await sides[1].admin1(m.type, m.payload);
          resyncs++;
          if (await treesDiffer(i, step) && !survey) return { seed, requests: i + 1, differences, resyncs };
        }
        await drainAll(sides);
      }
    }
    // The stores must be equal at the end.
    await treesDiffer(requests, { conn: -1, type: -1, payload: "final trees", tx: null, staleTx: null });
    return { seed, requests, differences, resyncs };
  } finally {
    for (const s of sides) s.close();
  }
}

let sentinel = 0;

/** Drop every event queued on every connection of both sides (a fresh watch's event marks the end). */
async function drainAll(sides: Side[]): Promise<void> {
  for (const s of sides) {
    for (const c of s.conns) {
      const path = `/sentinel${sentinel}`;
      const reqId = await c.send(XS.WATCH, `${path}\0s\0`);
      for (;;) {
        const m = await c.recv(10_000);
        if (m.type === XS.WATCH_EVENT && m.payload === `${path}\0s\0`) break;
        if (m.type !== XS.WATCH_EVENT && m.reqId !== reqId) throw new Error("unexpected reply");
      }
      await c.request(XS.UNWATCH, `${path}\0s\0`);
    }
  }
  sentinel++;
}

/** A human-readable account of a difference. */
export function describe(d: Difference): string {
  const s = d.step;
  const tx = s.tx !== null ? ` (in a transaction)` : s.staleTx !== null ? ` (stale tx id)` : "";
  return `#${d.index} conn ${s.conn} type ${s.type} ${JSON.stringify(s.payload.slice(0, 120))}${tx}\n` +
    `  cxenstored: ${d.cx.reply} events ${JSON.stringify(d.cx.events)}\n` +
    `  dxenstored: ${d.dx.reply} events ${JSON.stringify(d.dx.events)}` +
    (d.documented !== null ? `\n  documented: ${d.documented}` : "");
}

export function replayCommand(seed: number, requests: number): string {
  return `DIFF_SEED=${seed} DIFF_REQUESTS=${requests} bin/deno test -A tests/e2e/random_diff_test.ts`;
}

// ---- command line: bin/deno task diff -----------------------------------------------------------

if (import.meta.main) {
  const { startAnchor } = await import("../helpers/anchor.ts");
  const { startDaemon } = await import("../helpers/daemon.ts");
  const arg = (name: string, dflt: number) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
  };
  const first = arg("seed", 1);
  const seeds = arg("seeds", 1);
  const requests = arg("requests", 2000);
  let total = 0;
  const kinds = new Map<string, number>();
  let failed = 0;
  let resyncs = 0;
  for (let seed = first; seed < first + seeds; seed++) {
    const ref = await startAnchor("cxenstored");
    const d = await startDaemon({ args: ["--backend", "memory"] }).catch(async (e) => {
      await ref.stop();
      throw e;
    });
    try {
      const res = await runSeed(seed, requests, ref.socket, d.socket, 3, Deno.args.includes("--survey"));
      total += res.requests;
      resyncs += res.resyncs;
      for (const x of res.differences) {
        const k = x.documented ?? "UNDOCUMENTED";
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
        if (x.documented === null) {
          failed++;
          console.log(`seed ${seed}: ${describe(x)}\n  replay: ${replayCommand(seed, requests)}`);
        }
      }
      console.log(`seed ${seed}: ${res.requests} requests, ${res.differences.length} differences`);
    } finally {
      await d.stop();
      await ref.stop();
    }
  }
  const diffs = [...kinds.values()].reduce((a, b) => a + b, 0);
  console.log(
    `${seeds} seeds, ${total} requests, ${diffs} differences (${
      (100 * diffs / Math.max(1, total)).toFixed(2)
    } %), ` +
      `${failed} undocumented, ${resyncs} resyncs`,
  );
  for (const [k, n] of kinds) console.log(`  ${n}\t${k}`);
  Deno.exit(failed > 0 ? 1 : 0);
}
