/**
 * The simulated Xen of the simulation, in-process and deterministic: domains with ring pages in plain
 * memory and event channels as sets of pending ports. `SimHypervisor` outlives daemon crashes (guests'
 * pages and domain states are the hypervisor's); each daemon incarnation gets a fresh `SimPlatform`
 * (the XenPlatform the real daemon code runs on): its bindings die with the process, as a dead
 * process's /dev/xen/evtchn handle does.
 */
import { XsError } from "../../src/common/xs_error.ts";
import type { DomainState, MappedRing, XenPlatform } from "../../src/xen/platform.ts";
import { PAGE_SIZE } from "../../src/xen/ring.ts";

export interface SimDomainRec {
  readonly domid: number;
  state: DomainState;
  readonly page: Uint8Array;
  /** The unbound port the domain allocated for xenstored. */
  readonly port: number;
  readonly gfn: number;
}

/** No descriptor: the simulated daemon polls the pending ports every turn (tests/sim/daemon.ts). */
const EVENT_FD = -1;

export class SimHypervisor {
  readonly domains = new Map<number, SimDomainRec>();
  private incarnation = 0;
  private current: SimPlatform | null = null;

  create(domid: number): SimDomainRec {
    if (this.domains.has(domid)) throw new Error(`domain ${domid} exists`);
    const d: SimDomainRec = {
      domid,
      state: { dying: false, shutdown: false, uniqueId: `d${domid}-${this.incarnation++}` },
      page: new Uint8Array(PAGE_SIZE),
      port: 1 + (domid % 7),
      gfn: 0x1000 + domid,
    };
    this.domains.set(domid, d);
    return d;
  }

  /** The domain is destroyed: gone from the hypervisor, VIRQ_DOM_EXC raised. */
  destroy(domid: number): void {
    this.domains.delete(domid);
    this.current?.raiseDomExc();
  }

  shutdown(domid: number): void {
    const d = this.domains.get(domid);
    if (d === undefined) return;
    d.state = { ...d.state, shutdown: true };
    this.current?.raiseDomExc();
  }

  /** The guest notified its xenstore event channel. */
  kick(domid: number): void {
    this.current?.guestKick(domid);
  }

  /** The platform of a new daemon process. */
  platform(): SimPlatform {
    this.current = new SimPlatform(this);
    return this.current;
  }

  /** Ring pages' bytes now (frozen when the daemon dies mid-turn: its later writes never happened). */
  snapshotPages(): Map<number, Uint8Array> {
    return new Map([...this.domains].map(([id, d]) => [id, d.page.slice()]));
  }

  restorePages(s: Map<number, Uint8Array>): void {
    for (const [id, bytes] of s) this.domains.get(id)?.page.set(bytes);
  }
}

export class SimPlatform implements XenPlatform {
  readonly name = "sim-in-process";
  readonly eventFd = EVENT_FD;
  private pending = new Set<number>();
  private nextPort = 1;
  private readonly bindings = new Map<number, { domid: number; remote: number; uid: string }>();
  private virqPort = -1;
  /** Notifications to guests (statistics). */
  notified = 0;

  constructor(private readonly hv: SimHypervisor) {}

  raiseDomExc(): void {
    if (this.virqPort >= 0) this.pending.add(this.virqPort);
  }

  guestKick(domid: number): void {
    for (const [port, b] of this.bindings) if (b.domid === domid) this.pending.add(port);
  }

  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  pendingPorts(): number[] {
    const p = [...this.pending];
    this.pending = new Set();
    return p;
  }
  unmask(): void {}
  notify(): void {
    this.notified++;
  }
  bindInterdomain(domid: number, remotePort: number): number {
    const d = this.hv.domains.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `no domain ${domid}`);
    if (remotePort !== d.port) throw new XsError("EINVAL", `port ${remotePort} is not domain ${domid}'s`);
    for (const b of this.bindings.values()) {
      if (b.domid === domid && b.uid === d.state.uniqueId) {
        throw new XsError("EINVAL", `port ${remotePort} of domain ${domid} is already bound`);
      }
    }
    const port = this.nextPort++;
    this.bindings.set(port, { domid, remote: remotePort, uid: d.state.uniqueId });
    return port;
  }
  unbind(port: number): void {
    this.bindings.delete(port);
  }
  bindDomExc(): number {
    this.virqPort = this.nextPort++;
    return this.virqPort;
  }
  mapGuestRing(domid: number): MappedRing {
    const d = this.hv.domains.get(domid);
    if (d === undefined) throw new XsError("ENOENT", `no domain ${domid}`);
    return { page: d.page, unmap: () => {} };
  }
  dom0Ring(): null {
    return null;
  }
  domainState(domid: number): DomainState | null {
    return this.hv.domains.get(domid)?.state ?? null;
  }
  close(): void {}
}
