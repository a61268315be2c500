/**
 * A real dxenstored process on a simulated Xen (`--xen=sim:<dir>`), with dom0's tools on its socket
 * and guest domains running in this (separate) process over mmapped ring pages and FIFO event
 * channels:
 *
 *   await using x = await startSimXen();
 *   const g = await x.introduce(5);          // create domain 5, its toolstack nodes, INTRODUCE it
 *   await g.write("data/x", "1");            // over the ring
 *   await x.dom0.request(XS.READ, "/local/domain/5/data/x\0");
 */
import { type Daemon, startDaemon } from "../helpers/daemon.ts";
import { errnoOf, type Reply, WireClient, XS } from "../helpers/wire.ts";
import { GuestClient } from "../../src/client/guest.ts";
import { createDom0Ring, createDomain, type SimDomain } from "../../src/xen/sim/control.ts";
import { SimGuest } from "../../src/xen/sim/guest.ts";

let sentinels = 0;

/**
 * Assert that no watch event is queued for `g` before one we cause now: register a watch on a fresh
 * path and require its registration event to be the next event. Everything the daemon sent earlier
 * (for requests already answered) is ahead of it in the ring, so this needs no waiting period.
 */
export async function assertNoPendingEvents(g: GuestClient, what: string): Promise<void> {
  const path = `/sentinel-${sentinels++}`;
  await g.watch(path, "sentinel");
  const e = await g.nextEvent();
  if (e === null || e.path !== path || e.token !== "sentinel") {
    throw new Error(`${what}: unexpected event ${JSON.stringify(e)} (queue: ${JSON.stringify(g.events)})`);
  }
  await g.unwatch(path, "sentinel");
}

export class SimXen {
  private readonly guests: GuestClient[] = [];
  private readonly sockets: WireClient[] = [];
  /** Watch events dom0's connection received while waiting for replies. */
  readonly dom0Events: Array<{ path: string; token: string }> = [];

  constructor(readonly daemon: Daemon, readonly dir: string, readonly dom0: WireClient) {
    this.sockets.push(dom0);
  }

  /** Another dom0 socket connection. */
  async socket(): Promise<WireClient> {
    const c = await WireClient.connect(this.daemon.socket);
    this.sockets.push(c);
    return c;
  }

  /** A request from dom0: the reply (events that arrive first are kept in dom0Events). */
  async call(type: number, payload: string, txId = 0): Promise<Reply> {
    const reqId = await this.dom0.send(type, payload, { txId });
    for (;;) {
      const r = await this.dom0.recv(10_000);
      if (r.type === XS.WATCH_EVENT) {
        const [path, token] = r.payload.split("\0");
        this.dom0Events.push({ path, token });
        continue;
      }
      if (r.reqId !== reqId) throw new Error(`reply ${r.reqId} to request ${reqId}`);
      return r;
    }
  }

  /** dom0 request that must succeed; returns the payload. */
  async ok(type: number, payload: string, txId = 0): Promise<string> {
    const r = await this.call(type, payload, txId);
    if (r.type !== type) throw new Error(`type ${type} ${JSON.stringify(payload)}: ${errnoOf(r)}`);
    return r.payload;
  }

  /** dom0 request that must fail; returns the errno. */
  async fails(type: number, payload: string): Promise<string> {
    const r = await this.call(type, payload);
    const e = errnoOf(r);
    if (e === null) throw new Error(`type ${type} ${JSON.stringify(payload)} succeeded: ${r.payload}`);
    return e;
  }

  /** The next watch event on dom0's connection (already received ones first). */
  async dom0Event(timeoutMs = 10_000): Promise<{ path: string; token: string }> {
    const e = this.dom0Events.shift();
    if (e !== undefined) return e;
    const r = await this.dom0.recv(timeoutMs);
    if (r.type !== XS.WATCH_EVENT) throw new Error(`expected a watch event, got type ${r.type}`);
    const [path, token] = r.payload.split("\0");
    return { path, token };
  }

  /** What xl does before INTRODUCE: the domain's home, readable by it, with data/ it owns. */
  async toolstackNodes(domid: number): Promise<void> {
    const home = `/local/domain/${domid}`;
    await this.ok(XS.MKDIR, `${home}\0`);
    await this.ok(XS.SET_PERMS, `${home}\0n0\0r${domid}\0`);
    await this.ok(XS.WRITE, `${home}/name\0guest${domid}`);
    await this.ok(XS.WRITE, `${home}/domid\0${domid}`);
    await this.ok(XS.MKDIR, `${home}/data\0`);
    await this.ok(XS.SET_PERMS, `${home}/data\0n${domid}\0`);
  }

  /** Create domain `domid` in the simulated Xen (nothing else). */
  create(domid: number): SimDomain {
    return createDomain(this.dir, domid);
  }

  /** A client running as an existing domain (this process maps its ring). */
  attach(domid: number): GuestClient {
    const g = new GuestClient(new SimGuest(this.dir, domid), { timeoutMs: 10_000 });
    this.guests.push(g);
    return g;
  }

  /** Create, populate and INTRODUCE domain `domid`; returns a client running as it. */
  async introduce(domid: number, opts: { nodes?: boolean } = {}): Promise<GuestClient> {
    const d = this.create(domid);
    if (opts.nodes !== false) await this.toolstackNodes(domid);
    const g = this.attach(domid);
    await this.ok(XS.INTRODUCE, `${d.domid}\0${d.gfn}\0${d.port}\0`);
    return g;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const g of this.guests) {
      try {
        g.close();
      } catch { /* already closed */ }
    }
    for (const s of this.sockets) s.close();
    try {
      await this.daemon.stop();
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * Start a daemon on a fresh simulated Xen. Everything is removed on dispose, even on failure.
 * `dom0Ring`: dom0 has a ring too (served as a privileged ring connection; `x.attach(0)` uses it).
 */
export async function startSimXen(
  extraArgs: readonly string[] = [],
  opts: { dom0Ring?: boolean; productionV8Flags?: boolean } = {},
): Promise<SimXen> {
  const dir = await Deno.makeTempDir({ prefix: "dxs-xen-" });
  let daemon: Daemon;
  try {
    if (opts.dom0Ring === true) createDom0Ring(dir);
    daemon = await startDaemon({
      args: [`--xen=sim:${dir}`, ...extraArgs],
      productionV8Flags: opts.productionV8Flags,
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  try {
    return new SimXen(daemon, dir, await WireClient.connect(daemon.socket));
  } catch (e) {
    await daemon.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}
