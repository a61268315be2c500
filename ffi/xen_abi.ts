// The Linux Xen device ABI dxenstored uses, as numbers: ioctl request codes, struct sizes and field
// offsets of /dev/xen/evtchn, /dev/xen/gntdev, /dev/xen/privcmd, and libxenctrl's xc_domaininfo_t,
// for x86-64 Linux with Debian 12's Xen 4.17 headers. tests/xen/abi_test.ts compiles ffi/xen_abi.c
// against the installed headers (libxen-dev) and checks every value here against what the C
// compiler says; src/xen/real uses nothing but these.

/** Linux _IOC(_IOC_NONE, type, nr, size) on x86: dir (0) << 30 | size << 16 | type << 8 | nr. */
export function ioc(type: string, nr: number, size: number): number {
  return ((size & 0x3fff) << 16) | (type.charCodeAt(0) << 8) | nr;
}

/** <xen/sys/evtchn.h> */
export const EvtchnBindVirq = { size: 4, virq: 0 } as const;
export const EvtchnBindInterdomain = { size: 8, remote_domain: 0, remote_port: 4 } as const;
/** struct ioctl_evtchn_unbind and ioctl_evtchn_notify: one port. */
export const EvtchnPortArg = { size: 4, port: 0 } as const;
/** evtchn_port_t: what read() returns and write() takes, one per port. */
export const EVTCHN_PORT_SIZE = 4;
export const IOCTL_EVTCHN_BIND_VIRQ = ioc("E", 0, EvtchnBindVirq.size);
export const IOCTL_EVTCHN_BIND_INTERDOMAIN = ioc("E", 1, EvtchnBindInterdomain.size);
export const IOCTL_EVTCHN_UNBIND = ioc("E", 3, EvtchnPortArg.size);
export const IOCTL_EVTCHN_NOTIFY = ioc("E", 4, EvtchnPortArg.size);

/** <xen/sys/gntdev.h> */
export const GntdevGrantRef = { size: 8, domid: 0, ref: 4 } as const;
export const GntdevMapGrantRef = { size: 24, count: 0, pad: 4, index: 8, refs: 16 } as const;
export const GntdevUnmapGrantRef = { size: 16, index: 0, count: 8, pad: 12 } as const;
export const IOCTL_GNTDEV_MAP_GRANT_REF = ioc("G", 0, GntdevMapGrantRef.size);
export const IOCTL_GNTDEV_UNMAP_GRANT_REF = ioc("G", 1, GntdevUnmapGrantRef.size);

/** <xen/sys/privcmd.h> privcmd_mmapbatch_v2_t (xen_pfn_t is 8 bytes, domid_t 2 on x86-64). */
export const PrivcmdMmapbatchV2 = { size: 32, num: 0, dom: 4, addr: 8, arr: 16, err: 24 } as const;
export const XEN_PFN_SIZE = 8;
export const DOMID_SIZE = 2;
export const IOCTL_PRIVCMD_MMAPBATCH_V2 = ioc("P", 4, PrivcmdMmapbatchV2.size);

/** <xen/grant_table.h>: the grant reference the toolstack gives the xenstore ring. */
export const GNTTAB_RESERVED_XENSTORE = 1;

/**
 * libxenctrl 4.17's xc_domaininfo_t (struct xen_domctl_getdomaininfo, domctl interface version
 * 0x15). Only `domain` and `flags` are read besides `handle`; those two have kept their offsets in
 * every version, the size and handle offset are checked against the installed headers.
 */
export const DomainInfo = { size: 112, domain: 0, flags: 4, handle: 76, handleSize: 16 } as const;
export const XEN_DOMINF_dying = 1 << 0;
export const XEN_DOMINF_shutdown = 1 << 2;
export const XEN_DOMINF_shutdownshift = 16;
export const XEN_DOMINF_shutdownmask = 255;
export const XEN_DOMCTL_INTERFACE_VERSION = 0x15;

/**
 * struct evtchn_status (public/event_channel.h, EVTCHNOP_status; libxenctrl's xc_evtchn_status_t):
 * who is at the other end of one of our ports. A live update's new program asks it of each port it
 * inherited (docs/live-update.md).
 */
export const EvtchnStatus = {
  size: 24,
  dom: 0,
  port: 4,
  status: 8,
  interdomainDom: 16,
  interdomainPort: 20,
} as const;
export const EVTCHNSTAT_interdomain = 2;

/** /proc/xen: dom0's own xenstore ring page and the port its kernel allocated for xenstored. */
export const XSD_KVA = "/proc/xen/xsd_kva";
export const XSD_PORT = "/proc/xen/xsd_port";
