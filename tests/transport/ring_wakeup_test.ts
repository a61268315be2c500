/**
 * Lost wake-ups on a xenstore ring, replayed from a seed (docs/domains.md, "The ring": signalling).
 *
 * The daemon (the real Core, loop and ring server over the in-memory Xen of tests/domains/harness.ts)
 * and one guest share a ring page, and each acts only when the other signals it: no polling, as a Linux
 * guest's xenbus thread sleeps until its event channel fires and the daemon's loop sleeps until its
 * event channel (or its idle timeout, which only looks at parked rings again) wakes it. A seeded
 * scheduler interleaves the two at the loads and stores of the ring's fields: before any of the
 * daemon's, a guest that has been signalled (or has not gone to sleep yet) may run — read replies,
 * write requests, signal; before any of the guest's, a daemon with work may run a loop turn. The
 * seed also picks how often either preempts the other, how late a signalled guest wakes, and whether
 * a running guest looks at the ring once or again and again during a daemon turn. When neither side
 * has anything to do and requests are still unanswered, a wake-up was lost: the run fails with its
 * seed and the ring's state, and the same seed replays the same interleaving
 * (`RING_WAKEUP_SEED=N bin/deno test --allow-all tests/transport/ring_wakeup_test.ts`; a wider
 * sweep: `RING_WAKEUP_SEEDS=2000`).
 *
 * Two guests: the project's client (GuestClient, which tests/xen/hostile_test.ts drives over the
 * simulated Xen: 100 pipelined WATCHes, then a reconnection or RESET_WATCHES, in rounds) and a model
 * of the signalling rules of Linux's xenbus driver (drivers/xen/xenbus/xenbus_comms.c): a request is
 * written in pieces — its header, then each part of its payload — each published on its own and
 * signalled only if the daemon had consumed everything before it; reading signals only when the ring
 * had been full; the thread looks at the ring again before it sleeps.
 */
import assert from "../helpers/assert.ts";
import { preemptible } from "../helpers/preempt.ts";
import { Rng } from "../helpers/rng.ts";
import { type Rig, rig } from "../domains/harness.ts";
import { GuestClient, type GuestTransport } from "../../src/client/guest.ts";
import { HEADER_SIZE, MsgType } from "../../src/protocol/wire.ts";
import type { RingConnection } from "../../src/transport/ring_connection.ts";
import {
  encode,
  Field,
  isRingFault,
  MessageReader,
  REQUESTS,
  RESPONSES,
  RING_SIZE,
  RingPage,
  ringProduce,
} from "../../src/xen/ring.ts";

const DOMID = 5;
/** The guest's end of its xenstore channel in the in-memory Xen (FakeXen's port). */
const GUEST_PORT = 7;
/** Daemon turns with nothing to do after which the run is declared stalled (parked rings need one). */
const IDLE_TURNS = 3;
/** Seeds each sweep runs in CI. */
const SWEEP_SEEDS = 400;

/** Nobody is signalled, nothing will run, and requests are unanswered. */
class LostWakeup extends Error {
  override name = "LostWakeup";
}

interface WorldStats {
  turns: number;
  /** The guest ran inside a daemon turn (between two of the daemon's index accesses). */
  guestInsideDaemon: number;
  /** A daemon turn ran between two of the guest's index accesses. */
  daemonInsideGuest: number;
  /** The guest was signalled but the daemon ran on before it woke. */
  lateWakes: number;
}

/**
 * One daemon, one guest, one ring, and who runs when. Both sides are synchronous code, so one runs
 * inside the other: at a preemption point of the side that is running, the other runs a whole step
 * (the guest: what it does when it wakes; the daemon: a loop turn), during which the first side's
 * preemption points do nothing.
 */
class World {
  /** A step is running inside the other side's (its own preemption points do nothing). */
  private nested = false;
  /** Daemon notifications the guest has taken (FakeXen.notified is the channel's history). */
  private taken = 0;
  /** The guest woke inside a daemon turn since it last went to sleep. */
  private woke = false;
  /** The guest is running, so it may look at the ring during this daemon turn (not only when signalled). */
  private awake = false;
  /** The daemon's last turn left rings with work (its loop's next wait does not sleep). */
  private busy = false;
  /**
   * What the guest does when it runs inside a daemon turn: read replies, write requests, signal (null:
   * it is not looking at its ring, e.g. while waiting for a reconnection to be acknowledged).
   */
  onGuestWake: (() => void) | null = null;
  readonly stats: WorldStats = { turns: 0, guestInsideDaemon: 0, daemonInsideGuest: 0, lateWakes: 0 };
  conn: RingConnection | null = null;

