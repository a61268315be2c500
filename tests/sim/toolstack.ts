/**
 * The simulation's toolstack (what xl does through dom0's socket): create a domain in the simulated
 * Xen, give it its home and data/ nodes, INTRODUCE it; destroy, shut down or RELEASE it; remove its
 * home after it is gone. Domain ids come from a small pool, so they are reused (a new guest on a dead
 * guest's domid must find nothing of it).
 */
import type { Message } from "../../src/protocol/codec.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import type { Rng } from "../helpers/rng.ts";
import type { GuestActor } from "./actors.ts";
import type { Checker } from "./checker.ts";
import type { SimDaemon, SimSocket } from "./daemon.ts";
import type { SimHypervisor } from "./xen.ts";

export class Toolstack {
  private sock: SimSocket | null = null;
  private nextReq = 1;
  /** INTRODUCE requests in flight: reqId → domid. */
  private readonly introducing = new Map<number, number>();
  /** Domains with a lifecycle sequence under way. */
  private readonly busy = new Set<number>();
  readonly stats = { introduced: 0, destroyed: 0, released: 0, shutdowns: 0, introduceFailed: 0 };

  constructor(private readonly hv: SimHypervisor, private readonly guests: readonly GuestActor[]) {}

  private msg(type: number, payload: string): Message {
    return { type, reqId: this.nextReq++, txId: 0, payload };
  }

  act(rng: Rng, d: SimDaemon, out: Array<[SimSocket, Message]>): void {
    if (this.sock === null || this.sock.closed) this.sock = d.connect("toolstack");
    const s = this.sock;
    const g = rng.pick(this.guests);
    const domid = g.domid;
    if (this.busy.has(domid)) return;
    const exists = this.hv.domains.has(domid);
    if (g.state === "down") {
      if (!rng.chance(0.3)) return;
      const dom = exists ? this.hv.domains.get(domid)! : this.hv.create(domid);
      const home = `/local/domain/${domid}`;
      for (
        const m of [
          this.msg(MsgType.MKDIR, `${home}\0`),
          this.msg(MsgType.SET_PERMS, `${home}\0n0\0r${domid}\0`),
          this.msg(MsgType.MKDIR, `${home}/data\0`),
          this.msg(MsgType.SET_PERMS, `${home}/data\0n${domid}\0`),
        ]
      ) out.push([s, m]);
      const intro = this.msg(MsgType.INTRODUCE, `${domid}\0${dom.gfn}\0${dom.port}\0`);
      out.push([s, intro]);
      this.introducing.set(intro.reqId, domid);
      this.busy.add(domid);
      return;
    }
    const r = rng.int(1000);
    if (r < 15) {
      // Destroyed (the hypervisor raises VIRQ_DOM_EXC); xl then removes its home.
      this.hv.destroy(domid);
      g.state = "down";
      this.stats.destroyed++;
      out.push([s, this.msg(MsgType.RM, `/local/domain/${domid}\0`)]);
    } else if (r < 22) {
      // Released (as before a migration), then destroyed; a domain is never introduced twice here.
      out.push([s, this.msg(MsgType.RELEASE, `${domid}\0`)]);
      out.push([s, this.msg(MsgType.RM, `/local/domain/${domid}\0`)]);
      this.hv.destroy(domid);
      g.state = "down";
      this.stats.released++;
    } else if (r < 27) {
      this.hv.shutdown(domid);
      this.stats.shutdowns++;
    }
  }

  collect(d: SimDaemon, chk: Checker): void {
    if (this.sock === null) return;
    for (const r of this.sock.take()) {
      if (r.type === MsgType.WATCH_EVENT) continue;
      chk.ack(chk.replyIdx.get(`${this.sock.client.id}:${r.reqId}`));
      const domid = this.introducing.get(r.reqId);
      if (domid === undefined) continue;
      this.introducing.delete(r.reqId);
      this.busy.delete(domid);
      const g = this.guests.find((x) => x.domid === domid)!;
      if (r.type === MsgType.INTRODUCE) {
        g.introduced(d);
        this.stats.introduced++;
      } else {
        this.stats.introduceFailed++;
        chk.mix(`introduce ${domid} failed ${r.payload}`);
      }
    }
  }

  /**
   * The daemon restarted: the toolstack's connection is gone. An INTRODUCE that was in flight may
   * have taken effect (the guest then runs) or not (the toolstack will do it again).
   */
  restarted(d: SimDaemon): void {
    this.sock = null;
    for (const domid of this.introducing.values()) {
      this.busy.delete(domid);
      const g = this.guests.find((x) => x.domid === domid)!;
      if (d.mgr.ringInfo(domid) !== null) g.introduced(d);
    }
    this.introducing.clear();
  }
}
