// The ring transport: docs/spec/ring.md. Guests only; the raw page is driven directly where the check is
// about what the daemon does with it (the guest client would hide it).
import { type Check, errOf, eventsBefore, expect, notApplicable, okOf, outcome, show } from "../lib/check.ts";
import { type Guest, introduce, toolstackNodes } from "../lib/sim.ts";
import { type Conn, header, nul, XS } from "../lib/wire.ts";
import { createDomain } from "../../src/xen/sim/control.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import { Field, REQUESTS, ringProduce, ringUsed } from "../../src/xen/ring.ts";

const RECONNECTION = 1;
const ERROR = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `cond` holds, up to `ms`; true if it did. */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Put raw bytes on the request queue (all of them must fit) and signal. */
function produce(g: Guest, bytes: Uint8Array, signal = true): void {
  const n = ringProduce(g.ring.page, REQUESTS, bytes);
  if (n !== bytes.length) throw new Error(`only ${n} of ${bytes.length} bytes fit in the request queue`);
  if (signal) g.ring.transport.notify();
}

/** Is the ring still served? A request answered within `ms`. */
async function served(g: Guest, ms = 500): Promise<boolean> {
  try {
    const id = g.ring.send(XS.GET_DOMAIN_PATH, "1\0");
    await g.ring.reply(id, ms);
    return true;
  } catch {
    return false;
  }
}

async function releaseWatch(c: Conn): Promise<void> {
  await okOf(c, XS.WATCH, nul("@releaseDomain", "ring-release"));
  await c.event();
}