  constructor(
    readonly r: Rig,
    private readonly rng: Rng,
    /** Chance, at each preemption point of one side, that the other runs first. */
    private readonly preempt: number,
    /** Chance that a signalled guest wakes only after the daemon's next turn has begun. */
    private readonly late: number,
    /**
     * A running guest looks at the ring again and again during a daemon turn (as GuestClient's reply
     * loop does while replies keep coming), not once.
     */
    private readonly keepsReading: boolean,
  ) {}

  get guestSignalled(): boolean {
    return this.r.xen.notified.length > this.taken;
  }

  private get daemonHasWork(): boolean {
    return this.r.xen.hasPending || this.busy;
  }

  private turn(): void {
    const before = this.r.rings.stats.budgetExhausted;
    this.stats.turns++;
    this.r.turn();
    this.busy = this.r.rings.stats.budgetExhausted > before;
  }

  /** The daemon is about to load or store a field of the ring: a running or signalled guest may go first. */
  readonly daemonAccess = (): void => {
    if (this.nested || !(this.guestSignalled || this.awake) || !this.rng.chance(this.preempt)) return;
    this.nested = true;
    try {
      this.taken = this.r.xen.notified.length;
      this.woke = true;
      if (!this.keepsReading) this.awake = false;
      this.stats.guestInsideDaemon++;
      this.onGuestWake?.();
    } finally {
      this.nested = false;
    }
  };

  /**
   * The guest is about to load or store a field of the ring: a daemon with work may run a turn first.
   * `stepStart`: nothing of the guest's step is done yet, so that turn may instead run with the whole
   * step inside it (the guest runs its step there, between two of the daemon's accesses, and then
   * once more after the turn, which a guest may always do).
   */
  readonly guestAccess = (stepStart: boolean): void => {
    if (this.nested || !this.daemonHasWork || !this.rng.chance(this.preempt)) return;
    if (stepStart && this.onGuestWake !== null && this.rng.chance(0.5)) {
      this.awake = true;
      try {
        this.turn();
      } finally {
        this.awake = false;
      }
      return;
    }
    this.nested = true;
    try {
      this.stats.daemonInsideGuest++;
      this.turn();
    } finally {
      this.nested = false;
    }
  };

  /**
   * The guest sleeps until it is signalled; the daemon runs meanwhile. Throws LostWakeup if nobody will.
   * A daemon that has work when the guest goes to sleep (the guest's own signal, say) runs while the
   * guest is still finishing its loop: its last look at the ring may fall inside that turn.
   */
  sleep(): void {
    this.awake = this.daemonHasWork;
    for (let idle = 0;; this.awake = false) {
      if (this.woke) {
        this.woke = false;
        return;
      }
      if (this.guestSignalled) {
        if (!this.daemonHasWork || !this.rng.chance(this.late)) {
          this.taken = this.r.xen.notified.length;
          return;
        }
        this.stats.lateWakes++;
      }
      const notified = this.r.xen.notified.length;
      this.turn();
      if (this.daemonHasWork || this.r.xen.notified.length > notified || this.woke) idle = 0;
      else if (++idle >= IDLE_TURNS) throw new LostWakeup(this.describe());
    }
  }

  /** The ring as both sides left it (read without preemption). */
  describe(): string {
    const conn = this.conn!;
    const p = new RingPage(conn.page.bytes);
    const reqUnread = (p.get(Field.REQ_PROD) - p.get(Field.REQ_CONS)) >>> 0;
    const rspUnread = (p.get(Field.RSP_PROD) - p.get(Field.RSP_CONS)) >>> 0;
    return `nobody is signalled and nothing will run: the daemon holds ${conn.queuedBytes} bytes of ` +
      `output with ${RING_SIZE - rspUnread} bytes free in the response ring; ${reqUnread} request ` +
      `bytes are unread in the request ring (daemon: ${conn.stats.requests} requests read` +
      (conn.hasInput && reqUnread === 0 ? ", part of one held)" : ")");
  }
}

