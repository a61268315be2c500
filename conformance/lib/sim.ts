// Guest domains for the guest-side requirements, on the project's simulated Xen (src/xen/sim): the
// suite plays the hypervisor and toolstack (creates a domain, writes its home nodes, sends INTRODUCE
// on a dom0 socket) and the guest kernel (a ring client mapped into this process). Nothing here runs
// daemon code: the simulated Xen is a platform the daemon talks to, like /dev/xen on a real host.
import { GuestClient } from "../../src/client/guest.ts";
import { createDomain, destroyDomain, shutdownDomain, type SimDomain } from "../../src/xen/sim/control.ts";
import { type SimEvtchn, SimGuest } from "../../src/xen/sim/guest.ts";
import { readState, statePath, writeAtomic } from "../../src/xen/sim/layout.ts";
import { Conn, type Packet, splitNul, Violations, XS } from "./wire.ts";

export interface WatchEvent {
  readonly path: string;
  readonly token: string;
}

/** A guest's XenStore connection over its ring, with the same request/event interface as a socket. */
export class Guest {
  private readonly client: GuestClient;

  constructor(readonly env: GuestEnv, readonly domid: number, readonly info: SimDomain) {
    this.client = new GuestClient(new SimGuest(env.dir, domid), { timeoutMs: 5000 });
  }

  get ring(): GuestClient {
    return this.client;
  }

  /** The guest's event-channel endpoint (to see the daemon's signals directly). */
  get evtchn(): SimEvtchn {
    return (this.client.transport as SimGuest).evtchn;
  }

  /** Its home: /local/domain/<domid>. */
  get home(): string {
    return `/local/domain/${this.domid}`;
  }

  async request(type: number, payload: string, txId = 0): Promise<Packet> {
    const m = await this.client.request(type, payload, txId);
    if (m.payload.length > 4096) {
      this.env.violations.record("FRAME-5", `ring packet type ${m.type} with ${m.payload.length} bytes`);
    }
    return m;
  }

  /** The next watch event; throws if none comes within `timeoutMs`. */
  async event(timeoutMs = 5000): Promise<WatchEvent> {
    const e = await this.client.nextEvent(timeoutMs);
    if (e === null) throw new Error(`domain ${this.domid}: no watch event within ${timeoutMs} ms`);
    return e;
  }

  close(): void {
    try {
      this.client.close();
    } catch { /* already closed */ }
  }
}

export interface DomainOptions {
  /** Write the toolstack's home nodes before INTRODUCE (default true). */
  readonly nodes?: boolean;
  /** Send INTRODUCE (default true). */
  readonly introduce?: boolean;
  /** This domid (default: a fresh one). */
  readonly domid?: number;
}

/** The simulated Xen of the daemon under test (`--xen=sim:<dir>`). */
export class GuestEnv {
  private nextDomid = 1;

  constructor(readonly dir: string, readonly socket: string, readonly violations: Violations) {}

  /** A domid no domain of this run has used (so no check sees another's leftovers). */
  freshDomid(): number {
    for (;;) {
      const d = this.nextDomid++;
      if (d >= 0x7ff0) throw new Error("out of domain ids");
      try {
        Deno.statSync(`${this.dir}/domains/${d}`);
      } catch {
        return d;
      }
    }
  }

  /**
   * A new running domain (as the toolstack makes one): its home `/local/domain/<domid>` readable by
   * it, `data/` owned by it, then INTRODUCE. Destroyed when the check ends (through `defer`).
   */
  async domain(
    dom0: Conn,
    defer: (f: () => Promise<void> | void) => void,
    opts: DomainOptions = {},
  ): Promise<Guest> {
    const domid = opts.domid ?? this.freshDomid();
    const info = createDomain(this.dir, domid);
    let guest: Guest | null = null;
    defer(() => {
      guest?.close();
      if (readState(this.dir, domid) !== null) destroyDomain(this.dir, domid);
    });
    if (opts.nodes !== false) await toolstackNodes(dom0, domid);
    guest = new Guest(this, domid, info);
    if (opts.introduce !== false) await introduce(dom0, info);
    return guest;
  }

  /** A client running as an existing domain (created by the caller), closed through `defer`. */
  attach(domid: number, info: SimDomain, defer: (f: () => void) => void): Guest {
    const g = new Guest(this, domid, info);
    defer(() => g.close());
    return g;
  }

  destroy(domid: number): void {
    if (readState(this.dir, domid) !== null) destroyDomain(this.dir, domid);
  }

  shutdown(domid: number, reason = "poweroff"): void {
    shutdownDomain(this.dir, domid, reason);
  }

  /** The domain runs again after a shutdown (what a resume after suspend looks like to xenstored). */
  resumeRunning(domid: number): void {
    const s = readState(this.dir, domid);
    if (s === null) throw new Error(`no domain ${domid}`);
    writeAtomic(statePath(this.dir, domid), `running ${s.uid}\n`);
  }
}

async function must(c: Conn, type: number, payload: string): Promise<string> {
  const r = await c.request(type, payload);
  if (r.type !== type) throw new Error(`toolstack step ${XS[type]} ${payload} failed: ${r.payload}`);
  return r.payload;
}

/** What xl does before INTRODUCE. */
export async function toolstackNodes(dom0: Conn, domid: number): Promise<void> {
  const home = `/local/domain/${domid}`;
  await must(dom0, XS.MKDIR, `${home}\0`);
  await must(dom0, XS.SET_PERMS, `${home}\0n0\0r${domid}\0`);
  await must(dom0, XS.MKDIR, `${home}/data\0`);
  await must(dom0, XS.SET_PERMS, `${home}/data\0n${domid}\0`);
}

export async function introduce(dom0: Conn, d: SimDomain): Promise<void> {
  await must(dom0, XS.INTRODUCE, `${d.domid}\0${d.gfn}\0${d.port}\0`);
}

export { splitNul };
