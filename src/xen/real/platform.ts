// The real Xen platform for a dom0 xenstored, through the Linux Xen device interfaces and libc
// (ffi/libc.ts) with the ABI in ffi/xen_abi.ts (checked against Debian's headers by
// tests/xen/abi_test.ts):
//  - event channels: /dev/xen/evtchn — IOCTL_EVTCHN_BIND_INTERDOMAIN/BIND_VIRQ/UNBIND/NOTIFY; read()
//    returns pending ports (each masked until written back), write() unmasks;
//  - guest rings: grant reference 1 (GNTTAB_RESERVED_XENSTORE) mapped through /dev/xen/gntdev
//    (IOCTL_GNTDEV_MAP_GRANT_REF, then mmap at the returned offset), falling back to a foreign
//    mapping of the ring's frame through /dev/xen/privcmd (IOCTL_PRIVCMD_MMAPBATCH_V2) for guests
//    whose toolstack set up no grant;
//  - dom0's own ring: mmap of /proc/xen/xsd_kva, port from /proc/xen/xsd_port;
//  - domain state: libxenctrl's xc_domain_getinfolist (ffi/xenctrl.ts), the one interface too
//    version-dependent to call directly; an event channel's peer (live update): xc_evtchn_status;
//  - live update: the /dev/xen/evtchn descriptor is inherited across the exec with its bindings
//    (open(inheritedEvtchn), adoptInterdomain), as cxenstored's own live update does.
// There is no Xen on the development machine: this code is exercised by the QEMU end-to-end tests.
import { XsError } from "../../common/xs_error.ts";
import * as libc from "../../../ffi/libc.ts";
import {
  EVTCHN_PORT_SIZE,
  EvtchnBindInterdomain,
  EvtchnBindVirq,
  EvtchnPortArg,
  GntdevMapGrantRef,
  GntdevUnmapGrantRef,
  GNTTAB_RESERVED_XENSTORE,
  IOCTL_EVTCHN_BIND_INTERDOMAIN,
  IOCTL_EVTCHN_BIND_VIRQ,
  IOCTL_EVTCHN_NOTIFY,
  IOCTL_EVTCHN_UNBIND,
  IOCTL_GNTDEV_MAP_GRANT_REF,
  IOCTL_GNTDEV_UNMAP_GRANT_REF,
  IOCTL_PRIVCMD_MMAPBATCH_V2,
  PrivcmdMmapbatchV2,
  XEN_PFN_SIZE,
  XSD_KVA,
  XSD_PORT,
} from "../../../ffi/xen_abi.ts";
import { XenCtrl } from "../../../ffi/xenctrl.ts";
import { log } from "../../common/log.ts";
import { PAGE_SIZE } from "../ring.ts";
import { type DomainState, type MappedRing, VIRQ_DOM_EXC, type XenPlatform } from "../platform.ts";
import { adoptedRemotePort, statusRequest } from "./adoption.ts";

