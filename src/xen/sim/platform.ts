// The daemon's side of the simulated Xen (layout in ./layout.ts): the XenPlatform a dom0 xenstored
// sees, on top of files and Unix datagram sockets. Rings are mmapped from files, so the daemon reads
// and writes the very bytes a guest process does; events are datagrams on one socket, polled by the
// daemon's epoll loop like /dev/xen/evtchn.
import { XsError } from "../../common/xs_error.ts";
import * as libc from "../../../ffi/libc.ts";
import { PAGE_SIZE } from "../ring.ts";
import { type DomainState, type MappedRing, VIRQ_DOM_EXC, type XenPlatform } from "../platform.ts";
import {
  daemonSocket,
  decodeEvent,
  DOMID_XEN,
  encodeEvent,
  readNumber,
  readState,
  readText,
  receiverPath,
  ringPath,
  storePortPath,
} from "./layout.ts";

type Binding =
  | { readonly kind: "interdomain"; readonly domid: number; readonly remotePort: number }
  | { readonly kind: "virq"; readonly virq: number };

/** Datagrams taken per pendingPorts() call: a flood cannot keep one loop turn busy. */
const MAX_DRAIN = 4096;

export interface SimPlatformStats {
  /** Notifications that could not be delivered (no guest process attached, or its queue full). */
  undelivered: number;
  /** Datagrams naming no bound channel (spurious or stale events). */
  spurious: number;
}

export function mapRingFile(path: string): MappedRing {
  let fd: number;
  try {
    fd = libc.open(path, libc.O_RDWR);
  } catch (e) {
    throw new XsError("ENOENT", `cannot open ring ${path}: ${(e as Error).message}`);
  }
  try {
    const m = libc.mmapShared(fd, PAGE_SIZE);
    let mapped = true;
    return {
      page: m.bytes,
      unmap() {
        if (mapped) libc.munmap(m);
        mapped = false;
      },
    };
  } finally {
    libc.close(fd);
  }
}

export class SimPlatform implements XenPlatform {
  readonly name: string;
  readonly eventFd: number;
  readonly stats: SimPlatformStats = { undelivered: 0, spurious: 0 };
  private readonly socketPath: string;
  private readonly sender: number;
  private nextPort = 1;
  private readonly bindings = new Map<number, Binding>();
  /** "domid:port" of a guest end → our local port. */
  private readonly byRemote = new Map<string, number>();
  private readonly virqPorts = new Map<number, number>();
  /** Last known socket of the process running as a domain. */
  private readonly receivers = new Map<number, string>();
  private readonly buf = new Uint8Array(64);

  constructor(readonly dir: string) {
    this.name = `sim:${dir}`;
    Deno.mkdirSync(`${dir}/domains`, { recursive: true });
    this.socketPath = daemonSocket(dir);
    this.eventFd = libc.bindDatagram(this.socketPath);
    this.sender = libc.datagramSender();
  }

  pendingPorts(): number[] {
    const ports = new Set<number>();
    for (let i = 0; i < MAX_DRAIN; i++) {
      const n = libc.recv(this.eventFd, this.buf);
      if (n < 0) break; // -EAGAIN: drained
      const ev = decodeEvent(this.buf, n);
      if (ev === null) {
        this.stats.spurious++;
        continue;
      }
      const port = ev.domid === DOMID_XEN
        ? this.virqPorts.get(ev.port)
        : this.byRemote.get(`${ev.domid}:${ev.port}`);
      if (port === undefined) this.stats.spurious++;
      else ports.add(port);
    }
    return [...ports];
  }

  unmask(_port: number): void {
    // Datagrams are consumed as they are read: nothing stays masked.
  }

  notify(port: number): void {
    const b = this.bindings.get(port);
    if (b === undefined || b.kind !== "interdomain") return;
    const ev = encodeEvent(b.domid, b.remotePort);
    const cached = this.receivers.get(b.domid);
    if (cached !== undefined && libc.sendTo(this.sender, cached, ev) > 0) return;
    // The guest process changed (or none is attached yet): look again.
    const path = readText(receiverPath(this.dir, b.domid));
    if (path === null || path === "") {
      this.stats.undelivered++;
      return;
    }
    this.receivers.set(b.domid, path);
    if (libc.sendTo(this.sender, path, ev) < 0) this.stats.undelivered++;
  }

  bindInterdomain(domid: number, remotePort: number): number {
    if (readState(this.dir, domid) === null) throw new XsError("ENOENT", `no domain ${domid}`);
    // The simulated hypervisor knows one unbound port per domain: the one for xenstore.
    const unbound = readNumber(storePortPath(this.dir, domid));
    const key = `${domid}:${remotePort}`;
    if (unbound !== remotePort || this.byRemote.has(key)) {
      throw new XsError("EINVAL", `port ${remotePort} of domain ${domid} is not an unbound port for dom0`);
    }
    const port = this.nextPort++;
    this.bindings.set(port, { kind: "interdomain", domid, remotePort });
    this.byRemote.set(key, port);
    this.receivers.delete(domid);
    return port;
  }

  unbind(port: number): void {
    const b = this.bindings.get(port);
    if (b === undefined) return;
    this.bindings.delete(port);
    if (b.kind === "interdomain") this.byRemote.delete(`${b.domid}:${b.remotePort}`);
    else this.virqPorts.delete(b.virq);
  }

  bindDomExc(): number {
    const port = this.nextPort++;
    this.bindings.set(port, { kind: "virq", virq: VIRQ_DOM_EXC });
    this.virqPorts.set(VIRQ_DOM_EXC, port);
    return port;
  }

  mapGuestRing(domid: number, _gfn: number): MappedRing {
    // As cxenstored with grant tables: the ring is found by domain (grant ref 1), not by frame.
    if (readState(this.dir, domid) === null) throw new XsError("ENOENT", `no domain ${domid}`);
    return mapRingFile(ringPath(this.dir, domid));
  }

  dom0Ring(): { ring: MappedRing; remotePort: number } | null {
    const port = readNumber(storePortPath(this.dir, 0));
    if (port === null) return null;
    try {
      Deno.statSync(ringPath(this.dir, 0));
    } catch {
      return null;
    }
    return { ring: mapRingFile(ringPath(this.dir, 0)), remotePort: port };
  }

  domainState(domid: number): DomainState | null {
    const s = readState(this.dir, domid);
    if (s === null) return null;
    return { dying: s.state === "dying", shutdown: s.state === "shutdown", uniqueId: s.uid };
  }

  close(): void {
    libc.close(this.eventFd);
    libc.close(this.sender);
    libc.unlink(this.socketPath);
  }
}
