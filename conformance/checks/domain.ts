// Domains, features, quotas and CONTROL: docs/spec/domains.md.
import {
  type Check,
  type Ctx,
  errOf,
  eventsBefore,
  expect,
  notApplicable,
  okOf,
  outcome,
  show,
} from "../lib/check.ts";
import { introduce, toolstackNodes } from "../lib/sim.ts";
import { type Conn, nul, XS } from "../lib/wire.ts";
import { createDomain } from "../../src/xen/sim/control.ts";
import { Field } from "../../src/xen/ring.ts";

/** A domain-management request's outcome; not applicable when the daemon serves no guests (ENOSYS). */
async function managed(c: Conn, type: number, payload: string): Promise<string | null> {
  const e = await outcome(c, type, payload);
  if (e === "ENOSYS") notApplicable(`${XS[type]} is not offered (ENOSYS): the daemon serves no guests`);
  return e;
}

async function watchFor(c: Conn, path: string, token: string): Promise<void> {
  await okOf(c, XS.WATCH, nul(path, token));
  await c.event();
}

async function waitToken(c: Conn, token: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const e = await c.event(Math.max(1, deadline - Date.now()));
    if (e.token === token) return e.path;
  }
}

/** An existing, running domain that is not introduced (with its toolstack nodes). */
async function bareDomain(ctx: Ctx, c: Conn) {
  const env = ctx.sim();
  const domid = env.freshDomid();
  const d = createDomain(env.dir, domid);
  ctx.defer(() => env.destroy(domid));
  await toolstackNodes(c, domid);
  return d;
}

async function features(c: Conn, domid?: number): Promise<number | null> {
  const r = await c.request(XS.GET_FEATURE, domid === undefined ? "" : `${domid}\0`);
  return r.type === XS.GET_FEATURE ? Number(r.payload.slice(0, -1)) : null;
}

async function quotaOffered(c: Conn): Promise<void> {
  if (await outcome(c, XS.GET_QUOTA, "nodes\0") === "ENOSYS") notApplicable("GET_QUOTA is not offered");
}

