/**
 * The simulation's clients: dom0 socket clients (in-process connections to the Core, output through
 * the daemon's release marks) and guests speaking the ring protocol byte by byte on their pages — some
 * of them misbehaving (inconsistent indices, oversized messages, unknown message types, reconnections,
 * not reading their replies). Each one keeps what it was told (acknowledged watches, its transaction)
 * and hands replies and events to the checker.
 */
import type { Message } from "../../src/protocol/codec.ts";
import { HEADER_SIZE, MsgType } from "../../src/protocol/wire.ts";
import {
  CONNECTED,
  encode,
  Field,
  isRingFault,
  MessageReader,
  RECONNECT,
  REQUESTS,
  RESPONSES,
  RingPage,
  ringProduce,
} from "../../src/xen/ring.ts";
import type { Rng } from "../helpers/rng.ts";
import type { Checker } from "./checker.ts";
import type { Delivered, SimDaemon, SimSocket } from "./daemon.ts";
import type { SimHypervisor } from "./xen.ts";

interface Outstanding {
  readonly reqId: number;
  readonly type: number;
  readonly payload: string;
}

function value(rng: Rng): string {
  if (rng.chance(0.05)) return "v".repeat(200 + rng.int(2800)); // large values: big log records
  return `v${rng.int(1000)}`;
}

function path(rng: Rng, root: string, names: readonly string[], depth: number): string {
  let p = root;
  for (let i = 1 + rng.int(depth); i > 0; i--) p += "/" + rng.pick(names);
  return p;
}

/** What both kinds of client do with their replies. */
abstract class Actor {
  nextReq = 1;
  outstanding: Outstanding[] = [];
  tx = 0;
  txStarting = false;
  /** Acknowledged watches ("path\0token"). */
  readonly watches = new Set<string>();
  /** Replies with request ids below this belong to requests given up at a restart. */
  staleBelow = 0;

  constructor(readonly name: string) {}

  protected abstract get clientId(): number;

  /** A node request, a transaction step or a watch change, at random (dom0: /sim; guests: data/). */
  protected nextRequest(
    rng: Rng,
    root: string,
    names: readonly string[],
    watchRoots: readonly string[],
  ): Message {
    const reqId = this.nextReq++;
    const p = path(rng, root, names, 3);
    const txId = this.tx;
    const pick = rng.weighted<string>([
      [30, "write"],
      [14, "read"],
      [4, "mkdir"],
      [8, "rm"],
      [8, "dir"],
      [this.tx === 0 && !this.txStarting ? 6 : 0, "txstart"],
      [this.tx !== 0 ? 6 : 0, "txend"],
      [4, "watch"],
      [this.watches.size > 0 ? 2 : 0, "unwatch"],
      [1, "bogus"],
    ]);
    let m: Message;
    switch (pick) {
      case "write":
        m = { type: MsgType.WRITE, reqId, txId, payload: `${p}\0${value(rng)}` };
        break;
      case "read":
        m = { type: MsgType.READ, reqId, txId, payload: `${p}\0` };
        break;
      case "mkdir":
        m = { type: MsgType.MKDIR, reqId, txId, payload: `${p}\0` };
        break;
      case "rm":
        m = { type: MsgType.RM, reqId, txId, payload: `${p}\0` };
        break;
      case "dir":
        m = { type: MsgType.DIRECTORY, reqId, txId, payload: `${rng.chance(0.2) ? root : p}\0` };
        break;
      case "txstart":
        this.txStarting = true;
        m = { type: MsgType.TRANSACTION_START, reqId, txId: 0, payload: "\0" };
        break;
      case "txend":
        m = { type: MsgType.TRANSACTION_END, reqId, txId, payload: rng.chance(0.8) ? "T\0" : "F\0" };
        this.tx = 0;
        break;
      case "watch":
        m = { type: MsgType.WATCH, reqId, txId: 0, payload: `${rng.pick(watchRoots)}\0t${rng.int(3)}\0` };
        break;
      case "unwatch": {
        const [wp, wt] = rng.pick([...this.watches].sort()).split("\0");
        m = { type: MsgType.UNWATCH, reqId, txId: 0, payload: `${wp}\0${wt}\0` };
        break;
      }
      default:
        // Not a request the protocol has, or a transaction id nobody opened: an error reply, nothing else.
        m = rng.chance(0.5)
          ? { type: 999, reqId, txId: 0, payload: "x\0" }
          : { type: MsgType.READ, reqId, txId: 77777, payload: `${p}\0` };
    }
    this.outstanding.push({ reqId, type: m.type, payload: m.payload });
    return m;
  }

