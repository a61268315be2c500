// The simulated Xen's shared state: one directory that the daemon, the control API and the guest
// processes all use. Files play the hypervisor's part:
//
//   <dir>/dom0.evtchn              the daemon's event channel (a FIFO: its /dev/xen/evtchn)
//   <dir>/guests/<pid>-<n>.evtchn   a guest process's event channel (a FIFO)
//   <dir>/domains/<domid>/ring      the domain's xenstore ring page (4096 bytes, mmapped by both sides)
//   <dir>/domains/<domid>/state    "running <uid>", "shutdown <uid> <reason>" or "dying <uid>"
//   <dir>/domains/<domid>/store_port  the port the toolstack allocated for xenstore (start_info's
//                                  store_evtchn); unbound until the daemon binds it at INTRODUCE
//   <dir>/domains/<domid>/store_gfn   the ring's frame number, as a toolstack would pass to INTRODUCE
//   <dir>/domains/<domid>/receiver the FIFO of the process currently running as that domain
//
// An event is one 8-byte record (u32 domid, u32 port, little-endian) naming the guest-side end of
// the channel, written into the receiver's FIFO with one write(): writes of at most PIPE_BUF bytes
// are atomic, so records from many writers never interleave and the FIFO always holds whole records.
// The daemon's platform translates the guest end to its own local port. Every simulated channel
// connects dom0 (the daemon) with one guest port, so that pair is enough to identify it. VIRQs are
// sent as (DOMID_XEN, virq). Files that another process reads are replaced atomically (rename).
//
// Why FIFOs: an unrelated process can open one by name (an eventfd cannot be opened that way), it is
// pollable, and a notification costs one write() and a whole batch of them one read() — the same
// system calls a socket request costs, so the simulated ring round trip is comparable with the
// socket's (bench/guests.ts). Each FIFO's owner opens it read-write, so it never reads end-of-file
// and a writer's open succeeds while the owner lives; once the owner is gone, writes fail with EPIPE
// and opens with ENXIO, which is how a writer notices that a guest process or the daemon went away.

/** Bytes of one event record. */
export const EVENT_SIZE = 8;

/** DOMID_XEN: the sender of virtual interrupts. */
export const DOMID_XEN = 0x7ff2;

/** The daemon's event-channel FIFO. */
export function daemonChannel(dir: string): string {
  return `${dir}/dom0.evtchn`;
}

export function guestsDir(dir: string): string {
  return `${dir}/guests`;
}

export function domainDir(dir: string, domid: number): string {
  return `${dir}/domains/${domid}`;
}

export function ringPath(dir: string, domid: number): string {
  return `${domainDir(dir, domid)}/ring`;
}

export function statePath(dir: string, domid: number): string {
  return `${domainDir(dir, domid)}/state`;
}

export function storePortPath(dir: string, domid: number): string {
  return `${domainDir(dir, domid)}/store_port`;
}

export function storeGfnPath(dir: string, domid: number): string {
  return `${domainDir(dir, domid)}/store_gfn`;
}

export function receiverPath(dir: string, domid: number): string {
  return `${domainDir(dir, domid)}/receiver`;
}

export type SimRunState = "running" | "shutdown" | "dying";

export interface SimDomainState {
  readonly state: SimRunState;
  readonly uid: string;
  /** For "shutdown": poweroff, reboot, suspend, crash, watchdog. */
  readonly reason: string;
}

/** The state file of a domain, or null if the domain does not exist. */
export function readState(dir: string, domid: number): SimDomainState | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(statePath(dir, domid));
  } catch {
    return null;
  }
  const [state, uid = "", reason = ""] = text.trim().split(" ");
  if (state !== "running" && state !== "shutdown" && state !== "dying") return null;
  return { state, uid, reason };
}

/** Replace a small file atomically (readers see the old or the new content, never a mix). */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(tmp, text);
  Deno.renameSync(tmp, path);
}

/** A decimal number from a small file, or null if it is missing or not a number. */
export function readNumber(path: string): number | null {
  try {
    const t = Deno.readTextFileSync(path).trim();
    return /^[0-9]{1,10}$/.test(t) ? Number(t) : null;
  } catch {
    return null;
  }
}

export function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

/** The record that signals the channel whose guest end is (domid, port). */
export function encodeEvent(domid: number, port: number): Uint8Array {
  const b = new Uint8Array(EVENT_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, domid >>> 0, true);
  dv.setUint32(4, port >>> 0, true);
  return b;
}

/** The record at byte `off` of `b`. */
export function decodeEvent(b: Uint8Array, off: number): { domid: number; port: number } {
  return { domid: u32(b, off), port: u32(b, off + 4) };
}

function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}