/** A buffer whose address may be put in a struct (off-heap: V8 never moves it). */
function pinned(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

/** Pending ports read per pendingPorts() call (the fd stays readable for the rest). */
const MAX_PORTS = 1024;

export class RealPlatform implements XenPlatform {
  readonly name = "xen";
  readonly hypervisorRings = true;
  readonly eventFd: number;
  private readonly portBuf = pinned(EVTCHN_PORT_SIZE * MAX_PORTS);
  private readonly portView = new DataView(this.portBuf.buffer);
  /** One port, for unmask's write (allocated once: this runs for every event). */
  private readonly unmaskBuf = pinned(EVTCHN_PORT_SIZE);
  private readonly unmaskView = new DataView(this.unmaskBuf.buffer);
  private readonly arg8 = pinned(8);
  private readonly arg8View = new DataView(this.arg8.buffer);

  private constructor(
    private readonly evtchn: number,
    private readonly gntdev: number,
    private readonly privcmd: number,
    private readonly xc: XenCtrl,
  ) {
    this.eventFd = evtchn;
  }

  /**
   * Open the devices and libxenctrl; throws with what is missing (not dom0, not root, no Xen).
   * `inheritedEvtchn`: a live update's new program serves on the /dev/xen/evtchn descriptor the previous
   * program left open (its bindings with it; non-blocking and close-on-exec again). Grant and foreign
   * mappings are not inherited (an exec unmaps them): the devices are opened anew and rings mapped again.
   */
  static open(inheritedEvtchn?: number): RealPlatform {
    const evtchn = inheritedEvtchn ?? libc.tryOpen("/dev/xen/evtchn", libc.O_RDWR | libc.O_NONBLOCK);
    if (evtchn < 0) {
      throw new Error(
        `cannot open /dev/xen/evtchn: ${libc.errnoName(-evtchn)} ` +
          "(is this a Xen dom0 with xen-evtchn loaded, and are we root?)",
      );
    }
    // Either device maps guest rings; the errno of each says why it is missing (ENOENT: no such
    // driver, EACCES: not root...).
    const gntdev = libc.tryOpen("/dev/xen/gntdev", libc.O_RDWR);
    const privcmd = libc.tryOpen("/dev/xen/privcmd", libc.O_RDWR);
    // An inherited descriptor stays open on failure: a live update's new program goes back to the old
    // one, which serves on with its bindings (src/live_update/fallback.ts).
    const release = () => inheritedEvtchn === undefined && libc.close(evtchn);
    if (gntdev < 0 && privcmd < 0) {
      release();
      throw new Error(
        `neither /dev/xen/gntdev (${libc.errnoName(-gntdev)}) nor /dev/xen/privcmd ` +
          `(${libc.errnoName(-privcmd)}) can be opened: guest rings cannot be mapped`,
      );
    }
    let xc: XenCtrl;
    try {
      xc = XenCtrl.open();
    } catch (e) {
      release();
      if (gntdev >= 0) libc.close(gntdev);
      if (privcmd >= 0) libc.close(privcmd);
      throw e;
    }
    if (gntdev < 0) {
      log(
        "warn",
        `/dev/xen/gntdev cannot be opened (${
          libc.errnoName(-gntdev)
        }): mapping guest rings by frame (privcmd)`,
      );
    }
    return new RealPlatform(evtchn, gntdev, privcmd, xc);
  }

  pendingPorts(): number[] {
    const n = libc.read(this.evtchn, this.portBuf);
    if (n <= 0) return []; // -EAGAIN: nothing pending
    const dv = this.portView;
    const ports: number[] = [];
    for (let off = 0; off + EVTCHN_PORT_SIZE <= n; off += EVTCHN_PORT_SIZE) {
      ports.push(dv.getUint32(off, true));
    }
    return ports;
  }

  unmask(port: number): void {
    this.unmaskView.setUint32(0, port, true);
    libc.write(this.evtchn, this.unmaskBuf);
  }

  /** NOTIFY and UNBIND: struct ioctl_evtchn_{notify,unbind} is one u32 port at offset 0. */
  private portIoctl(request: number, port: number): number {
    this.arg8View.setUint32(EvtchnPortArg.port, port, true);
    return libc.ioctl(this.evtchn, request, this.arg8);
  }

  notify(port: number): void {
    this.portIoctl(IOCTL_EVTCHN_NOTIFY, port);
  }

  bindInterdomain(domid: number, remotePort: number): number {
    const b = this.arg8.subarray(0, EvtchnBindInterdomain.size);
    const dv = new DataView(b.buffer);
    dv.setUint32(EvtchnBindInterdomain.remote_domain, domid, true);
    dv.setUint32(EvtchnBindInterdomain.remote_port, remotePort, true);
    const r = libc.ioctl(this.evtchn, IOCTL_EVTCHN_BIND_INTERDOMAIN, b);
    if (r < 0) {
      throw new XsError(
        -r === libc.ESRCH ? "ENOENT" : "EINVAL",
        `binding port ${remotePort} of domain ${domid}: ${libc.errnoName(-r)}`,
      );
    }
    return r;
  }

  unbind(port: number): void {
    this.portIoctl(IOCTL_EVTCHN_UNBIND, port);
  }

  /**
   * Live update: the channel the previous program bound as `localPort` on the inherited descriptor.
   * Not bound again (the binding lives on); Xen says whom it connects (./adoption.ts), and it is
   * unmasked once, in case the previous program had read its event but not yet written it back.
   */
  adoptInterdomain(domid: number, localPort: number): number {
    const status = statusRequest(localPort);
    const remotePort = adoptedRemotePort(domid, localPort, this.xc.evtchnStatus(status) ? status : null);
    this.unmask(localPort);
    return remotePort;
  }

  bindDomExc(): number {
    const b = this.arg8.subarray(0, EvtchnBindVirq.size);
    new DataView(b.buffer).setUint32(EvtchnBindVirq.virq, VIRQ_DOM_EXC, true);
    const r = libc.ioctl(this.evtchn, IOCTL_EVTCHN_BIND_VIRQ, b);
    if (r < 0) {
      throw new Error(`binding VIRQ_DOM_EXC failed: ${libc.errnoName(-r)} (another xenstored running?)`);
    }
    return r;
  }

  mapGuestRing(domid: number, gfn: number): MappedRing {
    if (this.gntdev >= 0) {
      const m = this.mapGrant(domid);
      if (m !== null) return m;
    }
    if (this.privcmd >= 0) return this.mapForeign(domid, gfn);
    throw new XsError("ENOENT", `cannot map the ring of domain ${domid}`);
  }

  /** Grant ref 1 of `domid` through gntdev, or null if the grant cannot be mapped. */
  private mapGrant(domid: number): MappedRing | null {
    const req = pinned(GntdevMapGrantRef.size);
    const dv = new DataView(req.buffer);
    dv.setUint32(GntdevMapGrantRef.count, 1, true);
    dv.setUint32(GntdevMapGrantRef.refs, domid, true); // refs[0].domid
    dv.setUint32(GntdevMapGrantRef.refs + 4, GNTTAB_RESERVED_XENSTORE, true); // refs[0].ref
    const r = libc.ioctl(this.gntdev, IOCTL_GNTDEV_MAP_GRANT_REF, req);
    if (r < 0) return null;
    const index = dv.getBigUint64(GntdevMapGrantRef.index, true);
    const unmapGrant = () => {
      const u = pinned(GntdevUnmapGrantRef.size);
      const uv = new DataView(u.buffer);
      uv.setBigUint64(GntdevUnmapGrantRef.index, index, true);
      uv.setUint32(GntdevUnmapGrantRef.count, 1, true);
      libc.ioctl(this.gntdev, IOCTL_GNTDEV_UNMAP_GRANT_REF, u);
    };
    let m: libc.Mapping;
    try {
      m = libc.mmapShared(this.gntdev, PAGE_SIZE, index); // fails if the grant itself is bad
    } catch (e) {
      unmapGrant();
      log("debug", `dom${domid}: grant mapping failed (${(e as Error).message}), trying the frame`);
      return null;
    }
    let mapped = true;
    return {
      page: m.bytes,
      unmap: () => {
        if (!mapped) return;
        mapped = false;
        libc.munmap(m);
        unmapGrant();
      },
    };
  }

  /** The frame `gfn` of `domid` through privcmd (a foreign mapping, as oxenstored does). */
  private mapForeign(domid: number, gfn: number): MappedRing {
    let m: libc.Mapping;
    try {
      m = libc.mmapShared(this.privcmd, PAGE_SIZE);
    } catch (e) {
      throw new XsError("ENOMEM", `privcmd mmap: ${(e as Error).message}`);
    }
    const arr = pinned(XEN_PFN_SIZE);
    new DataView(arr.buffer).setBigUint64(0, BigInt(gfn), true);
    const err = pinned(4);
    const req = pinned(PrivcmdMmapbatchV2.size);
    const dv = new DataView(req.buffer);
    dv.setUint32(PrivcmdMmapbatchV2.num, 1, true);
    dv.setUint16(PrivcmdMmapbatchV2.dom, domid, true);
    dv.setBigUint64(PrivcmdMmapbatchV2.addr, Deno.UnsafePointer.value(m.pointer), true);
    dv.setBigUint64(PrivcmdMmapbatchV2.arr, libc.addressOf(arr), true);
    dv.setBigUint64(PrivcmdMmapbatchV2.err, libc.addressOf(err), true);
    const r = libc.ioctl(this.privcmd, IOCTL_PRIVCMD_MMAPBATCH_V2, req);
    const pageErr = new DataView(err.buffer).getInt32(0, true);
    if (r < 0 || pageErr !== 0) {
      libc.munmap(m);
      throw new XsError(
        "EINVAL",
        `cannot map frame ${gfn} of domain ${domid}: ${libc.errnoName(r < 0 ? -r : -pageErr)}`,
      );
    }
    let mapped = true;
    return {
      page: m.bytes,
      unmap: () => {
        if (mapped) libc.munmap(m);
        mapped = false;
      },
    };
  }

  dom0Ring(): { ring: MappedRing; remotePort: number } | null {
    let port: number;
    try {
      port = Number(Deno.readTextFileSync(XSD_PORT).trim());
    } catch {
      return null; // not dom0, or xenfs not mounted
    }
    if (!Number.isInteger(port) || port <= 0) return null;
    const fd = libc.tryOpen(XSD_KVA, libc.O_RDWR);
    if (fd < 0) {
      log("error", `dom0's ring: cannot open ${XSD_KVA}: ${libc.errnoName(-fd)}`);
      return null;
    }
    try {
      const m = libc.mmapShared(fd, PAGE_SIZE);
      let mapped = true;
      return {
        ring: {
          page: m.bytes,
          unmap: () => {
            if (mapped) libc.munmap(m);
            mapped = false;
          },
        },
        remotePort: port,
      };
    } catch (e) {
      log("error", `cannot map ${XSD_KVA}: ${(e as Error).message}`);
      return null;
    } finally {
      libc.close(fd);
    }
  }

  domainState(domid: number): DomainState | null {
    const s = this.xc.domainState(domid);
    if (s === null) return null;
    return { dying: s.dying, shutdown: s.shutdown, uniqueId: s.handle };
  }

  close(): void {
    libc.close(this.evtchn);
    if (this.gntdev >= 0) libc.close(this.gntdev);
    if (this.privcmd >= 0) libc.close(this.privcmd);
    this.xc.close();
  }
}
