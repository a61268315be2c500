// libxenctrl through Deno.dlopen, for one thing: the state of a domain (dying, shut down) to notice
// deaths after VIRQ_DOM_EXC. The hypercall behind it (XEN_SYSCTL_getdomaininfolist) has a
// Xen-version-specific interface, so we call Xen's own library, as cxenstored does, rather than
// issue it through privcmd ourselves. Loaded lazily: the simulated platform never needs it.
import {
  DomainInfo,
  EvtchnStatus,
  XEN_DOMINF_dying,
  XEN_DOMINF_shutdown,
  XEN_DOMINF_shutdownmask,
  XEN_DOMINF_shutdownshift,
} from "./xen_abi.ts";

const SYMBOLS = {
  xc_interface_open: { parameters: ["pointer", "pointer", "u32"], result: "pointer" },
  xc_interface_close: { parameters: ["pointer"], result: "i32" },
  xc_domain_getinfolist: { parameters: ["pointer", "u32", "u32", "buffer"], result: "i32" },
  xc_evtchn_status: { parameters: ["pointer", "buffer"], result: "i32" },
} as const;

type XcLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Library names to try: the unversioned link (libxen-dev), then any versioned one installed. */
function candidates(): string[] {
  const names = ["libxenctrl.so"];
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]) {
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (/^libxenctrl\.so\.\d+\.\d+$/.test(e.name)) names.push(`${dir}/${e.name}`);
      }
    } catch { /* no such directory */ }
  }
  return names;
}

export interface XcDomainState {
  readonly domid: number;
  readonly dying: boolean;
  readonly shutdown: boolean;
  readonly shutdownReason: number;
  /** The domain handle (UUID) as hex. */
  readonly handle: string;
}

export class XenCtrl {
  private readonly buf = new Uint8Array(new ArrayBuffer(4096)); // one entry of any version fits

  private constructor(private readonly lib: XcLib, private readonly xch: Deno.PointerObject) {}

  /** Open libxenctrl and an interface handle (needs /dev/xen/privcmd: dom0, root). */
  static open(): XenCtrl {
    const errors: string[] = [];
    for (const name of candidates()) {
      let lib: XcLib;
      try {
        lib = Deno.dlopen(name, SYMBOLS);
      } catch (e) {
        errors.push(`${name}: ${(e as Error).message}`);
        continue;
      }
      const xch = lib.symbols.xc_interface_open(null, null, 0);
      if (xch === null) {
        lib.close();
        errors.push(`${name}: xc_interface_open failed (not in dom0, or not root?)`);
        continue;
      }
      return new XenCtrl(lib, xch);
    }
    throw new Error(`libxenctrl unavailable: ${errors.join("; ") || "not installed"}`);
  }

  /** The domain's state, or null if no domain `domid` exists. */
  domainState(domid: number): XcDomainState | null {
    const n = this.lib.symbols.xc_domain_getinfolist(this.xch, domid, 1, this.buf);
    if (n < 1) return null;
    const dv = new DataView(this.buf.buffer);
    if (dv.getUint16(DomainInfo.domain, true) !== domid) return null; // the next domain up
    const flags = dv.getUint32(DomainInfo.flags, true);
    let handle = "";
    for (let i = 0; i < DomainInfo.handleSize; i++) {
      handle += this.buf[DomainInfo.handle + i].toString(16).padStart(2, "0");
    }
    return {
      domid,
      dying: (flags & XEN_DOMINF_dying) !== 0,
      shutdown: (flags & XEN_DOMINF_shutdown) !== 0,
      shutdownReason: (flags >>> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask,
      handle,
    };
  }

  /**
   * EVTCHNOP_status (xc_evtchn_status): `status` is a struct evtchn_status naming the port to ask
   * about (src/xen/real/adoption.ts encodes and decodes it); Xen fills in the rest. False on failure.
   */
  evtchnStatus(status: Uint8Array): boolean {
    if (status.length < EvtchnStatus.size) throw new RangeError("struct evtchn_status too short");
    return this.lib.symbols.xc_evtchn_status(this.xch, status) >= 0;
  }

  close(): void {
    this.lib.symbols.xc_interface_close(this.xch);
    this.lib.close();
  }
}
