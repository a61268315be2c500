// Permissions: docs/spec/store.md, "Permissions".
import { type Check, type Ctx, type Endpoint, errOf, expect, okOf, outcome, show } from "../lib/check.ts";
import type { Guest } from "../lib/sim.ts";
import { type Conn, nul, XS } from "../lib/wire.ts";

/** What `who` may do with `path`: "rw", "r-", "-w" or "--" (by trying: READ, then WRITE of a child). */
async function access(who: Endpoint, path: string): Promise<string> {
  const r = await outcome(who, XS.READ, `${path}\0`);
  const w = await outcome(who, XS.WRITE, `${path}\0written`);
  for (const e of [r, w]) {
    if (e !== null && e !== "EACCES") throw new Error(`access check of ${path}: ${e}`);
  }
  return `${r === null ? "r" : "-"}${w === null ? "w" : "-"}`;
}

/** A node made by dom0 with the given permission list. */
async function node(c: Conn, path: string, perms: string[]): Promise<string> {
  await okOf(c, XS.WRITE, `${path}\0v`);
  await okOf(c, XS.SET_PERMS, `${path}\0${nul(...perms)}`);
  return path;
}

/** dom0 watches @releaseDomain, destroys the guest and waits for the event: the daemon has cleaned up. */
async function destroyAndWait(ctx: Ctx, g: Guest): Promise<void> {
  const w = await ctx.dom0();
  await okOf(w, XS.WATCH, "@releaseDomain\0gone\0");
  await w.event();
  g.close();
  ctx.sim().destroy(g.domid);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const e = await w.event(Math.max(1, deadline - Date.now()));
    if (e.token === "gone") break;
  }
  // Cleanup may follow the event in the same turn; a round trip orders us after it.
  await okOf(w, XS.UNWATCH, "@releaseDomain\0gone\0");
}