interface Run {
  readonly seed: number;
  readonly config: string;
  readonly failure: string | null;
  readonly stats: WorldStats;
  readonly requests: number;
}

/** The world for `seed`: a daemon, domain DOMID with a home it owns, its ring preemptible on both sides. */
function world(
  seed: number,
  guest: "client" | "xenbus",
): { w: World; rng: Rng; page: RingPage; config: string } {
  const rng = new Rng(seed);
  const preempt = rng.pick([0.02, 0.1, 0.3, 0.6]);
  const late = rng.pick([0, 0.3, 0.7]);
  const keepsReading = rng.chance(0.5);
  const r = rig();
  r.create(DOMID);
  for (
    const [type, payload] of [
      [MsgType.MKDIR, `/local/domain/${DOMID}\0`],
      [MsgType.SET_PERMS, `/local/domain/${DOMID}\0n${DOMID}\0`],
    ] as const
  ) {
    const reply = r.dom0.tryRequest(type, payload);
    if (reply !== "OK") throw new Error(`dom0 ${type}: ${reply}`);
  }
  const w = new World(r, rng, preempt, late, keepsReading);
  const page = new RingPage(r.xen.domains.get(DOMID)!.page);
  // RingLink.pump begins by reading the connection state: the start of the client's step. (The
  // xenbus model marks the start of its runs itself.)
  preemptible(page, (f) => w.guestAccess(f === Field.CONNECTION));
  return {
    w,
    rng,
    page,
    config: `${guest}, preempt ${preempt}, late wake ${late}${keepsReading ? ", keeps reading" : ""}`,
  };
}

/** Introduce the domain and make the daemon's side of its ring preemptible. */
function introduce(w: World): void {
  const reply = w.r.dom0.tryRequest(MsgType.INTRODUCE, `${DOMID}\0${4096 + DOMID}\0${GUEST_PORT}\0`);
  if (reply !== "OK") throw new Error(`INTRODUCE: ${reply}`);
  const conn = [...w.r.rings.connections()].find((c) => c.domid === DOMID);
  if (conn === undefined) throw new Error("no ring connection after INTRODUCE");
  preemptible(conn.page, w.daemonAccess);
  w.conn = conn;
}

/** A request of the workload: watches (a reply and an event each), writes of 0–3 KiB, reads of them. */
function request(rng: Rng, round: number, i: number): readonly [number, string] {
  switch (rng.int(4)) {
    case 0:
    case 1:
      return [MsgType.WATCH, `data/w${i}\0r${round}\0`];
    case 2:
      return [MsgType.WRITE, `data/v${rng.int(8)}\0${"x".repeat(rng.int(3000))}`];
    default:
      return [MsgType.READ, `data/v${rng.int(8)}\0`];
  }
}

/** The project's client, as tests/xen/hostile_test.ts drives it: pipelined rounds, reconnections. */
async function clientRun(seed: number, opts: { signals?: number } = {}): Promise<Run> {
  const { w, rng, page, config } = world(seed, "client");
  let signals = opts.signals ?? Infinity; // a broken guest: its signals after the first few are lost
  const transport: GuestTransport = {
    domid: DOMID,
    page,
    notify: () => {
      if (signals-- > 0) w.r.xen.kick(DOMID);
    },
    wait: () => {
      w.sleep(); // a lost wake-up throws here, out of the client's reply()
      return Promise.resolve();
    },
    close: () => {},
  };
  const g = new GuestClient(transport, { timeoutMs: 600_000 });
  introduce(w);
  const pump = () => void g.pump(); // what the client's reply loop does first when it wakes
  w.onGuestWake = pump;
  const rounds = 2 + rng.int(3);
  let requests = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const sent: Array<readonly [number, number]> = [];
      const k = 10 + rng.int(91);
      for (let i = 0; i < k; i++) {
        const [type, payload] = request(rng, round, i);
        sent.push([g.send(type, payload), type]);
      }
      for (const [id, type] of sent) {
        const m = await g.reply(id);
        if (m.type !== type && m.type !== MsgType.ERROR) throw new Error(`reply ${id}: type ${m.type}`);
      }
      requests += k;
      if (round % 2 === 0) {
        w.onGuestWake = null; // waiting for the daemon to acknowledge, not reading the ring
        await g.reconnect();
        w.onGuestWake = pump;
      } else {
        await g.resetWatches();
      }
      g.events.length = 0;
    }
    return { seed, config, failure: null, stats: w.stats, requests };
  } catch (e) {
    if (!(e instanceof LostWakeup)) throw e;
    return { seed, config, failure: e.message, stats: w.stats, requests };
  }
}