export const checks: Check[] = [
  {
    id: "DOM-1",
    async run(ctx) {
      const c = await ctx.dom0();
      for (const bad of ["7x", "70000", "65536", "-1", "+7", " 7", "7 ", "0x7", "", "4294967296"]) {
        await errOf(c, "EINVAL", XS.GET_DOMAIN_PATH, `${bad}\0`);
        await errOf(c, "EINVAL", XS.IS_DOMAIN_INTRODUCED, `${bad}\0`);
      }
      for (const type of [XS.RELEASE, XS.RESUME]) {
        const e = await outcome(c, type, "x1\0");
        expect(e === "EINVAL" || e === "ENOSYS", `${XS[type]} x1: ${e ?? "OK"}`);
      }
    },
  },
  {
    id: "DOM-2",
    async run(ctx) {
      const g = await ctx.guest();
      const other = await ctx.guest();
      await errOf(g, "EACCES", XS.IS_DOMAIN_INTRODUCED, "0\0");
      await errOf(g, "EACCES", XS.INTRODUCE, nul(String(other.domid), "1", "1"));
      await errOf(g, "EACCES", XS.RELEASE, `${other.domid}\0`);
      await errOf(g, "EACCES", XS.RESUME, `${other.domid}\0`);
      await errOf(g, "EACCES", XS.SET_TARGET, nul(String(g.domid), String(other.domid)));
      expect(await okOf(other, XS.READ, `${other.home}/data\0`) === "", "the other domain still works");
    },
  },
  {
    id: "DOM-3",
    async run(ctx) {
      const c = await ctx.dom0();
      for (
        const [arg, want] of [["7", "7"], ["007", "7"], ["0", "0"], ["65535", "65535"], ["32000", "32000"]]
      ) {
        const got = await okOf(c, XS.GET_DOMAIN_PATH, `${arg}\0`);
        expect(got === `/local/domain/${want}\0`, `GET_DOMAIN_PATH ${arg}: ${show(got)}`);
      }
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      expect(await okOf(g, XS.GET_DOMAIN_PATH, "12\0") === "/local/domain/12\0", "from a guest");
    },
  },
  {
    id: "DOM-4",
    async run(ctx) {
      const c = await ctx.dom0();
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, "0\0") === "T\0", "the privileged domain");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, "32752\0") === "T\0", "DOMID_SELF");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, "32000\0") === "F\0", "a domain that does not exist");
      if (!ctx.hasGuests) return;
      const bare = await bareDomain(ctx, c);
      expect(
        await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${bare.domid}\0`) === "F\0",
        "an existing domain not introduced",
      );
      const g = await ctx.guest();
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "T\0", "an introduced domain");
      await watchFor(c, "@releaseDomain", "r");
      g.close();
      ctx.sim().destroy(g.domid);
      await waitToken(c, "r");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "F\0", "a dead domain");
    },
  },
  {
    id: "DOM-5",
    async run(ctx) {
      const c = await ctx.dom0();
      expect(await managed(c, XS.INTRODUCE, nul("0", "1", "1")) === "EINVAL", "INTRODUCE of domain 0");
      for (const d of ["32752", "32767", "65535"]) {
        expect(await managed(c, XS.INTRODUCE, nul(d, "1", "1")) === "EINVAL", `INTRODUCE of reserved ${d}`);
      }
      const none = await managed(c, XS.INTRODUCE, nul("32000", "1", "1"));
      expect(none === "ENOENT", `INTRODUCE of a domain that does not exist: ${none ?? "OK"}`);
      if (!ctx.hasGuests) return;
      const d = await bareDomain(ctx, c);
      await errOf(c, "EINVAL", XS.INTRODUCE, nul(String(d.domid), String(d.gfn), "0"));
      await errOf(c, "EINVAL", XS.INTRODUCE, nul(String(d.domid), String(d.gfn), String(d.port + 77)));
    },
  },
  {
    id: "DOM-6",
    async run(ctx) {
      const c = await ctx.dom0();
      ctx.sim();
      await watchFor(c, "@introduceDomain", "i");
      const g = await ctx.guest();
      expect(await waitToken(c, "i") === "@introduceDomain", "@introduceDomain");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "T\0", "IS_DOMAIN_INTRODUCED");
      await okOf(g, XS.WRITE, "data/hello\0g");
      expect(await okOf(c, XS.READ, `${g.home}/data/hello\0`) === "g", "the ring is served");
    },
  },
  {
    id: "DOM-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      await okOf(c, XS.INTRODUCE, nul(String(g.domid), String(g.info.gfn), String(g.info.port)));
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "T\0", "still introduced");
      await okOf(g, XS.WRITE, "data/again\0g");
      expect(await okOf(c, XS.READ, `${g.home}/data/again\0`) === "g", "the ring is served after it");
    },
  },
  {
    id: "DOM-8",
    async run(ctx) {
      const c = await ctx.dom0();
      expect(await managed(c, XS.RELEASE, "0\0") === "EINVAL", "RELEASE of the privileged domain");
      expect(await managed(c, XS.RELEASE, "32000\0") === "ENOENT", "RELEASE of a domain not introduced");
    },
  },
  {
    id: "DOM-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      await watchFor(c, "@releaseDomain", "r");
      await okOf(c, XS.RELEASE, `${g.domid}\0`);
      await waitToken(c, "r");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "F\0", "still introduced");
      const reqId = g.ring.send(XS.READ, "data\0");
      let answered = true;
      try {
        await g.ring.reply(reqId, 500);
      } catch {
        answered = false;
      }
      expect(!answered, "the released domain's ring is still served");
      await errOf(c, "ENOENT", XS.RELEASE, `${g.domid}\0`);
    },
  },
  {
    id: "DOM-10",
    async run(ctx) {
      const c = await ctx.dom0();
      expect(await managed(c, XS.RESUME, "32000\0") === "ENOENT", "RESUME of a domain not introduced");
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      await watchFor(c, `@releaseDomain`, "r");
      ctx.sim().shutdown(g.domid, "suspend");
      await waitToken(c, "r");
      ctx.sim().resumeRunning(g.domid);
      await okOf(c, XS.RESUME, `${g.domid}\0`);
      ctx.sim().shutdown(g.domid, "suspend");
      await waitToken(c, "r");
    },
  },
  {
    id: "DOM-11",
    async run(ctx) {
      const c = await ctx.dom0();
      expect(
        await managed(c, XS.SET_TARGET, nul("32000", "32001")) === "ENOENT",
        "SET_TARGET of unknown domains",
      );
      if (!ctx.hasGuests) return;
      const a = await ctx.guest();
      const b = await ctx.guest();
      const bare = await bareDomain(ctx, c);
      await errOf(c, "ENOENT", XS.SET_TARGET, nul(String(a.domid), String(bare.domid)));
      await errOf(c, "EINVAL", XS.SET_TARGET, nul(String(a.domid), "0"));
      await okOf(c, XS.SET_TARGET, nul(String(a.domid), String(b.domid)));
      const B = b.domid;
      expect(await outcome(a, XS.READ, `${b.home}/data\0`) === null, "the target's node");
      await watchFor(c, "@releaseDomain", "r");
      b.close();
      ctx.sim().destroy(B);
      await waitToken(c, "r");
      // A new domain with the target's id: the relation must not carry over to it.
      const b2 = await ctx.guest({ domid: B });
      const got = await outcome(a, XS.READ, `${b2.home}/data\0`);
      expect(got === "EACCES", `the old target relation applies to a new domain ${B}: ${got ?? "readable"}`);
    },
  },
  {
    id: "DOM-12",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("b0")}`);
      const g = await ctx.guest();
      await okOf(g, XS.WRITE, `${base}/mine\0g`);
      await okOf(g, XS.WATCH, nul(base, "w"));
      await watchFor(c, "@releaseDomain", "r");
      g.close();
      ctx.sim().destroy(g.domid);
      await waitToken(c, "r");
      expect(await okOf(c, XS.IS_DOMAIN_INTRODUCED, `${g.domid}\0`) === "F\0", "a dead domain is introduced");
      await errOf(c, "ENOENT", XS.READ, `${base}/mine\0`);
    },
  },
  {
    id: "DOM-13",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("b0")}`);
      const g = await ctx.guest();
      const D = g.domid;
      await okOf(g, XS.WRITE, `${base}/old\0g`);
      await okOf(g, XS.WATCH, nul(base, "old-watch"));
      const quota = await c.request(XS.GET_QUOTA, "nodes\0");
      const quotas = quota.type === XS.GET_QUOTA;
      if (quotas) await okOf(c, XS.SET_QUOTA, nul(String(D), "nodes", "3"));
      await watchFor(c, "@releaseDomain", "r");
      g.close();
      ctx.sim().destroy(D);
      await waitToken(c, "r");
      const g2 = await ctx.guest({ domid: D });
      await eventsBefore(g2);
      await okOf(c, XS.WRITE, `${base}/poke\0`);
      const stale = (await eventsBefore(g2)).filter((e) => e.token === "old-watch");
      expect(stale.length === 0, "the new domain got events of the dead one's watch");
      await errOf(c, "ENOENT", XS.READ, `${base}/old\0`);
      if (quotas) {
        const v = await okOf(c, XS.GET_QUOTA, nul(String(D), "nodes"));
        expect(
          v === quota.payload,
          `the new domain inherited the nodes quota ${show(v)} (global ${show(quota.payload)})`,
        );
      }
    },
  },
  {
    id: "FEAT-1",
    async run(ctx) {
      const c = await ctx.dom0();
      if (ctx.socketFeatures === null) notApplicable("GET_FEATURE is not offered");
      expect(Number.isInteger(ctx.socketFeatures), "GET_FEATURE reply");
      await errOf(c, "ENOENT", XS.GET_FEATURE, "32000\0");
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      const other = await ctx.guest();
      const own = await okOf(g, XS.GET_FEATURE, "");
      expect(await okOf(g, XS.GET_FEATURE, `${g.domid}\0`) === own, "GET_FEATURE of its own domid");
      expect(await okOf(c, XS.GET_FEATURE, `${g.domid}\0`) === own, "dom0's view of the guest's features");
      await errOf(g, "EACCES", XS.GET_FEATURE, `${other.domid}\0`);
      await errOf(g, "EACCES", XS.GET_FEATURE, "0\0");
      const bare = await bareDomain(ctx, c);
      expect(await features(c, bare.domid) !== null, "GET_FEATURE of a domain not yet introduced");
    },
  },
  {
    id: "FEAT-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const e = await outcome(c, XS.SET_FEATURE, nul("0", "0"));
      if (e === "ENOSYS") notApplicable("SET_FEATURE is not offered");
      expect(e === "EBUSY", `SET_FEATURE of the privileged domain: ${e ?? "OK"}`);
      await errOf(c, "ENOENT", XS.SET_FEATURE, nul("32000", "0"));
      if (!ctx.hasGuests) return;
      const d = await bareDomain(ctx, c);
      const all = (await features(c, d.domid))!;
      await errOf(c, "EINVAL", XS.SET_FEATURE, nul(String(d.domid), String(all | 0x20000000)));
      await okOf(c, XS.SET_FEATURE, nul(String(d.domid), String(all & ~4)));
      expect(await features(c, d.domid) === (all & ~4), "GET_FEATURE after SET_FEATURE");
      await introduce(c, d);
      await errOf(c, "EBUSY", XS.SET_FEATURE, nul(String(d.domid), String(all)));
      const g = await ctx.guest();
      await errOf(g, "EACCES", XS.SET_FEATURE, nul(String(g.domid), "0"));
    },
  },
  {
    id: "FEAT-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const d = await bareDomain(ctx, c);
      if (await features(c, d.domid) === null) notApplicable("GET_FEATURE is not offered");
      await okOf(c, XS.SET_FEATURE, nul(String(d.domid), "0"));
      const g = ctx.attach(d.domid, d);
      await introduce(c, d);
      await errOf(g, "EINVAL", XS.WATCH, nul("data", "t", "1"));
      const tx = Number((await okOf(g, XS.TRANSACTION_START, "\0")).slice(0, -1));
      await errOf(g, "EBUSY", XS.TRANSACTION_START, "\0", tx);
      expect(g.ring.serverFeatures === 0, `the ring advertises ${g.ring.serverFeatures}`);
      // Without RECONNECTION a reconnection request is ignored.
      g.ring.page.set(Field.CONNECTION, 1);
      g.ring.transport.notify();
      await new Promise((r) => setTimeout(r, 300));
      expect(g.ring.page.get(Field.CONNECTION) === 1, "a reconnection was performed without the feature");
    },
  },
  {
    id: "FEAT-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      const f = await features(c, g.domid);
      if (f === null) notApplicable("GET_FEATURE is not offered");
      expect((g.ring.serverFeatures & 15) === (f & 15), `ring ${g.ring.serverFeatures}, GET_FEATURE ${f}`);
      const d = await bareDomain(ctx, c);
      await okOf(c, XS.SET_FEATURE, nul(String(d.domid), String(f & ~1)));
      const h = ctx.attach(d.domid, d);
      await introduce(c, d);
      expect(
        (h.ring.serverFeatures & 15) === (f & ~1 & 15),
        `restricted ring advertises ${h.ring.serverFeatures}`,
      );
    },
  },
  {
    id: "QUOTA-1",
    async run(ctx) {
      const c = await ctx.dom0();
      await quotaOffered(c);
      const names = (await okOf(c, XS.GET_QUOTA, "")).replace(/\0$/, "").split(" ");
      expect(names.length > 0 && names.every((n) => /^[a-z-]+$/.test(n)), `names ${show(names)}`);
      for (const n of names) {
        expect(/^[0-9]+\0$/.test(await okOf(c, XS.GET_QUOTA, `${n}\0`)), `GET_QUOTA ${n}`);
      }
      await errOf(c, "EINVAL", XS.GET_QUOTA, "no-such-quota\0");
      await errOf(c, "ENOENT", XS.GET_QUOTA, nul("32000", names[0]));
    },
  },
  {
    id: "QUOTA-2",
    async run(ctx) {
      const c = await ctx.dom0();
      await quotaOffered(c);
      const v = Number((await okOf(c, XS.GET_QUOTA, "nodes\0")).slice(0, -1));
      ctx.defer(async () => void await c.request(XS.SET_QUOTA, nul("nodes", String(v))));
      await okOf(c, XS.SET_QUOTA, nul("nodes", String(v + 7)));
      expect(await okOf(c, XS.GET_QUOTA, "nodes\0") === `${v + 7}\0`, "GET_QUOTA after SET_QUOTA");
      await okOf(c, XS.SET_QUOTA, nul("nodes", String(v)));
      await errOf(c, "EINVAL", XS.SET_QUOTA, nul("no-such-quota", "1"));
      await errOf(c, "EINVAL", XS.SET_QUOTA, nul("nodes", "many"));
    },
  },
  {
    id: "QUOTA-3",
    async run(ctx) {
      const c = await ctx.dom0();
      await quotaOffered(c);
      const g = await ctx.guest();
      await errOf(g, "EACCES", XS.GET_QUOTA, "nodes\0");
      await errOf(g, "EACCES", XS.SET_QUOTA, nul(String(g.domid), "nodes", "100000"));
    },
  },
  {
    id: "QUOTA-4",
    async run(ctx) {
      const c = await ctx.dom0();
      await quotaOffered(c);
      const g = await ctx.guest();
      const D = String(g.domid);
      await okOf(c, XS.SET_QUOTA, nul(D, "nodes", "4"));
      await okOf(c, XS.SET_QUOTA, nul(D, "watches", "2"));
      await okOf(c, XS.SET_QUOTA, nul(D, "transactions", "1"));
      let made = 0, refused: string | null = null;
      for (let i = 0; i < 10 && refused === null; i++) {
        refused = await outcome(g, XS.WRITE, `data/n${i}\0`);
        if (refused === null) made++;
      }
      expect(refused === "ENOSPC", `the nodes quota refused with ${refused}`);
      expect(made >= 2 && made <= 4, `${made} nodes were created under a quota of 4 (1 owned already)`);
      const deep = await outcome(g, XS.WRITE, "data/deep/a/b\0");
      expect(deep === "ENOSPC", `a deep write at the quota: ${deep ?? "OK"}`);
      await errOf(g, "ENOENT", XS.READ, "data/deep\0");
      let watches = 0, wref: string | null = null;
      for (let i = 0; i < 5 && wref === null; i++) {
        wref = await outcome(g, XS.WATCH, nul(`data/w${i}`, "t"));
        if (wref === null) watches++;
      }
      expect(wref === "E2BIG", `the watches quota refused with ${wref}`);
      let txs = 0, tref: string | null = null;
      for (let i = 0; i < 4 && tref === null; i++) {
        tref = await outcome(g, XS.TRANSACTION_START, "\0");
        if (tref === null) txs++;
      }
      expect(tref === "ENOSPC", `the transactions quota refused with ${tref}`);
      void watches;
      void txs;
    },
  },
  {
    id: "QUOTA-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const value = "q".repeat(3900);
      await okOf(c, XS.WRITE, `${base}/big\0${value}`);
      const names = Array.from({ length: 1100 }, (_, i) => [XS.MKDIR, `${base}/many/n${i}\0`] as const);
      for (const r of await c.pipeline(names)) expect(r.type === XS.MKDIR, "dom0 refused a node by a quota");
    },
  },
  {
    id: "CTRL-1",
    async run(ctx) {
      const g = await ctx.guest();
      await errOf(g, "EACCES", XS.CONTROL, "help\0");
      await errOf(g, "EACCES", XS.CONTROL, "check\0");
    },
  },
  {
    id: "CTRL-2",
    async run(ctx) {
      const c = await ctx.dom0();
      if (await outcome(c, XS.CONTROL, "help\0") === "ENOSYS") notApplicable("CONTROL is not offered");
      await errOf(c, "EINVAL", XS.CONTROL, "no-such-command\0");
      await errOf(c, "EINVAL", XS.CONTROL, "\0");
    },
  },
  {
    id: "CTRL-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const r = await c.request(XS.CONTROL, "help\0");
      if (r.type === XS.ERROR && r.payload === "ENOSYS\0") notApplicable("CONTROL is not offered");
      expect(r.type === XS.CONTROL, `help: ${show(r.payload)}`);
      const lines = r.payload.replace(/\0$/, "").split("\n").filter((l) => l.trim() !== "");
      expect(lines.length >= 2, `help replied ${show(r.payload)}, not a list of commands`);
    },
  },
];