export const checks: Check[] = [
  {
    id: "PERM-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const g = await ctx.guest();
      await okOf(g, XS.WRITE, "data/own\0g");
      await okOf(g, XS.SET_PERMS, `data/own\0${nul(`n${g.domid}`)}`);
      const p = `${g.home}/data/own`;
      expect(await okOf(c, XS.READ, `${p}\0`) === "g", "dom0 READ of a guest-owned n-node");
      await okOf(c, XS.WRITE, `${p}\0d`);
      await okOf(c, XS.WRITE, `${p}/child\0d`);
      await okOf(c, XS.SET_PERMS, `${p}\0${nul(`n${g.domid}`, "r0")}`);
      await okOf(c, XS.RM, `${p}\0`);
    },
  },
  {
    id: "PERM-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const a = await ctx.guest();
      const A = a.domid;
      const cases: Array<[string[], string]> = [
        [["r0"], "r-"], // entry 0 for everyone not listed
        [["b0", `n${A}`], "--"], // its own entry overrides entry 0
        [["n0", `r${A}`, `b${A}`], "r-"], // the first entry naming it counts
        [["n0", `w${A}`], "-w"],
        [["n0", `b${A}`], "rw"],
      ];
      let i = 0;
      for (const [perms, want] of cases) {
        const p = await node(c, `${base}/n${i++}`, perms);
        const got = await access(a, p);
        expect(got === want, `permissions ${perms.join(" ")}: guest ${A} got ${got}, expected ${want}`);
      }
      await okOf(a, XS.WRITE, "data/mine\0x");
      await okOf(a, XS.SET_PERMS, `data/mine\0${nul(`n${A}`)}`);
      const own = await access(a, `${a.home}/data/mine`);
      expect(own === "rw", `the owner of an n-node got ${own}`);
    },
  },
  {
    id: "PERM-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const dm = await ctx.guest();
      const t = await ctx.guest();
      const D = dm.domid, T = t.domid;
      await okOf(c, XS.SET_TARGET, nul(String(D), String(T)));
      const cases: Array<[string[], string]> = [
        [["n0", `r${T}`, `b${D}`], "rw"], // the target's read-only entry first: still its own b
        [["n0", `b${D}`, `r${T}`], "rw"],
        [["n0", `r${D}`, `w${T}`], "rw"], // union
        [["n0", `b${T}`], "rw"],
        [["n0", `r${T}`], "r-"],
        [[`n${T}`], "rw"], // owned by the target
      ];
      let i = 0;
      for (const [perms, want] of cases) {
        const p = await node(c, `${base}/n${i++}`, perms);
        const got = await access(dm, p);
        expect(
          got === want,
          `with target ${T}, permissions ${perms.join(" ")} gave ${D} ${got}, expected ${want}`,
        );
      }
      // As the owner's stand-in it may set the target's node's permissions.
      await okOf(dm, XS.SET_PERMS, `${base}/n5\0${nul(`n${T}`, `r${D}`)}`);
    },
  },
  {
    id: "PERM-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await node(c, `${base}/p`, ["r0", "w0"]);
      await okOf(c, XS.WRITE, `${base}/p/a/b\0x`);
      for (const q of ["p/a", "p/a/b"]) {
        const got = await okOf(c, XS.GET_PERMS, `${base}/${q}\0`);
        expect(got === nul("r0", "w0"), `${q} created by dom0 under r0 w0 has ${show(got)}`);
      }
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      const G = g.domid;
      await node(c, `${base}/w`, ["r0", `b${G}`]);
      await okOf(g, XS.WRITE, `${base}/w/x/y\0g`);
      for (const q of ["w/x", "w/x/y"]) {
        const got = await okOf(c, XS.GET_PERMS, `${base}/${q}\0`);
        expect(got === nul(`r${G}`, `b${G}`), `${q} created by ${G} under r0 b${G} has ${show(got)}`);
      }
    },
  },
  {
    id: "PERM-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const g = await ctx.guest();
      const G = g.domid;
      const p = await node(c, `${base}/x`, ["n0", `b${G}`]);
      await errOf(g, "EACCES", XS.SET_PERMS, `${p}\0${nul("n0", `b${G}`, "r1")}`);
      expect(
        await okOf(c, XS.GET_PERMS, `${p}\0`) === nul("n0", `b${G}`),
        "refused SET_PERMS changed the list",
      );
      await okOf(g, XS.WRITE, "data/own\0x");
      await okOf(g, XS.SET_PERMS, `data/own\0${nul(`n${G}`, "r0")}`);
    },
  },
  {
    id: "PERM-6",
    async run(ctx) {
      const g = await ctx.guest();
      const G = g.domid;
      await okOf(g, XS.WRITE, "data/own\0x");
      await errOf(g, "EPERM", XS.SET_PERMS, `data/own\0${nul("n0")}`);
      const perms = await okOf(g, XS.GET_PERMS, "data/own\0");
      expect(perms.startsWith(`n${G}\0`), `after a refused change of owner the list is ${show(perms)}`);
    },
  },
  {
    id: "PERM-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const p = `${await ctx.scratch(c)}/x`;
      await okOf(c, XS.WRITE, `${p}\0`);
      await okOf(c, XS.SET_PERMS, `${p}\0${nul("n0", "r010", "w00", "b0", "n00000")}`);
      const got = await okOf(c, XS.GET_PERMS, `${p}\0`);
      expect(
        got === nul("n0", "r10", "w0", "b0", "n0"),
        `entries with leading zeros came back as ${show(got)}`,
      );
      for (
        const bad of ["R0", "x0", "r", "r+5", "r-5", "r 5", "r5 ", "r0x5", "r70000", "r65536", "", "rb5"]
      ) {
        await errOf(c, "EINVAL", XS.SET_PERMS, `${p}\0${nul("n0", bad)}`);
      }
      await errOf(c, "EINVAL", XS.SET_PERMS, `${p}\0`);
    },
  },
  {
    id: "PERM-8",
    async run(ctx) {
      const c = await ctx.dom0();
      const p = `${await ctx.scratch(c)}/x`;
      await okOf(c, XS.WRITE, `${p}\0`);
      await errOf(c, "ENOENT", XS.SET_PERMS, `${p}\0${nul("n32000")}`);
      await errOf(c, "ENOENT", XS.SET_PERMS, `${p}\0${nul("b32700", "r0")}`);
      expect(await okOf(c, XS.GET_PERMS, `${p}\0`) === "n0\0", "a refused owner was applied");
    },
  },
  {
    id: "PERM-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await node(c, `${base}/x`, ["n0", "r32001"]);
      expect(await okOf(c, XS.GET_PERMS, `${base}/x\0`) === nul("n0", "r32001"), "the entry was not kept");
      await okOf(c, XS.WRITE, `${base}/x/child\0`);
      const child = await okOf(c, XS.GET_PERMS, `${base}/x/child\0`);
      expect(child === nul("n0", "r32001"), `a child inherited ${show(child)}`);
    },
  },
  {
    id: "PERM-10",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const D = ctx.sim().freshDomid();
      const p = await node(c, `${base}/early`, ["n0", `r${D}`]);
      const g = await ctx.guest({ domid: D });
      const got = await outcome(g, XS.READ, `${p}\0`);
      expect(got === "EACCES", `an entry set before domain ${D} existed let it read (${got ?? "OK"})`);
      await okOf(c, XS.SET_PERMS, `${p}\0${nul("n0", `r${D}`)}`);
      expect(await outcome(g, XS.READ, `${p}\0`) === null, "the entry set again now the domain exists");
    },
  },
  {
    id: "PERM-11",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const g = await ctx.guest();
      const G = g.domid;
      await node(c, `${base}/shared`, ["n0", `b${G}`]);
      await node(c, `${base}/readable`, ["n0", `r${G}`, "w1"]);
      await okOf(g, XS.WRITE, `${base}/shared/mine\0g`);
      await destroyAndWait(ctx, g);
      const left = await outcome(c, XS.READ, `${base}/shared/mine\0`);
      expect(left === "ENOENT", `a node the dead domain owned is still there (${left ?? "readable"})`);
      const perms = await okOf(c, XS.GET_PERMS, `${base}/readable\0`);
      expect(perms === nul("n0", "w1"), `the dead domain's entry is still in ${show(perms)}`);
      const shared = await okOf(c, XS.GET_PERMS, `${base}/shared\0`);
      expect(shared === "n0\0", `the dead domain's entry is still in ${show(shared)}`);
    },
  },
  {
    id: "PERM-12",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const g = await ctx.guest();
      await node(c, `${base}/hidden`, ["n0"]);
      for (
        const [type, payload] of [
          [XS.READ, `${base}/hidden/missing\0`],
          [XS.DIRECTORY, `${base}/hidden/missing/deeper\0`],
          [XS.GET_PERMS, `${base}/hidden/missing\0`],
          [XS.RM, `${base}/hidden/missing/deeper\0`],
        ] as const
      ) {
        await errOf(g, "EACCES", type, payload);
      }
      await errOf(g, "ENOENT", XS.READ, `${base}/missing\0`);
    },
  },
  {
    id: "PERM-13",
    async run(ctx) {
      const c = await ctx.dom0();
      for (const special of ["@introduceDomain", "@releaseDomain"]) {
        const before = await okOf(c, XS.GET_PERMS, `${special}\0`);
        expect(/^[nrwb][0-9]+\0/.test(before), `GET_PERMS ${special}: ${show(before)}`);
        ctx.defer(async () => void await c.request(XS.SET_PERMS, `${special}\0${before}`));
        await okOf(c, XS.SET_PERMS, `${special}\0${nul("n0", "r32002")}`);
        const after = await okOf(c, XS.GET_PERMS, `${special}\0`);
        expect(after === nul("n0", "r32002"), `SET_PERMS then GET_PERMS of ${special}: ${show(after)}`);
      }
      await errOf(c, "ENOENT", XS.GET_PERMS, "@conformance\0");
      await errOf(c, "ENOENT", XS.SET_PERMS, `@conformance\0${nul("n0")}`);
    },
  },
];