export const checks: Check[] = [
  {
    id: "RING-1",
    async run(ctx) {
      const g = await ctx.guest();
      const p = g.ring.page;
      expect(await okOf(g, XS.GET_DOMAIN_PATH, `${g.domid}\0`) === `${g.home}\0`, "a request over the ring");
      expect(p.get(Field.REQ_CONS) === p.get(Field.REQ_PROD), "the request was answered but not consumed");
      expect(p.get(Field.RSP_CONS) === p.get(Field.RSP_PROD), "the reply was read but more was produced");
      expect(p.get(Field.ERROR) === 0 && p.get(Field.CONNECTION) === 0, "error or connection fields set");
    },
  },
  {
    id: "RING-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const env = ctx.sim();
      const domid = env.freshDomid();
      const d = createDomain(env.dir, domid);
      ctx.defer(() => env.destroy(domid));
      await toolstackNodes(c, domid);
      const g = ctx.attach(domid, d);
      const start = 0xffffff00;
      for (const f of [Field.REQ_CONS, Field.REQ_PROD, Field.RSP_CONS, Field.RSP_PROD]) {
        g.ring.page.set(f, start);
      }
      await introduce(c, d);
      if (g.ring.page.get(Field.REQ_PROD) !== start) {
        notApplicable("the daemon reset the indices at INTRODUCE (allowed); their wrap cannot be reached");
      }
      const value = "w".repeat(300);
      for (let i = 0; i < 4; i++) await okOf(g, XS.WRITE, `data/x${i}\0${value}`);
      for (let i = 0; i < 4; i++) expect(await okOf(g, XS.READ, `data/x${i}\0`) === value, "across the wrap");
      expect(g.ring.page.get(Field.REQ_PROD) < start, "the indices did not wrap");
    },
  },
  {
    id: "RING-3",
    async run(ctx) {
      const g = await ctx.guest();
      // Under a guest's usual node-size quota (2048), over a queue's 1024 bytes each way.
      const value = "v".repeat(1900);
      await okOf(g, XS.WRITE, `data/big\0${value}`);
      expect(await okOf(g, XS.READ, "data/big\0") === value, "a 1900-byte value through 1024-byte queues");
      const ids = Array.from(
        { length: 12 },
        (_, i) => g.ring.send(XS.WRITE, `data/p${i}\0${"x".repeat(200)}`),
      );
      for (const id of ids) expect((await g.ring.reply(id)).type === XS.WRITE, "pipelined requests");
    },
  },
  {
    id: "RING-4",
    async run(ctx) {
      const g = await ctx.guest();
      expect(ringUsed(g.ring.page, REQUESTS) === 0, "the request queue is not empty");
      // Eight requests of exactly 128 bytes: one full queue.
      const parts: Uint8Array[] = [];
      for (let i = 0; i < 8; i++) {
        parts.push(encodeMessage(XS.READ, 9000 + i, 0, `data/${"f".repeat(106)}\0`));
      }
      const all = new Uint8Array(1024);
      parts.forEach((p, i) => all.set(p, i * 128));
      produce(g, all);
      expect(ringUsed(g.ring.page, REQUESTS) <= 1024, "indices");
      for (let i = 0; i < 8; i++) {
        const r = await g.ring.reply(9000 + i, 3000);
        expect(r.type === XS.ERROR && r.payload === "ENOENT\0", `reply ${i}: ${show(r.payload)}`);
      }
    },
  },
  {
    id: "RING-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      const token = "k".repeat(1000);
      await okOf(g, XS.WATCH, nul("data", token));
      await g.event();
      for (let i = 0; i < 8; i++) await okOf(c, XS.WRITE, `${g.home}/data/e${i}\0`);
      let worst = 0;
      for (let i = 0; i < 20; i++) {
        const used = (g.ring.page.get(Field.RSP_PROD) - g.ring.page.get(Field.RSP_CONS)) >>> 0;
        worst = Math.max(worst, used);
        await sleep(10);
      }
      expect(worst <= 1024, `the response queue held ${worst} bytes`);
      const got: string[] = [];
      for (let i = 0; i < 8; i++) got.push((await g.event()).path);
      expect(got.join() === Array.from({ length: 8 }, (_, i) => `data/e${i}`).join(), `events ${show(got)}`);
    },
  },
  {
    id: "RING-6",
    async run(ctx) {
      const g = await ctx.guest();
      g.evtchn.drain();
      const id = g.ring.send(XS.GET_DOMAIN_PATH, "3\0");
      expect(await g.evtchn.wait(3000), "no signal after the daemon produced a reply");
      expect((await g.ring.reply(id, 1)).payload === "/local/domain/3\0", "the reply");
      // A request longer than the queue: the first 1024 bytes fill it; the daemon must take them and signal.
      const msg = encodeMessage(XS.WRITE, 9100, 0, `data/long\0${"z".repeat(2000)}`);
      g.evtchn.drain();
      produce(g, msg.subarray(0, 1024));
      expect(await g.evtchn.wait(3000), "no signal after the daemon drained a full request queue");
      expect(
        await until(() => ringUsed(g.ring.page, REQUESTS) === 0),
        "the daemon left the full queue as it was",
      );
      produce(g, msg.subarray(1024));
      expect((await g.ring.reply(9100, 3000)).type === XS.WRITE, "the long request's reply");
    },
  },
  {
    id: "RING-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      const hasError = (g.ring.serverFeatures & ERROR) !== 0;
      const h = header(XS.READ, 9200, 0, 5000);
      const after = encodeMessage(XS.READ, 9201, 0, "data\0");
      const both = new Uint8Array(h.length + after.length);
      both.set(h);
      both.set(after, h.length);
      produce(g, both);
      if (hasError) {
        expect(await until(() => g.ring.page.get(Field.ERROR) === 3), "the error indicator is not 3");
      } else await sleep(300);
      let answered = false;
      try {
        await g.ring.reply(9201, 500);
        answered = true;
      } catch { /* not served: right */ }
      expect(!answered, "a request after the oversized header was answered");
      expect(
        await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "T\0",
        "the domain is no longer introduced",
      );
    },
  },
  {
    id: "RING-8",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      const hasError = (g.ring.serverFeatures & ERROR) !== 0;
      await releaseWatch(c);
      const p = g.ring.page;
      p.set(Field.REQ_PROD, (p.get(Field.REQ_CONS) + 5000) >>> 0);
      g.ring.transport.notify();
      if (hasError) expect(await until(() => p.get(Field.ERROR) === 2), "the error indicator is not 2");
      else await sleep(300);
      expect(
        await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "T\0",
        "a ring fault ended the introduction",
      );
      const events = (await eventsBefore(c)).filter((e) => e.token === "ring-release");
      expect(events.length === 0, `a ring fault fired ${show(events)}`);
      expect(await outcome(c, XS.READ, "/\0") === null, "dom0 is affected");
      const other = await ctx.guest();
      expect(await outcome(other, XS.READ, "data\0") === null, "another guest is affected");
    },
  },
  {
    id: "RING-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      if ((g.ring.serverFeatures & RECONNECTION) === 0) notApplicable("the ring does not offer reconnection");
      await okOf(g, XS.WATCH, nul("data", "old"));
      await g.event();
      const tx = Number((await okOf(g, XS.TRANSACTION_START, "\0")).slice(0, -1));
      await g.ring.reconnect(3000);
      const p = g.ring.page;
      expect(p.get(Field.REQ_CONS) === p.get(Field.REQ_PROD), "the request queue was not emptied");
      expect(p.get(Field.RSP_CONS) === p.get(Field.RSP_PROD), "the response queue was not emptied");
      await okOf(c, XS.WRITE, `${g.home}/data/poke\0`);
      const stale = (await eventsBefore(g)).filter((e) => e.token === "old");
      expect(stale.length === 0, `a watch survived the reconnection: ${show(stale)}`);
      await errOf(g, "ENOENT", XS.READ, "data\0", tx);
    },
  },
  {
    id: "RING-10",
    async run(ctx) {
      const g = await ctx.guest();
      if ((g.ring.serverFeatures & RECONNECTION) === 0) notApplicable("the ring does not offer reconnection");
      produce(g, header(XS.READ, 9300, 0, 5000));
      if ((g.ring.serverFeatures & ERROR) !== 0) {
        expect(await until(() => g.ring.page.get(Field.ERROR) !== 0), "no fault was reported");
      }
      await g.ring.reconnect(3000);
      expect(
        g.ring.page.get(Field.ERROR) === 0,
        `error ${g.ring.page.get(Field.ERROR)} after the reconnection`,
      );
      expect(await served(g, 2000), "the ring is not served after the reconnection");
    },
  },
];
