// What a dom0 xenstored needs from Xen, as one interface with two implementations:
//  - src/xen/real: the Linux Xen device interfaces (/dev/xen/evtchn, gntdev, privcmd, /proc/xen) and
//    libxenctrl, through Deno.dlopen;
//  - src/xen/sim: a simulated Xen in a directory (ring pages in mmapped files, event channels as
//    FIFOs), so that every guest-side behaviour is testable on a machine without Xen.
// The daemon (src/domains) is written against this interface only.
//
// Failures the caller should report to a client are XsError values (src/common/xs_error.ts) with the
// errno a client will see; anything else is a bug or a broken host.

/** A guest's (or dom0's) xenstore ring page, mapped into this process. */
export interface MappedRing {
  /** The page (≥ 2076 bytes, 4-byte aligned). Must not be touched after unmap(). */
  readonly page: Uint8Array;
  unmap(): void;
}

/** What the hypervisor says about a domain (the parts a xenstored acts on). */
export interface DomainState {
  /** Being destroyed: treat as dead. */
  readonly dying: boolean;
  /** Shut down (poweroff, reboot, suspend, crash) but not yet destroyed. */
  readonly shutdown: boolean;
  /** Tells two domains that had the same domid apart (Xen: the domain handle/UUID). */
  readonly uniqueId: string;
}

/** VIRQ_DOM_EXC (xen.h): raised whenever a domain shuts down or dies. */
export const VIRQ_DOM_EXC = 3;

export interface XenPlatform {
  readonly name: string;
  /**
   * The file descriptor that becomes readable when event-channel ports are pending (poll/epoll),
   * like /dev/xen/evtchn.
   */
  readonly eventFd: number;
  /**
   * Pending local ports, without blocking. As with /dev/xen/evtchn, a port reported here is masked
   * until unmask(port); the caller unmasks once it has looked at whatever the port signals.
   */
  pendingPorts(): number[];
  unmask(port: number): void;
  /** Signal the peer of a bound local port. */
  notify(port: number): void;
  /** Bind to `remotePort` of domain `domid` (an unbound port it allocated for us); returns our port. */
  bindInterdomain(domid: number, remotePort: number): number;
  unbind(port: number): void;
  /** Bind VIRQ_DOM_EXC; returns the local port that signals it. */
  bindDomExc(): number;
  /**
   * Map domain `domid`'s xenstore ring: grant reference 1 (GNTTAB_RESERVED_XENSTORE) where the
   * platform can, else the guest frame `gfn`.
   */
  mapGuestRing(domid: number, gfn: number): MappedRing;
  /** Dom0's own ring and the port its kernel allocated for us, or null if there is none. */
  dom0Ring(): { ring: MappedRing; remotePort: number } | null;
  /** The domain's state, or null if no domain `domid` exists. */
  domainState(domid: number): DomainState | null;
  /** Release everything (the daemon is stopping). Rings must already be unmapped. */
  close(): void;
  /**
   * Live update (docs/live-update.md): take over the channel to `domid`'s xenstore port that the
   * previous program bound as `localPort`, through the event-channel descriptor it left open; returns
   * the domain's end of it. Absent: this platform cannot hand rings over (a live update is then
   * refused while rings are served).
   */
  adoptInterdomain?(domid: number, localPort: number): number;
  /**
   * The rings and event channels are the hypervisor's (real Xen): any xenstored handed the
   * event-channel descriptor can adopt them, cxenstored too. False or absent: only dxenstored can
   * (the simulated Xen's files).
   */
  readonly hypervisorRings?: boolean;
}

/**
 * What a live update's new program inherits of the event channels: the descriptor the previous program
 * left open across the exec (/dev/xen/evtchn, or the simulated Xen's FIFO; non-blocking again), whose
 * bindings live on.
 */
export interface InheritedChannels {
  readonly eventFd: number;
  /** Above every local port the previous program handed over (the simulated Xen allocates ports). */
  readonly firstFreePort: number;
}

/** Domain ids at and above DOMID_FIRST_RESERVED (0x7FF0) name no real domain. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
/** DOMID_SELF: IS_DOMAIN_INTRODUCED answers T for it (as cxenstored). */
export const DOMID_SELF = 0x7ff0;
