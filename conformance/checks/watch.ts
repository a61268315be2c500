// Watches: docs/spec/watches.md.
import {
  type Check,
  type Ctx,
  errOf,
  eventsBefore,
  expect,
  notApplicable,
  okOf,
  show,
  type Watcher,
} from "../lib/check.ts";
import { introduce, toolstackNodes } from "../lib/sim.ts";
import { type Conn, nul, XS } from "../lib/wire.ts";
import { createDomain } from "../../src/xen/sim/control.ts";

const WATCHDEPTH = 4;

/** Tokens of the events `w` got for `path` (in order), up to now. */
async function tokensFor(w: Watcher, path: string): Promise<string[]> {
  return (await eventsBefore(w)).filter((e) => e.path === path).map((e) => e.token);
}

/** Register a watch and take its initial event. */
async function watch(w: Watcher, path: string, token: string, depth?: number): Promise<void> {
  await okOf(w, XS.WATCH, depth === undefined ? nul(path, token) : nul(path, token, String(depth)));
  const e = await w.event();
  expect(e.path === path && e.token === token, `initial event ${show(e)} for ${path}`);
}

/** The watch-depth feature for the socket, or for a guest when only guests could have it. */
function depthOnSocket(ctx: Ctx): void {
  if (!ctx.socketHas(WATCHDEPTH)) notApplicable("watch depth is not offered");
}

/** A running guest, not introduced yet, whose features dxenstored-style SET_FEATURE set to `bits`. */
async function guestWithFeatures(ctx: Ctx, c: Conn, clear: number) {
  const env = ctx.sim();
  const domid = env.freshDomid();
  const d = createDomain(env.dir, domid);
  ctx.defer(() => env.destroy(domid));
  const all = await c.request(XS.GET_FEATURE, `${domid}\0`);
  if (all.type !== XS.GET_FEATURE) notApplicable("GET_FEATURE is not offered for domains");
  await okOf(c, XS.SET_FEATURE, nul(String(domid), String(Number(all.payload.slice(0, -1)) & ~clear)));
  await toolstackNodes(c, domid);
  const g = ctx.attach(domid, d);
  await introduce(c, d);
  return g;
}

/** dom0 waits for `token` on `w` (other events skipped). */
async function waitToken(w: Watcher, token: string, path?: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const e = await w.event(Math.max(1, deadline - Date.now()));
    if (e.token === token && (path === undefined || e.path === path)) return e.path;
  }
}

