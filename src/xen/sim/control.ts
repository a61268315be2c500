// The simulated hypervisor's control API: what `xl` and Xen itself do to domains, for tests, the
// benchmark and the dxenstore-guest CLI. Creating a domain makes its ring page and allocates its
// xenstore port (as the toolstack does before the guest runs); shutting down, crashing and
// destroying it change its state file and raise VIRQ_DOM_EXC at the daemon, as Xen does.
// The daemon is told about a new domain only by the normal INTRODUCE message from dom0's tools.
import * as libc from "../../../ffi/libc.ts";
import { PAGE_SIZE } from "../ring.ts";
import { VIRQ_DOM_EXC } from "../platform.ts";
import {
  daemonChannel,
  domainDir,
  DOMID_XEN,
  encodeEvent,
  readNumber,
  readState,
  ringPath,
  statePath,
  storeGfnPath,
  storePortPath,
  writeAtomic,
} from "./layout.ts";

/** What a toolstack passes to INTRODUCE for a domain. */
export interface SimDomain {
  readonly domid: number;
  /** The ring's frame number (the simulated daemon maps by domain, like grant ref 1). */
  readonly gfn: number;
  /** The guest's unbound xenstore port. */
  readonly port: number;
}

/** The xenstore port every simulated domain gets (each domain has its own port space). */
export const STORE_PORT = 1;
const STORE_GFN_BASE = 0xfeffc000;

let uidCounter = 0;
function newUid(): string {
  return `${Date.now().toString(36)}-${Deno.pid}-${(uidCounter++).toString(36)}-${
    Math.floor(Math.random() * 1e9).toString(36)
  }`;
}

/** Create domain `domid` (fails if it exists). Its ring is zero-filled, its port unbound. */
export function createDomain(dir: string, domid: number): SimDomain {
  if (!Number.isInteger(domid) || domid < 0 || domid >= 0x7ff0) throw new RangeError(`bad domid ${domid}`);
  const d = domainDir(dir, domid);
  Deno.mkdirSync(`${dir}/domains`, { recursive: true });
  Deno.mkdirSync(d); // throws AlreadyExists: a domid is used by one live domain at a time
  const fd = libc.open(ringPath(dir, domid), libc.O_RDWR | libc.O_CREAT | libc.O_EXCL, 0o600);
  try {
    libc.ftruncate(fd, PAGE_SIZE);
  } finally {
    libc.close(fd);
  }
  const gfn = STORE_GFN_BASE + domid;
  writeAtomic(storePortPath(dir, domid), `${STORE_PORT}\n`);
  writeAtomic(storeGfnPath(dir, domid), `${gfn}\n`);
  writeAtomic(statePath(dir, domid), `running ${newUid()}\n`);
  return { domid, gfn, port: STORE_PORT };
}

/** Dom0's own ring (what /proc/xen/xsd_kva and xsd_port are on real Xen), for a "dom0 kernel" client. */
export function createDom0Ring(dir: string): SimDomain {
  return createDomain(dir, 0);
}

/** The INTRODUCE arguments of an existing domain, or null. */
export function domainInfo(dir: string, domid: number): SimDomain | null {
  if (readState(dir, domid) === null) return null;
  const port = readNumber(storePortPath(dir, domid));
  const gfn = readNumber(storeGfnPath(dir, domid));
  return port === null || gfn === null ? null : { domid, gfn, port };
}

/** Domain ids that exist. */
export function listDomains(dir: string): number[] {
  const out: number[] = [];
  try {
    for (const e of Deno.readDirSync(`${dir}/domains`)) {
      if (/^[0-9]+$/.test(e.name) && readState(dir, Number(e.name)) !== null) out.push(Number(e.name));
    }
  } catch { /* no domains yet */ }
  return out.sort((a, b) => a - b);
}

/** Raise VIRQ_DOM_EXC at the daemon (Xen does on every shutdown and death); lost if none runs. */
export function raiseDomExc(dir: string): void {
  const fd = libc.tryOpen(daemonChannel(dir), libc.O_WRONLY | libc.O_NONBLOCK);
  if (fd < 0) return; // -ENXIO: no daemon has its event channel open
  try {
    libc.write(fd, encodeEvent(DOMID_XEN, VIRQ_DOM_EXC));
  } finally {
    libc.close(fd);
  }
}

function setState(dir: string, domid: number, state: string): void {
  const s = readState(dir, domid);
  if (s === null) throw new Error(`no domain ${domid}`);
  writeAtomic(statePath(dir, domid), `${state.replace("{uid}", s.uid)}\n`);
}

/** The guest shut down (it still exists until destroyed): poweroff, reboot, suspend, crash. */
export function shutdownDomain(dir: string, domid: number, reason = "poweroff"): void {
  setState(dir, domid, `shutdown {uid} ${reason}`);
  raiseDomExc(dir);
}

/**
 * The guest crashed and the toolstack's on_crash=destroy policy is tearing it down: the domain is
 * dying (it disappears once destroyDomain is called).
 */
export function crashDomain(dir: string, domid: number): void {
  setState(dir, domid, "dying {uid}");
  raiseDomExc(dir);
}

/** Destroy the domain: it no longer exists and its domid may be reused. */
export function destroyDomain(dir: string, domid: number): void {
  if (readState(dir, domid) === null) throw new Error(`no domain ${domid}`);
  Deno.removeSync(domainDir(dir, domid), { recursive: true });
  raiseDomExc(dir);
}