  /** Replies and events as they arrived; violations go to the checker. */
  protected receive(chk: Checker, msgs: readonly Delivered[]): void {
    const events: Array<{ path: string; token: string }> = [];
    const flushEvents = () => {
      if (events.length > 0) chk.receivedEvents(this.clientId, this.name, events.splice(0));
    };
    for (const r of msgs) {
      if (r.type === MsgType.WATCH_EVENT) {
        const [p, t] = r.payload.split("\0");
        events.push({ path: p, token: t });
        continue;
      }
      flushEvents();
      chk.mix(`r${this.name}:${r.reqId}:${r.type}:${r.payload}`);
      if (r.reqId < this.staleBelow) continue;
      const o = this.outstanding.shift();
      if (o === undefined || o.reqId !== r.reqId) {
        chk.fail(`${this.name}: reply to request ${r.reqId}, expected ${o?.reqId ?? "none"}`);
        continue;
      }
      chk.ack(chk.replyIdx.get(`${this.clientId}:${r.reqId}`));
      const ok = r.type !== MsgType.ERROR;
      if (o.type === MsgType.TRANSACTION_START) {
        this.txStarting = false;
        if (ok) this.tx = Number(r.payload.replace(/\0$/, ""));
      } else if (o.type === MsgType.WATCH && ok) {
        const [p, t] = o.payload.split("\0");
        this.watches.add(`${p}\0${t}`);
      } else if (o.type === MsgType.UNWATCH && ok) {
        const [p, t] = o.payload.split("\0");
        this.watches.delete(`${p}\0${t}`);
      }
    }
    flushEvents();
  }

  /** Forget requests and transactions (connection reset, daemon restart). */
  protected forget(): void {
    this.staleBelow = this.nextReq;
    this.outstanding = [];
    this.tx = 0;
    this.txStarting = false;
  }
}

/** A dom0 client on the daemon's socket. */
export class SocketActor extends Actor {
  sock: SimSocket | null = null;

  protected get clientId(): number {
    return this.sock?.client.id ?? -1;
  }

  /** Requests for this turn (at most a few pipelined). */
  act(rng: Rng, d: SimDaemon, out: Array<[SimSocket, Message]>): void {
    if (this.sock === null || this.sock.closed) {
      this.sock = d.connect(this.name);
      this.forget();
      this.watches.clear();
    }
    if (rng.chance(0.01)) {
      d.disconnect(this.sock); // hang up with requests, transactions and watches outstanding
      this.sock = null;
      return;
    }
    const n = rng.int(3);
    for (let i = 0; i < n && this.outstanding.length < 4 && !this.txStarting; i++) {
      out.push([
        this.sock,
        this.nextRequest(rng, "/sim", ["a", "b", "c", "d"], ["/sim", "/sim/a", "/", "/local"]),
      ]);
    }
  }

  /** Take what the daemon released to this connection at the end of the turn. */
  collect(chk: Checker): void {
    if (this.sock !== null) this.receive(chk, this.sock.take());
  }

  /** The daemon died: the connection is gone. */
  lost(): void {
    this.sock = null;
  }
}

type GuestState = "down" | "up" | "faulted" | "reconnecting";

/** A guest domain's kernel, on its ring page. */
export class GuestActor extends Actor {
  state: GuestState = "down";
  private reader = new MessageReader();
  private backlog: Uint8Array = new Uint8Array(0);
  private muteSteps = 0;
  /** The daemon's client id for this ring (looked up when needed; changes at resets and restarts). */
  client = -1;
  readonly stats = { faults: 0, reconnects: 0, faultedAfterRestart: 0, watchesBack: 0 };
  /** The daemon restarted since this connection began (a request it had half read is lost then). */
  private restartedSince = false;