export const checks: Check[] = [
  {
    id: "WATCH-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WATCH, nul(`${base}/not/there`, "a"));
      await okOf(c, XS.WATCH, nul(base, "b"));
      await okOf(c, XS.WATCH, nul(`${base}/x`, ""));
      await okOf(c, XS.WATCH, nul("@releaseDomain", "c"));
      await errOf(c, "EINVAL", XS.WATCH, nul(`${base}/bad path`, "d"));
      await errOf(c, "EINVAL", XS.WATCH, nul(`${base}//x`, "d"));
      await okOf(c, XS.WRITE, `${base}/not/there\0`);
      const got = await tokensFor(c, `${base}/not/there`);
      expect(got.includes("a") && got.includes("b"), `a watch on a path created later: ${show(got)}`);
    },
  },
  {
    id: "WATCH-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const rel = `conformance-${ctx.base.split("/")[2]}-w2`;
      for (const path of [`${base}/x`, rel, "@introduceDomain", "@conformance-w2"]) {
        const reqId = await c.send(XS.WATCH, nul(path, "tok"));
        const reply = await c.recv();
        expect(
          reply.type === XS.WATCH && reply.reqId === reqId,
          `WATCH ${path}: first came type ${reply.type}`,
        );
        const e = await c.recv();
        expect(
          e.type === XS.WATCH_EVENT && e.payload === nul(path, "tok"),
          `initial event ${show(e.payload)}`,
        );
      }
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      await watch(g, "/local/domain/0", "unreadable");
    },
  },
  {
    id: "WATCH-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(c, `${base}/x`, "t");
      await errOf(c, "EEXIST", XS.WATCH, nul(`${base}/x`, "t"));
      const rel = `conformance-${ctx.base.split("/")[2]}-w3`;
      await watch(c, rel, "r");
      await errOf(c, "EEXIST", XS.WATCH, nul(`/local/domain/0/${rel}`, "r"));
      await watch(c, `${base}/x`, "u");
      await watch(c, `${base}/y`, "t");
      await okOf(c, XS.WRITE, `${base}/x\0`);
      const got = (await tokensFor(c, `${base}/x`)).sort();
      expect(got.join() === "t,u", `two tokens on one path fired ${show(got)}`);
    },
  },
  {
    id: "WATCH-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(c, base, "t");
      await okOf(c, XS.UNWATCH, nul(base, "t"));
      await okOf(c, XS.WRITE, `${base}/x\0`);
      const got = await eventsBefore(c);
      expect(got.length === 0, `events after UNWATCH: ${show(got)}`);
      await errOf(c, "ENOENT", XS.UNWATCH, nul(base, "t"));
      await errOf(c, "ENOENT", XS.UNWATCH, nul(`${base}/never`, "t"));
    },
  },
  {
    id: "WATCH-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(c, base, "a");
      await watch(c, `${base}/x`, "b");
      await okOf(c, XS.RESET_WATCHES, "\0");
      await okOf(c, XS.WRITE, `${base}/x\0`);
      const got = await eventsBefore(c);
      expect(got.length === 0, `events after RESET_WATCHES: ${show(got)}`);
      await errOf(c, "ENOENT", XS.UNWATCH, nul(base, "a"));
    },
  },
  {
    id: "WATCH-6",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const tx = Number((await okOf(c, XS.TRANSACTION_START, "\0")).slice(0, -1));
      await okOf(c, XS.WATCH, nul(base, "in-tx"), tx);
      await c.event();
      await okOf(c, XS.WATCH, nul(base, "bogus-tx"), 0x7fffff00);
      await c.event();
      await okOf(c, XS.WRITE, `${base}/x\0`);
      let got = (await tokensFor(c, `${base}/x`)).sort();
      expect(got.join() === "bogus-tx,in-tx", `watches registered with a tx_id fired ${show(got)}`);
      await okOf(c, XS.TRANSACTION_END, "F\0", tx);
      await okOf(c, XS.WRITE, `${base}/y\0`);
      got = await tokensFor(c, `${base}/y`);
      expect(got.includes("in-tx"), "the watch did not survive the end of its transaction");
      await okOf(c, XS.UNWATCH, nul(base, "in-tx"), 0x7fffff01);
    },
  },
  {
    id: "WATCH-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/x/w\0`);
      const watches: Array<[string, string]> = [
        [base, "base"],
        [`${base}/x`, "x"],
        [`${base}/x/y`, "y"],
        [`${base}/xy`, "prefix"],
        [`${base}/x/y/z`, "below"],
        [`${base}/x/w`, "sibling"],
        ["/", "root"],
      ];
      for (const [p, t] of watches) await watch(c, p, t);
      await okOf(c, XS.WRITE, `${base}/x/y\0v`);
      const events = await eventsBefore(c);
      const fired = events.map((e) => e.token).sort();
      expect(fired.join() === "base,root,x,y", `a write of x/y fired ${show(fired)}`);
      expect(events.every((e) => e.path === `${base}/x/y`), `event paths ${show(events)}`);
      await okOf(c, XS.RESET_WATCHES, "\0");
    },
  },
  {
    id: "WATCH-8",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/r/a/b\0`);
      await watch(c, `${base}/r/a/b`, "deep");
      await watch(c, `${base}/r`, "top");
      await okOf(c, XS.RM, `${base}/r\0`);
      const events = await eventsBefore(c);
      const deep = events.filter((e) => e.token === "deep").map((e) => e.path);
      expect(
        deep.length >= 1 && deep.every((p) => p === `${base}/r/a/b`),
        `the watch below fired ${show(deep)}`,
      );
      const top = events.filter((e) => e.token === "top").map((e) => e.path);
      expect(top.includes(`${base}/r`), `the removed node's own watch fired ${show(top)}`);
    },
  },
  {
    id: "WATCH-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const rel = `conformance-${ctx.base.split("/")[2]}-w9`;
      ctx.defer(async () => void await c.request(XS.RM, `/local/domain/0/${rel}\0`));
      await watch(c, rel, "rel");
      await watch(c, base, "abs");
      await okOf(c, XS.WRITE, `/local/domain/0/${rel}/x\0`);
      await okOf(c, XS.WRITE, `${base}/y\0`);
      const events = await eventsBefore(c);
      expect(
        events.some((e) => e.token === "rel" && e.path === `${rel}/x`),
        `relative watch: ${show(events)}`,
      );
      expect(
        events.some((e) => e.token === "abs" && e.path === `${base}/y`),
        `absolute watch: ${show(events)}`,
      );
      // The header of an event, read raw.
      const w = await ctx.dom0();
      await okOf(w, XS.WATCH, nul(base, "raw"));
      await w.recv(); // the initial event, already screened
      await okOf(c, XS.WRITE, `${base}/q\0`);
      const p = await w.recv();
      expect(
        p.type === XS.WATCH_EVENT && p.reqId === 0 && p.txId === 0,
        `event header ${p.type}/${p.reqId}/${p.txId}`,
      );
      expect(p.payload === nul(`${base}/q`, "raw"), `event payload ${show(p.payload)}`);
    },
  },
  {
    id: "WATCH-10",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(w, base, "t");
      const tx = Number((await okOf(c, XS.TRANSACTION_START, "\0")).slice(0, -1));
      for (let i = 0; i < 3; i++) await okOf(c, XS.WRITE, `${base}/a\0${i}`, tx);
      await okOf(c, XS.TRANSACTION_END, "T\0", tx);
      await okOf(c, XS.WRITE, `${base}/b\0`);
      const events = (await eventsBefore(w)).map((e) => e.path);
      const a = events.filter((p) => p === `${base}/a`).length;
      const b = events.filter((p) => p === `${base}/b`).length;
      expect(a === 1 && b === 1, `one commit writing a thrice fired ${a} event(s); one WRITE fired ${b}`);
    },
  },
  {
    id: "WATCH-11",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const token = "t".repeat(3900);
      await watch(w, `${base}/w`, token);
      const long = `${base}/w/${"x".repeat(600)}`;
      await okOf(c, XS.WRITE, `${long}\0`);
      await okOf(c, XS.WRITE, `${base}/w/s\0`);
      const events = (await eventsBefore(w)).map((e) => e.path);
      expect(!events.includes(long), `an event of ${long.length + token.length + 2} bytes was sent`);
      expect(events.includes(`${base}/w/s`), `later events of the watch stopped: ${show(events)}`);
    },
  },
  {
    id: "WATCH-12",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(w, base, "t");
      const expected: string[] = [];
      for (let i = 0; i < 12; i++) {
        const p = `${base}/${i % 3}/${i}`;
        await okOf(c, i % 4 === 3 ? XS.SET_PERMS : XS.WRITE, i % 4 === 3 ? `${base}\0b0\0` : `${p}\0`);
        expected.push(i % 4 === 3 ? base : p);
      }
      const got = (await eventsBefore(w)).map((e) => e.path);
      expect(got.join() === expected.join(), `events in another order: ${show(got)}`);
    },
  },
  {
    id: "WATCH-13",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await watch(w, base, "t");
      for (let i = 0; i < 20; i++) await okOf(c, XS.WRITE, `${base}/${i}\0`);
      const reqId = await w.send(XS.GET_DOMAIN_PATH, "0\0");
      let events = 0;
      for (;;) {
        const p = await w.recv();
        if (p.type !== XS.WATCH_EVENT) {
          expect(p.reqId === reqId, "reply");
          break;
        }
        events++;
      }
      expect(events === 20, `${events} of the 20 events came before the reply to a later request`);
    },
  },
  {
    id: "WATCH-14",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      if (!ctx.socketHas(WATCHDEPTH)) {
        await errOf(c, "EINVAL", XS.WATCH, nul(base, "d", "1"));
        return;
      }
      if (!ctx.hasGuests) notApplicable("the socket offers watch depth, and there are no guests to restrict");
      const g = await guestWithFeatures(ctx, c, WATCHDEPTH);
      await errOf(g, "EINVAL", XS.WATCH, nul("data", "d", "1"));
      await okOf(g, XS.WATCH, nul("data", "d"));
    },
  },
  {
    id: "WATCH-15",
    async run(ctx) {
      depthOnSocket(ctx);
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/q/r\0`);
      for (const d of [0, 1, 2]) await watch(c, base, `d${d}`, d);
      await watch(c, base, "all");
      await watch(c, `${base}/q/r`, "gone", 0);
      const fired = async (path: string) => {
        await okOf(c, XS.WRITE, `${path}\0`);
        return (await tokensFor(c, path)).sort().join();
      };
      expect(await fired(base) === "all,d0,d1,d2", "a write of the watched node");
      expect(await fired(`${base}/a`) === "all,d1,d2", "one level below");
      expect(await fired(`${base}/a/b`) === "all,d2", "two levels below");
      expect(await fired(`${base}/a/b/c`) === "all", "three levels below");
      await okOf(c, XS.RM, `${base}/q\0`);
      const rm = (await eventsBefore(c)).filter((e) => e.token === "gone");
      expect(rm.length > 0, "the removal of an ancestor did not fire a depth-0 watch");
    },
  },
  {
    id: "WATCH-16",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      for (const s of ["@introduceDomain", "@releaseDomain", "@conformance-w16"]) {
        await watch(c, s, "special");
      }
      await okOf(c, XS.WRITE, `${base}/x\0`);
      await okOf(c, XS.RM, `${base}/x\0`);
      const got = (await eventsBefore(c)).filter((e) => e.token === "special");
      expect(got.length === 0, `tree changes fired special watches: ${show(got)}`);
      await okOf(c, XS.RESET_WATCHES, "\0");
      if (!ctx.hasGuests) return;
      await watch(c, "/", "root");
      const releaseWatcher = await ctx.dom0();
      await watch(releaseWatcher, "@releaseDomain", "r");
      const g = await ctx.guest();
      g.close();
      ctx.sim().destroy(g.domid);
      await waitToken(releaseWatcher, "r");
      const specials = (await eventsBefore(c)).filter((e) => e.path.startsWith("@"));
      expect(specials.length === 0, `a watch on / got ${show(specials)}`);
    },
  },
  {
    id: "WATCH-17",
    async run(ctx) {
      ctx.sim();
      const w = await ctx.dom0();
      await watch(w, "@introduceDomain", "intro");
      await watch(w, "@releaseDomain", "release");
      const g = await ctx.guest();
      expect(await waitToken(w, "intro") === "@introduceDomain", "introduction");
      const g2 = await ctx.guest();
      await waitToken(w, "intro");
      ctx.sim().shutdown(g2.domid);
      expect(await waitToken(w, "release") === "@releaseDomain", "shutdown");
      g.close();
      ctx.sim().destroy(g.domid);
      expect(await waitToken(w, "release") === "@releaseDomain", "death");
    },
  },
  {
    id: "WATCH-18",
    async run(ctx) {
      ctx.sim();
      depthOnSocket(ctx);
      const w = await ctx.dom0();
      await watch(w, "@introduceDomain", "intro", 1);
      const a = await ctx.guest();
      const b = await ctx.guest();
      const intro = [await waitToken(w, "intro"), await waitToken(w, "intro")].sort();
      expect(
        intro.join() === [`@introduceDomain/${a.domid}`, `@introduceDomain/${b.domid}`].sort().join(),
        show(intro),
      );
      await watch(w, `@releaseDomain/${a.domid}`, "a-only");
      await watch(w, "@releaseDomain", "any", 1);
      b.close();
      ctx.sim().destroy(b.domid);
      expect(await waitToken(w, "any") === `@releaseDomain/${b.domid}`, "depth-1 release watch");
      a.close();
      ctx.sim().destroy(a.domid);
      expect(await waitToken(w, "a-only") === `@releaseDomain/${a.domid}`, "per-domain release watch");
      const extra = (await eventsBefore(w)).filter((e) => e.token === "a-only");
      expect(extra.length === 0, `the per-domain watch fired for another domain: ${show(extra)}`);
    },
  },
  {
    id: "WATCH-19",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      await watch(g, "@introduceDomain", "intro");
      const before = await okOf(c, XS.GET_PERMS, "@introduceDomain\0");
      ctx.defer(async () => void await c.request(XS.SET_PERMS, `@introduceDomain\0${before}`));
      await okOf(c, XS.SET_PERMS, `@introduceDomain\0${nul("n0")}`);
      await ctx.guest();
      let got = await eventsBefore(g);
      expect(got.length === 0, `a guest without read access got ${show(got)}`);
      await okOf(c, XS.SET_PERMS, `@introduceDomain\0${nul("n0", `r${g.domid}`)}`);
      await ctx.guest();
      const e = await g.event();
      expect(e.path === "@introduceDomain", `with read access the guest got ${show(e)}`);
      got = await eventsBefore(g);
      expect(got.length === 0, `extra events ${show(got)}`);
    },
  },
  {
    id: "WATCH-20",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const g = await ctx.guest();
      await okOf(c, XS.WRITE, `${base}/h/deep\0`);
      await okOf(c, XS.SET_PERMS, `${base}/h\0${nul("n0")}`);
      await okOf(c, XS.SET_PERMS, `${base}/h/deep\0${nul("n0")}`);
      await watch(g, base, "t");
      await okOf(c, XS.WRITE, `${base}/h/deep/x\0secret`);
      await okOf(c, XS.WRITE, `${base}/h/deep\0secret`);
      await okOf(c, XS.WRITE, `${base}/visible\0`);
      const got = (await eventsBefore(g)).map((e) => e.path);
      expect(!got.some((p) => p.startsWith(`${base}/h/`)), `events for unreadable nodes: ${show(got)}`);
      expect(got.includes(`${base}/visible`), `no event for a readable node: ${show(got)}`);
    },
  },
  {
    id: "WATCH-21",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const g = await ctx.guest();
      await okOf(c, XS.WRITE, `${base}/h\0`);
      await okOf(c, XS.SET_PERMS, `${base}/h\0${nul("n0")}`);
      await watch(g, base, "t");
      await okOf(c, XS.WRITE, `${base}/h\0secret`);
      const got = (await eventsBefore(g)).map((e) => e.path);
      expect(
        !got.includes(`${base}/h`),
        `an event for an unreadable node in a readable directory: ${show(got)}`,
      );
    },
  },
  {
    id: "WATCH-23",
    async run(ctx) {
      const lazy = await ctx.dom0();
      const w = await ctx.dom0();
      const base = await ctx.scratch(w);
      // Registered, then never read again: 1200 events of about 2 KB each (2.4 MB) go its way.
      await okOf(lazy, XS.WATCH, nul(base, "t".repeat(2000)));
      const t0 = Date.now();
      for (let batch = 0; batch < 12; batch++) {
        const reqs = Array.from(
          { length: 100 },
          (_, i) => [XS.WRITE, `${base}/n${batch * 100 + i}\0`] as const,
        );
        for (const r of await w.pipeline(reqs)) {
          expect(r.type === XS.WRITE, `a write answered ${show(r.payload)}`);
        }
      }
      const other = await ctx.dom0();
      expect(await okOf(other, XS.READ, `${base}/n0\0`) === "", "another connection");
      const ms = Date.now() - t0;
      expect(ms < 10_000, `1200 writes took ${ms} ms while a watcher did not read`);
    },
  },
  {
    id: "WATCH-22",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const g = await ctx.guest();
      await okOf(c, XS.WRITE, `${base}/r/x\0`);
      await okOf(c, XS.SET_PERMS, `${base}/r\0${nul("n0", `r${g.domid}`)}`);
      await watch(g, `${base}/r`, "t");
      await okOf(c, XS.RM, `${base}\0`);
      const got = (await eventsBefore(g)).map((e) => e.path);
      expect(got.includes(`${base}/r`), `the removal of a readable node was not reported: ${show(got)}`);
      await okOf(c, XS.MKDIR, `${base}\0`);
    },
  },
];
