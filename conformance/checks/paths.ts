// Paths and values: docs/spec/store.md, "Paths" and "Values".
import { type Check, errOf, expect, okOf, outcome, show } from "../lib/check.ts";
import { nul, XS } from "../lib/wire.ts";

/** Every byte value once, NUL first and last too. */
const ALL_BYTES = "\0" + Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("") + "\0";

export const checks: Check[] = [
  {
    id: "PATH-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      for (const bad of [".", " ", ":", "\x80", "\xff", "\t", "+", "~"]) {
        await errOf(c, "EINVAL", XS.WRITE, `${base}/a${bad}b\0v`);
        await errOf(c, "EINVAL", XS.READ, `${base}/a${bad}b\0`);
      }
      await okOf(c, XS.WRITE, `${base}/AZaz09-_@\0v`);
      expect(
        await okOf(c, XS.READ, `${base}/AZaz09-_@\0`) === "v",
        "a node named with every allowed character",
      );
    },
  },
  {
    id: "PATH-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      for (const bad of ["", `${base}//x`, `${base}/x/`, "//", "a//b", "a/"]) {
        await errOf(c, "EINVAL", XS.WRITE, `${bad}\0v`);
        await errOf(c, "EINVAL", XS.READ, `${bad}\0`);
      }
      await okOf(c, XS.READ, "/\0");
    },
  },
  {
    id: "PATH-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const name = `conformance-${ctx.base.split("/")[2]}-path-3`;
      ctx.defer(async () => void await c.request(XS.RM, `/local/domain/0/${name}\0`));
      await okOf(c, XS.WRITE, `${name}/x\0rel`);
      const v = await outcome(c, XS.READ, `/local/domain/0/${name}/x\0`);
      expect(v === null, `a relative WRITE on a socket did not land below /local/domain/0 (READ: ${v})`);
      expect(await okOf(c, XS.READ, `${name}/x\0`) === "rel", "relative READ");
      if (!ctx.hasGuests) return;
      const g = await ctx.guest();
      await okOf(g, XS.WRITE, `data/x\0mine`);
      expect(await okOf(c, XS.READ, `${g.home}/data/x\0`) === "mine", "a guest's relative WRITE");
      expect(await okOf(g, XS.READ, `${g.home}/data/x\0`) === "mine", "a guest's absolute READ");
    },
  },
  {
    id: "PATH-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      // Outside a domain's home the local part is the whole path: exactly 2048 bytes.
      const outside = `${base}/${"a".repeat(2048 - base.length - 1)}`;
      await okOf(c, XS.WRITE, `${outside}\0v`);
      expect(await okOf(c, XS.READ, `${outside}\0`) === "v", "READ of a 2048-byte path");
      // Below a home, 2048 bytes after /local/domain/0/, sent absolute and relative.
      const top = `conformance-${ctx.base.split("/")[2]}`;
      ctx.defer(async () => void await c.request(XS.RM, `/local/domain/0/${top}\0`));
      const rel = `${top}/${"b".repeat(2048 - top.length - 1)}`;
      await okOf(c, XS.WRITE, `/local/domain/0/${rel}\0abs`);
      expect(await okOf(c, XS.READ, `${rel}\0`) === "abs", "READ of a 2048-byte relative path");
      await okOf(c, XS.WRITE, `${rel}\0rel`);
      expect(await okOf(c, XS.READ, `/local/domain/0/${rel}\0`) === "rel", "2064-byte absolute path");
    },
  },
  {
    id: "PATH-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const long = `${base}/${"a".repeat(3073 - base.length - 1)}`;
      await errOf(c, "EINVAL", XS.WRITE, `${long}\0v`);
      await errOf(c, "EINVAL", XS.READ, `${long}\0`);
      const home = `/local/domain/0/${"c".repeat(3073 - 16)}`;
      await errOf(c, "EINVAL", XS.MKDIR, `${home}\0`);
    },
  },
  {
    id: "PATH-6",
    async run(ctx) {
      const c = await ctx.dom0();
      ctx.defer(async () => void await c.request(XS.RM, "@conformance\0"));
      const cases: Array<[number, string]> = [
        [XS.READ, "@introduceDomain\0"],
        [XS.READ, "@releaseDomain\0"],
        [XS.WRITE, "@conformance\0v"],
        [XS.MKDIR, "@conformance\0"],
        [XS.RM, "@releaseDomain\0"],
        [XS.DIRECTORY, "@introduceDomain\0"],
      ];
      for (const [type, payload] of cases) await errOf(c, "EINVAL", type, payload);
      const part = await outcome(c, XS.DIRECTORY_PART, nul("@introduceDomain", "0"));
      expect(
        part === "EINVAL" || part === "ENOSYS",
        `DIRECTORY_PART of a special path: ${part ?? "success"}`,
      );
      const root = await okOf(c, XS.DIRECTORY, "/\0");
      expect(!root.split("\0").some((n) => n.startsWith("@")), `DIRECTORY / lists ${show(root)}`);
    },
  },
  {
    id: "VAL-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      for (const [name, value] of [["all", ALL_BYTES], ["empty", ""], ["nul", "\0"], ["text", "x\0"]]) {
        await okOf(c, XS.WRITE, `${base}/${name}\0${value}`);
        const back = await okOf(c, XS.READ, `${base}/${name}\0`);
        expect(back === value, `value ${show(value)} read back as ${show(back)}`);
      }
    },
  },
  {
    id: "VAL-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const p = `${await ctx.scratch(c)}/p`;
      await okOf(c, XS.WRITE, `${p}/c\0vc`);
      await okOf(c, XS.WRITE, `${p}\0vp`);
      expect(await okOf(c, XS.DIRECTORY, `${p}\0`) === "c\0", "writing a value dropped the children");
      await okOf(c, XS.WRITE, `${p}/d\0vd`);
      await okOf(c, XS.RM, `${p}/c\0`);
      expect(await okOf(c, XS.READ, `${p}\0`) === "vp", "a child's creation or removal changed the value");
      expect(await okOf(c, XS.READ, `${p}/d\0`) === "vd", "child value");
    },
  },
];