  constructor(readonly domid: number, private readonly hv: SimHypervisor) {
    super(`dom${domid}`);
  }

  protected get clientId(): number {
    return this.client;
  }

  private page(): RingPage | null {
    const d = this.hv.domains.get(this.domid);
    return d === undefined ? null : new RingPage(d.page);
  }

  /** Introduced (the toolstack's INTRODUCE was answered): start from a clean local state. */
  introduced(d: SimDaemon): void {
    this.reset(d);
  }

  private reset(d: SimDaemon): void {
    this.state = "up";
    this.restartedSince = false;
    this.reader = new MessageReader();
    this.backlog = new Uint8Array(0);
    this.forget();
    this.watches.clear();
    this.client = d.mgr.ringInfo(this.domid)?.clientId ?? -1;
  }

  /** Read whatever the daemon put in the ring (`force`: also while not reading, at a restart). */
  drain(chk: Checker, force = false): void {
    const page = this.page();
    if (page === null || this.state === "down" || (this.muteSteps > 0 && !force)) return;
    const got: Delivered[] = [];
    for (;;) {
      const m = this.reader.read(page, RESPONSES);
      if (m === null) break;
      if (isRingFault(m)) {
        // After a restart, a reply the dead process had half written is cut short (docs/simulation.md,
        // known limits): the guest resets its connection. Otherwise the daemon broke the ring.
        if (!this.restartedSince) chk.fail(`${this.name}: the daemon wrote a bad response ring (${m})`);
        this.stats.faultedAfterRestart++;
        this.state = "faulted";
        this.watches.clear();
        chk.forgetClient(this.client);
        return;
      }
      if (m.payload.length > 4096) chk.fail(`${this.name}: ${m.payload.length}-byte message in its ring`);
      got.push(m);
    }
    if (Deno.env.get("SIM_DEBUG") === "1" && got.length > 0) {
      console.log(
        `DRAIN ${this.name} state ${this.state} muted ${this.muteSteps} client ${this.client}: ${
          JSON.stringify(got.map((m) => [m.type, m.reqId, m.payload.slice(0, 20)]))
        }`,
      );
    }
    if (this.state === "up") this.receive(chk, got);
    if (this.state === "up" && page.get(Field.ERROR) !== 0) {
      // The daemon stopped serving this ring. A well-behaved guest only sees that after a restart
      // that happened while the daemon had taken part of a request off the ring: the rest of that
      // request then reads as a new message (docs/simulation.md, known limits).
      if (!this.restartedSince) {
        chk.fail(`${this.name}: ring error ${page.get(Field.ERROR)} set, guest did nothing wrong`);
      }
      this.stats.faultedAfterRestart++;
      this.state = "faulted";
      this.watches.clear();
      chk.forgetClient(this.client);
    }
  }

  act(rng: Rng, d: SimDaemon, chk: Checker): void {
    const page = this.page();
    if (page === null || this.state === "down") return;
    if (this.muteSteps > 0) this.muteSteps--;
    if (this.state === "reconnecting") {
      if (page.get(Field.CONNECTION) === CONNECTED) this.reset(d);
      else return;
    }
    if (this.state === "faulted") {
      if (rng.chance(0.3)) this.reconnect(page, chk);
      return;
    }
    const r = rng.next() % 1000;
    if (r < 4) return this.fault(page, chk, "ring-index");
    if (r < 8) return this.fault(page, chk, "oversized");
    if (r < 12) return this.reconnect(page, chk);
    if (r < 20) this.muteSteps = 1 + rng.int(20); // stops reading its replies for a while
    const n = rng.int(3);
    for (let i = 0; i < n && this.outstanding.length < 6 && !this.txStarting; i++) {
      const m = this.nextRequest(rng, "data", ["p", "q", "r"], ["data", "data/p", "data/q"]);
      this.queue(encode(m.type, m.reqId, m.txId, m.payload));
    }
    this.push(page);
  }

