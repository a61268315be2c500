/**
 * The domain manager in-process: a Core, a DomainManager and an in-memory XenPlatform whose "guests"
 * are GuestClients on plain ArrayBuffer ring pages. A guest's wait() runs one daemon turn, so a
 * `await g.write(...)` drives the whole stack synchronously — no processes, no sockets, no timing.
 * The multi-process version of the same stack is tests/xen/ (the simulated Xen).
 */
import { Core } from "../../src/dispatch/core.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import type { Policy } from "../../src/policy/policy.ts";
import { DomainManager, type DomainManagerOptions, type EventLoop } from "../../src/domains/manager.ts";
import type { DomainState, MappedRing, XenPlatform } from "../../src/xen/platform.ts";
import { PAGE_SIZE, RingPage } from "../../src/xen/ring.ts";
import { GuestClient, type GuestTransport } from "../../src/client/guest.ts";
import { type CollectSink, dom0, type TestClient } from "../helpers/core.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { MsgType } from "../../src/protocol/wire.ts";

interface FakeDomain {
  state: DomainState;
  page: Uint8Array;
  port: number;
  mapped: number;
}

/** Xen in memory: domains are records, events a queue of ports, guests share the ring bytes. */
export class FakeXen implements XenPlatform {
  readonly name = "fake";
  readonly eventFd = -1;
  readonly domains = new Map<number, FakeDomain>();
  private pending: number[] = [];
  private nextPort = 100;
  private readonly bindings = new Map<number, { domid: number; remote: number } | "virq">();
  private virq = -1;
  /** Local ports notified (the guest side does not need them: its client polls its ring). */
  readonly notified: number[] = [];
  private uid = 0;

  create(domid: number): FakeDomain {
    if (this.domains.has(domid)) throw new Error(`domain ${domid} exists`);
    const d: FakeDomain = {
      state: { dying: false, shutdown: false, uniqueId: `u${this.uid++}` },
      page: new Uint8Array(PAGE_SIZE),
      port: 7,
      mapped: 0,
    };
    this.domains.set(domid, d);
    return d;
  }

  /** What Xen does when a domain dies: it is gone, and VIRQ_DOM_EXC fires. */
  destroy(domid: number): void {
    this.domains.delete(domid);
    this.raiseDomExc();
  }

  setState(domid: number, s: Partial<DomainState>): void {
    const d = this.domains.get(domid)!;
    d.state = { ...d.state, ...s };
    this.raiseDomExc();
  }

  raiseDomExc(): void {
    this.pending.push(this.virq);
  }

  /** The guest kicked its channel. */
  kick(domid: number): void {
    for (const [port, b] of this.bindings) {
      if (b !== "virq" && b.domid === domid) this.pending.push(port);
    }
  }

  pendingPorts(): number[] {
    const p = [...new Set(this.pending)];
    this.pending = [];
    return p;
  }
  unmask(): void {}
  notify(port: number): void {
    this.notified.push(port);
  }
  bindInterdomain(domid: number, remotePort: number): number {
    const d = this.domains.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `no domain ${domid}`);
    if (remotePort !== d.port) throw new XsError("EINVAL", `bad port ${remotePort}`);
    const port = this.nextPort++;
    this.bindings.set(port, { domid, remote: remotePort });
    return port;
  }
  unbind(port: number): void {
    this.bindings.delete(port);
  }
  bindDomExc(): number {
    this.virq = this.nextPort++;
    this.bindings.set(this.virq, "virq");
    return this.virq;
  }
  mapGuestRing(domid: number): MappedRing {
    const d = this.domains.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `no domain ${domid}`);
    d.mapped++;
    return { page: d.page, unmap: () => void d.mapped-- };
  }
  dom0Ring(): null {
    return null;
  }
  domainState(domid: number): DomainState | null {
    return this.domains.get(domid)?.state ?? null;
  }
  close(): void {}
  get boundPorts(): number {
    return [...this.bindings.values()].filter((b) => b !== "virq").length;
  }
}

export interface Rig {
  readonly core: Core;
  readonly xen: FakeXen;
  /** The manager guests' waits run (replace it to simulate a restart). */
  mgr: DomainManager;
  readonly dom0: TestClient & { sink: CollectSink };
  /**
   * Create a domain in the fake Xen (unless `create` already did), introduce it from dom0, and return a
   * client running as it.
   */
  guest(domid: number): GuestClient;
  /** Create a domain in the fake Xen (as a toolstack does before giving it nodes); no-op if it exists. */
  create(domid: number): void;
  /** A client on an existing domain's ring (no INTRODUCE). */
  attach(domid: number): GuestClient;
  /** Run a daemon turn, then take every event now in `g`'s ring. */
  events(g: GuestClient): Promise<Array<{ path: string; token: string }>>;
}

/**
 * `loop`: the manager's event loop (group commit tags and durable numbers); null: none. `policy`: the
 * core's (default legacy).
 */
export function rig(
  opts: DomainManagerOptions = {},
  loop: EventLoop | null = null,
  policy: Policy = new LegacyPolicy(),
): Rig {
  const core = new Core({ policy });
  const xen = new FakeXen();
  const d0 = dom0(core);
  const r = { mgr: new DomainManager(core, xen, loop, opts) } as Rig;
  core.dispatcher.domainHandler = r.mgr;
  const attach = (domid: number): GuestClient => {
    const page = new RingPage(xen.domains.get(domid)!.page);
    const t: GuestTransport = {
      domid,
      page,
      notify: () => xen.kick(domid),
      wait: async () => {
        r.mgr.pump();
        await Promise.resolve();
      },
      close: () => {},
    };
    return new GuestClient(t, { timeoutMs: 2000 });
  };
  return Object.assign(r, {
    events: (g: GuestClient) => {
      r.mgr.pump();
      return g.eventsWithin(0);
    },
    core,
    xen,
    dom0: d0,
    attach,
    create(domid: number) {
      if (!xen.domains.has(domid)) xen.create(domid);
    },
    guest(domid: number) {
      if (!xen.domains.has(domid)) xen.create(domid);
      const g = attach(domid);
      const reply = request(core, d0, MsgType.INTRODUCE, `${domid}\0${4096 + domid}\0${7}\0`);
      if (reply !== "OK\0") throw new Error(`INTRODUCE ${domid} failed: ${reply}`);
      return g;
    },
  });
}

/** Register a watch for a test client (the reply and the initial event are discarded). */
export function watch(core: Core, c: TestClient, path: string, token: string, depth?: number): void {
  const n = c.sink.sent.length;
  const payload = `${path}\0${token}\0${depth === undefined ? "" : `${depth}\0`}`;
  core.message(c.client, { type: MsgType.WATCH, reqId: 1, txId: 0, payload });
  const reply = c.sink.sent[n];
  if (reply?.type !== MsgType.WATCH) throw new Error(`WATCH ${path} failed: ${JSON.stringify(reply)}`);
  c.sink.sent.length = n;
}

/**
 * Send a request from a test client and return its reply payload ("ERRNO" for an ERROR reply); watch
 * events it causes stay in the client's sink (domain requests fire special watches before replying).
 */
export function request(core: Core, c: TestClient, type: number, payload: string): string {
  const n = c.sink.sent.length;
  core.message(c.client, { type, reqId: 4242, txId: 0, payload });
  const i = c.sink.sent.findIndex((m, j) => j >= n && m.type !== MsgType.WATCH_EVENT);
  if (i < 0) throw new Error(`no reply to type ${type}`);
  const [reply] = c.sink.sent.splice(i, 1);
  return reply.type === MsgType.ERROR ? reply.payload.replace(/\0$/, "") : reply.payload;
}
