/**
 * Guest domains in-process: a Core (with its domain registry), the loop and the ring server over an
 * in-memory XenPlatform whose "guests" are GuestClients on plain ArrayBuffer ring pages. A guest's
 * wait() runs one daemon turn, so `await g.write(...)` drives the whole stack synchronously — no
 * processes, no sockets, no timing.
 * The multi-process version of the same stack is tests/xen/ (the simulated Xen).
 */
import type { Core } from "../../src/dispatch/core.ts";
import { LegacyPolicy } from "../../src/policy/legacy.ts";
import type { Policy } from "../../src/policy/policy.ts";
import type { DomainManager, DomainManagerOptions } from "../../src/domains/manager.ts";
import type { DomainRecord } from "../../src/backend/domains.ts";
import type { Database } from "../../src/store/database.ts";
import { EventLoop, type OutputGate } from "../../src/transport/loop.ts";
import { RingServer, type RingServerOptions } from "../../src/transport/ring_server.ts";
import type { DomainState, MappedRing, XenPlatform } from "../../src/xen/platform.ts";
import { PAGE_SIZE, RingPage } from "../../src/xen/ring.ts";
import { GuestClient, type GuestTransport } from "../../src/client/guest.ts";
import { dom0, type TestConn, testCore } from "../helpers/core.ts";
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

  /** Some port is signalled and not yet taken by pendingPorts() (the daemon's loop would wake). */
  get hasPending(): boolean {
    return this.pending.length > 0;
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

export type RigOptions = RingServerOptions & DomainManagerOptions;

export interface Rig {
  /** The daemon's parts (replaced by restart()). */
  core: Core;
  loop: EventLoop;
  rings: RingServer;
  domains: DomainManager;
  readonly xen: FakeXen;
  dom0: TestConn;
  /** One daemon loop turn: pending event-channel ports, then the loop's turn (serve, output, turn end). */
  turn(): void;
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
  /**
   * A restarted daemon over the same store and "hypervisor": the old one lets go of its rings and
   * ports (as a dead process's would be), the new one starts from `records`.
   */
  restart(records: readonly DomainRecord[]): void;
}

/**
 * The daemon's parts as src/cli/main.ts assembles them, over a FakeXen (whose event channel has no fd:
 * each turn polls it). `gate`: the loop's group commit gate (null: none). `policy`: the core's (default
 * legacy).
 */
export function rig(
  opts: RigOptions = {},
  gate: OutputGate | null = null,
  policy: Policy = new LegacyPolicy(),
): Rig {
  const xen = new FakeXen();
  const build = (db?: Database) => {
    const core = testCore({ policy, db, platform: xen, domains: opts });
    const loop = new EventLoop({ gate });
    const rings = new RingServer(loop, xen, core, core.domains, { quotas: core.quotas, ...opts });
    return { core, loop, rings, domains: core.domains, dom0: dom0(core) };
  };
  // Not started: the fake has no dom0 ring and nothing was stored (start() would store the empty set).
  const r = { xen, ...build() } as Rig;
  const turn = () => {
    r.rings.checkEventChannel();
    r.loop.turn(0);
  };
  const attach = (domid: number): GuestClient => {
    const page = new RingPage(xen.domains.get(domid)!.page);
    const t: GuestTransport = {
      domid,
      page,
      notify: () => xen.kick(domid),
      wait: async () => {
        turn();
        await Promise.resolve();
      },
      close: () => {},
    };
    return new GuestClient(t, { timeoutMs: 2000 });
  };
  return Object.assign(r, {
    turn,
    events: (g: GuestClient) => {
      turn();
      return g.eventsWithin(0);
    },
    attach,
    create(domid: number) {
      if (!xen.domains.has(domid)) xen.create(domid);
    },
    guest(domid: number) {
      if (!xen.domains.has(domid)) xen.create(domid);
      const g = attach(domid);
      const reply = r.dom0.tryRequest(MsgType.INTRODUCE, `${domid}\0${4096 + domid}\0${7}\0`);
      if (reply !== "OK") throw new Error(`INTRODUCE ${domid} failed: ${reply}`);
      return g;
    },
    restart(records: readonly DomainRecord[]) {
      r.domains.close();
      r.rings.close();
      r.loop.close();
      Object.assign(r, build(r.core.db));
      r.domains.start(records);
    },
  });
}
