// The daemon's side of the simulated Xen (layout in ./layout.ts): the XenPlatform a dom0 xenstored
// sees, on top of files and FIFOs. Rings are mmapped from files, so the daemon reads and writes the
// very bytes a guest process does; events are 8-byte records in the daemon's FIFO, polled by its epoll
// loop like /dev/xen/evtchn, and notifications are records written into the FIFO of the process
// running as the guest.
import { XsError } from "../../common/xs_error.ts";
import * as libc from "../../../ffi/libc.ts";
import { PAGE_SIZE } from "../ring.ts";
import {
  type DomainState,
  type InheritedChannels,
  type MappedRing,
  VIRQ_DOM_EXC,
  type XenPlatform,
} from "../platform.ts";
import {
  daemonChannel,
  decodeEvent,
  DOMID_XEN,
  EVENT_SIZE,
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

/** Events taken per pendingPorts() call: a flood cannot keep one loop turn busy. */
const MAX_DRAIN = 4096;
/** Events read per read() (a multiple of EVENT_SIZE, so whole records come out). */
const READ_EVENTS = 512;

export interface SimPlatformStats {
  /** Notifications that could not be delivered (no guest process attached, or its FIFO full). */
  undelivered: number;
  /** Events naming no bound channel (spurious or stale events). */
  spurious: number;
}

/** The FIFO of the process running as a domain, open for writing. */
interface Receiver {
  readonly path: string;
  readonly fd: number;
}

/** A key for the guest end (domid, port) of a channel (domid < 2^16, so the sum is exact). */
function remoteKey(domid: number, port: number): number {
  return domid * 0x1_0000_0000 + port;
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
  private readonly channelPath: string;
  private nextPort = 1;
  private readonly bindings = new Map<number, Binding>();
  /** remoteKey(domid, port) of a guest end → our local port. */
  private readonly byRemote = new Map<number, number>();
  private readonly virqPorts = new Map<number, number>();
  /** The FIFO last found for each domain (kept open while writes to it succeed). */
  private readonly receivers = new Map<number, Receiver>();
  private readonly inBuf = new Uint8Array(EVENT_SIZE * READ_EVENTS);
  private readonly outBuf = new Uint8Array(EVENT_SIZE);
  private readonly outView = new DataView(this.outBuf.buffer);
  private readonly pending = new Set<number>();

  /**
   * `inherited`: a live update's new program takes over the previous one's event-channel FIFO (kept
   * open across the exec, so no guest's notification was lost or refused meanwhile) and allocates
   * local ports above the ones its adopted channels use.
   */
  constructor(readonly dir: string, inherited?: InheritedChannels) {
    this.name = `sim:${dir}`;
    Deno.mkdirSync(`${dir}/domains`, { recursive: true });
    this.channelPath = daemonChannel(dir);
    if (inherited !== undefined) {
      this.eventFd = inherited.eventFd;
      this.nextPort = Math.max(this.nextPort, inherited.firstFreePort);
      return;
    }
    libc.mkfifo(this.channelPath);
    // Read-write: never end-of-file, and guests' opens succeed for as long as we live.
    this.eventFd = libc.open(this.channelPath, libc.O_RDWR | libc.O_NONBLOCK);
  }

  /**
   * Live update: the channel to `domid`'s xenstore port that the previous program bound as
   * `localPort` (the simulated hypervisor's binding lives on with the inherited FIFO).
   */
  adoptInterdomain(domid: number, localPort: number): number {
    const remotePort = readNumber(storePortPath(this.dir, domid));
    if (readState(this.dir, domid) === null || remotePort === null) {
      throw new XsError("ENOENT", `no domain ${domid}`);
    }
    const key = remoteKey(domid, remotePort);
    if (this.bindings.has(localPort) || this.byRemote.has(key)) {
      throw new XsError("EINVAL", `port ${localPort} or domain ${domid}'s channel is bound already`);
    }
    this.bindings.set(localPort, { kind: "interdomain", domid, remotePort });
    this.byRemote.set(key, localPort);
    this.nextPort = Math.max(this.nextPort, localPort + 1);
    return remotePort;
  }

  pendingPorts(): number[] {
    const ports = this.pending;
    ports.clear();
    for (let taken = 0; taken < MAX_DRAIN;) {
      const n = libc.read(this.eventFd, this.inBuf);
      if (n <= 0) break; // -EAGAIN: drained
      // Every writer writes whole records atomically, so reads return whole records.
      for (let off = 0; off + EVENT_SIZE <= n; off += EVENT_SIZE) {
        const ev = decodeEvent(this.inBuf, off);
        const port = ev.domid === DOMID_XEN
          ? this.virqPorts.get(ev.port)
          : ev.domid < DOMID_XEN
          ? this.byRemote.get(remoteKey(ev.domid, ev.port))
          : undefined;
        if (port === undefined) this.stats.spurious++;
        else ports.add(port);
      }
      if (n % EVENT_SIZE !== 0) this.stats.spurious++; // a writer broke the rules
      taken += n / EVENT_SIZE;
      if (n < this.inBuf.length) break; // a short read: we are its only reader, so it is empty now
    }
    return [...ports];
  }

  unmask(_port: number): void {
    // Records are consumed as they are read: nothing stays masked.
  }

  notify(port: number): void {
    const b = this.bindings.get(port);
    if (b === undefined || b.kind !== "interdomain") return;
    this.outView.setUint32(0, b.domid, true);
    this.outView.setUint32(4, b.remotePort, true);
    const cached = this.receivers.get(b.domid);
    if (cached !== undefined) {
      const n = libc.write(cached.fd, this.outBuf);
      if (n > 0) return;
      if (n === -libc.EAGAIN) { // its FIFO is full: thousands of events are waiting to be read
        this.stats.undelivered++;
        return;
      }
      this.forgetReceiver(b.domid); // EPIPE: the process that ran as the domain is gone
    }
    // Nobody known, or the guest process changed: look again.
    const path = readText(receiverPath(this.dir, b.domid));
    const fd = path === null || path === ""
      ? -libc.ENOENT
      : libc.tryOpen(path, libc.O_WRONLY | libc.O_NONBLOCK);
    if (fd < 0) { // -ENXIO: no process has it open
      this.stats.undelivered++;
      return;
    }
    this.receivers.set(b.domid, { path: path!, fd });
    if (libc.write(fd, this.outBuf) <= 0) this.stats.undelivered++;
  }

  private forgetReceiver(domid: number): void {
    const r = this.receivers.get(domid);
    if (r === undefined) return;
    libc.close(r.fd);
    this.receivers.delete(domid);
  }

  bindInterdomain(domid: number, remotePort: number): number {
    if (readState(this.dir, domid) === null) throw new XsError("ENOENT", `no domain ${domid}`);
    // The simulated hypervisor knows one unbound port per domain: the one for xenstore.
    const unbound = readNumber(storePortPath(this.dir, domid));
    const key = remoteKey(domid, remotePort);
    if (unbound !== remotePort || this.byRemote.has(key)) {
      throw new XsError("EINVAL", `port ${remotePort} of domain ${domid} is not an unbound port for dom0`);
    }
    const port = this.nextPort++;
    this.bindings.set(port, { kind: "interdomain", domid, remotePort });
    this.byRemote.set(key, port);
    this.forgetReceiver(domid);
    return port;
  }

  unbind(port: number): void {
    const b = this.bindings.get(port);
    if (b === undefined) return;
    this.bindings.delete(port);
    if (b.kind === "interdomain") {
      this.byRemote.delete(remoteKey(b.domid, b.remotePort));
      this.forgetReceiver(b.domid);
    } else this.virqPorts.delete(b.virq);
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
    for (const domid of [...this.receivers.keys()]) this.forgetReceiver(domid);
    libc.close(this.eventFd);
    libc.unlink(this.channelPath);
  }
}