/**
 * The signalling of Linux's xenbus driver (xenbus_comms.c), on this project's ring codec: the xenbus
 * thread reads one message at a time and signals after reading only if the ring had been full
 * (MessageReader's rule is xb_read's); it writes a request piece by piece (header, then each
 * NUL-terminated part of the payload, as its iovecs), each chunk published on its own and signalled
 * only if the daemon had consumed everything written before it; it looks at the ring again before
 * it sleeps.
 */
class XenbusModel {
  private readonly reader = new MessageReader();
  private readonly pieces: Uint8Array[] = [];
  private offset = 0;
  private readonly unanswered = new Set<number>();

  constructor(
    private readonly page: RingPage,
    private readonly signal: () => void,
    /** The world's preemption point at the start of a run, where nothing of it is done yet. */
    private readonly stepStart: () => void,
  ) {}

  get done(): boolean {
    return this.unanswered.size === 0;
  }

  submit(type: number, reqId: number, payload: string): void {
    const bytes = encode(type, reqId, 0, payload);
    this.pieces.push(bytes.subarray(0, HEADER_SIZE));
    let at = HEADER_SIZE;
    while (at < bytes.length) {
      const nul = bytes.indexOf(0, at);
      const end = nul < 0 ? bytes.length : nul + 1;
      this.pieces.push(bytes.subarray(at, end));
      at = end;
    }
    this.unanswered.add(reqId);
  }

  /** The thread's wait condition: a reply to read, or a piece to write and room for it. */
  private get hasWork(): boolean {
    const p = this.page;
    if (p.get(Field.RSP_PROD) !== p.get(Field.RSP_CONS)) return true;
    return this.pieces.length > 0 && ((p.get(Field.REQ_PROD) - p.get(Field.REQ_CONS)) >>> 0) < RING_SIZE;
  }

  /** The thread runs until its wait condition is false. */
  run(): void {
    this.stepStart();
    do {
      this.readOne();
      this.writeSome();
    } while (this.hasWork);
  }

  private readOne(): void {
    const m = this.reader.read(this.page, RESPONSES);
    if (this.reader.takeFreedFull()) this.signal();
    if (m === null) return;
    if (isRingFault(m)) throw new Error(`response ring: ${m}`);
    if (m.type !== MsgType.WATCH_EVENT) this.unanswered.delete(m.reqId);
  }

  /** xb_write of the current piece: chunks up to the ring's end, as far as there is room. */
  private writeSome(): void {
    const p = this.page;
    while (this.pieces.length > 0) {
      const piece = this.pieces[0];
      const cons = p.get(Field.REQ_CONS);
      const prod = p.get(Field.REQ_PROD);
      const used = (prod - cons) >>> 0;
      if (used >= RING_SIZE) return;
      const n = Math.min(piece.length - this.offset, RING_SIZE - used, RING_SIZE - (prod & (RING_SIZE - 1)));
      ringProduce(p, REQUESTS, piece.subarray(this.offset, this.offset + n));
      this.offset += n;
      // "if (prod <= intf->req_cons)": the daemon had consumed everything before this chunk.
      if (((p.get(Field.REQ_CONS) - prod) >>> 0) <= n) this.signal();
      if (this.offset === piece.length) {
        this.pieces.shift();
        this.offset = 0;
      }
    }
  }
}

/** The Linux-like guest: rounds of pipelined requests (several threads' worth), RESET_WATCHES between. */
function xenbusRun(seed: number): Run {
  const { w, rng, page, config } = world(seed, "xenbus");
  const xb = new XenbusModel(page, () => w.r.xen.kick(DOMID), () => w.guestAccess(true));
  introduce(w);
  w.onGuestWake = () => xb.run();
  const rounds = 2 + rng.int(3);
  let reqId = 1;
  let requests = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const k = 10 + rng.int(91);
      for (let i = 0; i < k; i++) xb.submit(...withId(request(rng, round, i), reqId++));
      xb.submit(MsgType.RESET_WATCHES, reqId++, "");
      for (xb.run(); !xb.done; xb.run()) w.sleep();
      requests += k + 1;
    }
    return { seed, config, failure: null, stats: w.stats, requests };
  } catch (e) {
    if (!(e instanceof LostWakeup)) throw e;
    return { seed, config, failure: e.message, stats: w.stats, requests };
  }
}