  private queue(b: Uint8Array): void {
    const all = new Uint8Array(this.backlog.length + b.length);
    all.set(this.backlog);
    all.set(b, this.backlog.length);
    this.backlog = all;
  }

  /** Write as much of the backlog as the ring takes, and notify. */
  private push(page: RingPage): void {
    if (this.backlog.length > 0) {
      const n = ringProduce(page, REQUESTS, this.backlog);
      if (n > 0) this.backlog = this.backlog.slice(n);
    }
    this.hv.kick(this.domid);
  }

  private fault(page: RingPage, chk: Checker, how: "ring-index" | "oversized"): void {
    this.stats.faults++;
    if (how === "ring-index") page.set(Field.REQ_PROD, page.get(Field.REQ_CONS) + 3000);
    else {
      const h = encode(MsgType.WRITE, this.nextReq++, 0, "");
      new DataView(h.buffer).setUint32(12, 5000, true);
      ringProduce(page, REQUESTS, h.subarray(0, HEADER_SIZE));
    }
    this.state = "faulted";
    this.watches.clear(); // the daemon drops them with the connection
    this.hv.kick(this.domid);
    chk.forgetClient(this.client);
  }

  private reconnect(page: RingPage, chk: Checker): void {
    this.stats.reconnects++;
    page.set(Field.CONNECTION, RECONNECT);
    this.state = "reconnecting";
    this.watches.clear();
    this.hv.kick(this.domid);
    chk.forgetClient(this.client);
  }

  /** The daemon restarted: what it restored. Acknowledged watches must be back; pending ones may be. */
  /**
   * `mayBeStale`: the process may have died before the records of its last turn were durable (it died
   * mid-turn, or stopped on a failed sync, or group commit had not synced them yet).
   */
  restarted(d: SimDaemon, chk: Checker, recordsFailed: boolean, mayBeStale: boolean): void {
    if (this.state === "down") return;
    const info = d.mgr.ringInfo(this.domid);
    if (info === null) {
      chk.fail(`${this.name}: introduced before the crash, not after the restart`);
      this.state = "down";
      return;
    }
    this.client = info.clientId;
    const page = this.page();
    if (this.state === "reconnecting" && page !== null && page.get(Field.CONNECTION) === CONNECTED) {
      const back = d.core.watches.trie.watchesOf(info.clientId).length;
      if (back > 0 && !mayBeStale && !recordsFailed) {
        chk.fail(`${this.name}: ${back} watches dropped by its reconnection came back`);
      }
      // The old process reset the connection (and said so in the page) but may have died before the
      // domain records without the old watches were durable: they can come back on this connection
      // (docs/simulation.md, known limits). The guest takes what it is given.
      this.reset(d);
      this.stats.watchesBack += back;
    }
    this.restartedSince = true;
    // An UNWATCH sent but not answered may have taken effect: that watch may be gone.
    const unwatching = new Set(
      this.outstanding.filter((o) => o.type === MsgType.UNWATCH).map((o) =>
        o.payload.split("\0").slice(0, 2).join("\0")
      ),
    );
    this.forget();
    const restored = d.core.watches.trie.watchesOf(info.clientId);
    const have = new Set(
      restored.map((w) => `${w.path.replace(`/local/domain/${this.domid}/`, "")}\0${w.token}`),
    );
    for (const w of this.watches) {
      // Lost only if storing the domain records failed (logged; docs/simulation.md, known limits).
      if (!have.has(w) && !recordsFailed && !unwatching.has(w)) {
        chk.fail(`${this.name}: acknowledged watch ${JSON.stringify(w)} lost in the restart`);
      }
    }
    this.watches.clear();
    // A guest whose connection failed (or is being reset) owns none of them: the restored daemon will
    // find the same ring and fail or reset it too.
    if (this.state !== "up") return;
    for (const w of restored) {
      const rel = w.relativeBase !== null ? w.path.slice(w.relativeBase.length) : w.path;
      this.watches.add(`${rel}\0${w.token}`);
      chk.adoptWatch(info.clientId, w.path, w.token, w.relativeBase, rel);
    }
  }
}