function withId([type, payload]: readonly [number, string], reqId: number): [number, number, string] {
  return [type, reqId, payload];
}

function explain(r: Run): string {
  return `seed ${r.seed} (${r.config}): ${r.failure}\n  replay: RING_WAKEUP_SEED=${r.seed} ` +
    `bin/deno test --allow-all tests/transport/ring_wakeup_test.ts`;
}

const replaySeed = Deno.env.get("RING_WAKEUP_SEED");
const seeds = replaySeed !== undefined
  ? [Number(replaySeed)]
  : Array.from({ length: Number(Deno.env.get("RING_WAKEUP_SEEDS") ?? SWEEP_SEEDS) }, (_, i) => i + 1);

async function sweep(run: (seed: number) => Run | Promise<Run>): Promise<void> {
  const failed: string[] = [];
  const totals: WorldStats = { turns: 0, guestInsideDaemon: 0, daemonInsideGuest: 0, lateWakes: 0 };
  let requests = 0;
  for (const seed of seeds) {
    const r = await run(seed);
    if (r.failure !== null) failed.push(explain(r));
    for (const k of Object.keys(totals) as Array<keyof WorldStats>) totals[k] += r.stats[k];
    requests += r.requests;
  }
  assert.equal(
    failed.length,
    0,
    `${failed.length} of ${seeds.length} seeds lost a wake-up:\n${failed.slice(0, 3).join("\n")}`,
  );
  // The runs interleaved the two sides, both ways, and got through their requests.
  if (replaySeed === undefined) {
    for (const k of ["guestInsideDaemon", "daemonInsideGuest", "lateWakes"] as const) {
      assert.ok(totals[k] > 0, `no ${k}: ${JSON.stringify(totals)}`);
    }
    assert.ok(requests > seeds.length * 20, `${requests} requests`);
  }
}

Deno.test(`ring wake-ups: the project's client, pipelined rounds and reconnections (${seeds.length} seeds)`, async () => {
  await sweep((seed) => clientRun(seed));
});

Deno.test(`ring wake-ups: Linux's xenbus signalling rules, pieces published one by one (${seeds.length} seeds)`, async () => {
  await sweep(xenbusRun);
});

/**
 * Seeds that lost a wake-up before the fix (src/xen/ring.ts). A seed replays its interleaving only on
 * the code it ran against (the scheduler draws at every index access, and the fix changes them), so
 * these show the fix on the runs that failed; the sweeps and the codec's properties
 * (tests/xen/ring_test.ts, which fail without either half of the fix) cover the rest.
 *  - 221 (client): the guest read the response ring while the daemon was writing to it (after the
 *    daemon had read the consumer index, before it published the producer index): the daemon took
 *    the ring for full and waited for a signal; the guest, which had seen it not full, sent none.
 *    398 bytes of replies stayed queued with the ring empty — tests/xen/hostile_test.ts's stall.
 *  - 33 (xenbus): the daemon took the first pieces of a request off the ring and returned without
 *    looking again; the guest published the last piece while the daemon's consumer index was still
 *    behind, so by Linux's rule it did not signal. The request ring filled up, unread.
 */
const REGRESSIONS: ReadonlyArray<readonly [number, "client" | "xenbus", string]> = [
  [221, "client", "replies held while the ring had room"],
  [33, "xenbus", "a request's last piece left unread"],
];

for (const [seed, guest, what] of REGRESSIONS) {
  Deno.test(`ring wake-ups: regression seed ${seed} (${guest}): ${what}`, async () => {
    const r = guest === "client" ? await clientRun(seed) : xenbusRun(seed);
    assert.equal(r.failure, null, explain(r));
  });
}

Deno.test("ring wake-ups: the check can fail: a guest whose signals are lost is reported, with its seed", async () => {
  const r = await clientRun(1, { signals: 3 });
  assert.ok(r.failure !== null && /nobody is signalled/.test(r.failure), `not detected: ${r.failure}`);
  assert.ok(/request bytes are unread|bytes of output/.test(explain(r)));
});
