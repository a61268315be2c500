// Node requests: docs/spec/operations.md.
import { type Check, errOf, expect, notApplicable, okOf, outcome, show } from "../lib/check.ts";
import { type Conn, nul, PAYLOAD_MAX, splitNul, XS } from "../lib/wire.ts";

/** Make `n` children with 15-byte names under `dir` (one batch). */
async function children(c: Conn, dir: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `child-${String(i).padStart(9, "0")}`);
  for (const r of await c.pipeline(names.map((x) => [XS.MKDIR, `${dir}/${x}\0`] as const))) {
    expect(r.type === XS.MKDIR, `MKDIR answered ${r.type}`);
  }
  return names;
}

interface Part {
  readonly gen: string;
  readonly names: string[];
  readonly end: boolean;
  /** Bytes of names in the part (the offset step). */
  readonly bytes: number;
}

function parsePart(payload: string): Part {
  const nul0 = payload.indexOf("\0");
  expect(nul0 > 0 && /^[0-9]+$/.test(payload.slice(0, nul0)), `DIRECTORY_PART reply ${show(payload)}`);
  const rest = payload.slice(nul0 + 1);
  expect(rest.endsWith("\0"), `DIRECTORY_PART reply does not end with a NUL: ${show(payload)}`);
  const names = rest.slice(0, -1).split("\0");
  const end = names[names.length - 1] === "";
  if (end) names.pop();
  if (rest === "\0") names.length = 0;
  expect(names.every((n) => n !== ""), `an empty name inside a DIRECTORY_PART reply ${show(payload)}`);
  return { gen: payload.slice(0, nul0), names, end, bytes: names.reduce((s, n) => s + n.length + 1, 0) };
}

async function partOf(c: Conn, path: string, offset: number): Promise<Part | null> {
  const r = await c.request(XS.DIRECTORY_PART, nul(path, String(offset)));
  if (r.type === XS.ERROR && r.payload === "ENOSYS\0") return null;
  expect(r.type === XS.DIRECTORY_PART, `DIRECTORY_PART ${path} ${offset}: ${show(r.payload)}`);
  expect(r.payload.length <= PAYLOAD_MAX, `DIRECTORY_PART sent ${r.payload.length} bytes`);
  return parsePart(r.payload);
}

export const checks: Check[] = [
  {
    id: "NODE-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/x\0value`);
      expect(await okOf(c, XS.READ, `${base}/x\0`) === "value", "READ after WRITE");
      await errOf(c, "ENOENT", XS.READ, `${base}/missing\0`);
      await errOf(c, "ENOENT", XS.READ, `${base}/missing/deeper\0`);
    },
  },
  {
    id: "NODE-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/top\0keep`);
      await okOf(c, XS.WRITE, `${base}/top/a/b\0leaf`);
      expect(await okOf(c, XS.READ, `${base}/top\0`) === "keep", "an existing ancestor's value changed");
      expect(await okOf(c, XS.READ, `${base}/top/a\0`) === "", "a created ancestor has a value");
      await okOf(c, XS.SET_PERMS, `${base}/top/a\0${nul("r0")}`);
      await okOf(c, XS.WRITE, `${base}/top/a\0new`);
      expect(await okOf(c, XS.READ, `${base}/top/a\0`) === "new", "overwrite");
      expect(await okOf(c, XS.DIRECTORY, `${base}/top/a\0`) === "b\0", "WRITE changed the children");
      expect(await okOf(c, XS.GET_PERMS, `${base}/top/a\0`) === "r0\0", "WRITE changed the permissions");
    },
  },
  {
    id: "NODE-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.MKDIR, `${base}/m/n\0`);
      expect(await okOf(c, XS.READ, `${base}/m/n\0`) === "", "MKDIR made a value");
      expect(await okOf(c, XS.READ, `${base}/m\0`) === "", "MKDIR's ancestor has a value");
      await okOf(c, XS.WRITE, `${base}/m\0val`);
      await okOf(c, XS.SET_PERMS, `${base}/m\0${nul("b0")}`);
      await okOf(c, XS.MKDIR, `${base}/m\0`);
      expect(await okOf(c, XS.READ, `${base}/m\0`) === "val", "MKDIR of an existing node changed its value");
      expect(await okOf(c, XS.GET_PERMS, `${base}/m\0`) === "b0\0", "MKDIR changed the permissions");
      expect(await okOf(c, XS.DIRECTORY, `${base}/m\0`) === "n\0", "MKDIR changed the children");
    },
  },
  {
    id: "NODE-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/r/a/b\0x`);
      await okOf(c, XS.WRITE, `${base}/r/c\0y`);
      await okOf(c, XS.RM, `${base}/r/a\0`);
      await errOf(c, "ENOENT", XS.READ, `${base}/r/a/b\0`);
      await errOf(c, "ENOENT", XS.READ, `${base}/r/a\0`);
      expect(await okOf(c, XS.DIRECTORY, `${base}/r\0`) === "c\0", "RM removed a sibling or left the node");
      await okOf(c, XS.RM, `${base}/r/missing\0`);
      await errOf(c, "ENOENT", XS.RM, `${base}/r/missing/deeper\0`);
    },
  },
  {
    id: "NODE-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/still\0here`);
      await errOf(c, "EINVAL", XS.RM, "/\0");
      expect(await outcome(c, XS.READ, `${base}/still\0`) === null, "RM / removed nodes");
    },
  },
  {
    id: "NODE-6",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      for (const n of ["b", "a", "c"]) await okOf(c, XS.WRITE, `${base}/d/${n}/deeper\0`);
      const got = splitNul(await okOf(c, XS.DIRECTORY, `${base}/d\0`));
      expect([...got].sort().join(",") === "a,b,c", `DIRECTORY gave ${show(got)}`);
      expect(await okOf(c, XS.DIRECTORY, `${base}/d/a/deeper\0`) === "", "DIRECTORY of a leaf");
      await errOf(c, "ENOENT", XS.DIRECTORY, `${base}/missing\0`);
    },
  },
  {
    id: "NODE-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const dir = `${await ctx.scratch(c)}/big`;
      await children(c, dir, 300);
      await errOf(c, "E2BIG", XS.DIRECTORY, `${dir}\0`);
    },
  },
  {
    id: "NODE-8",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const names = await children(c, `${base}/big`, 300);
      const first = await partOf(c, `${base}/big`, 0);
      if (first === null) notApplicable("DIRECTORY_PART is not offered (ENOSYS)");
      expect(!first.end, "the first part of a 4800-byte list claims to be the whole list");
      const seen: string[] = [...first.names];
      let offset = first.bytes;
      for (let i = 0; i < 10; i++) {
        const p = (await partOf(c, `${base}/big`, offset))!;
        expect(p.gen === first.gen, "the generation changed while nothing changed");
        seen.push(...p.names);
        offset += p.bytes;
        if (p.end) break;
      }
      expect(
        seen.length === names.length && [...seen].sort().join() === names.join(),
        "the parts miss or repeat names",
      );
      const past = (await partOf(c, `${base}/big`, offset + 100))!;
      expect(past.end && past.names.length === 0, "an offset past the end gave names or no end marker");
      await okOf(c, XS.MKDIR, `${base}/empty\0`);
      const empty = (await partOf(c, `${base}/empty`, 0))!;
      const raw = await okOf(c, XS.DIRECTORY_PART, nul(`${base}/empty`, "0"));
      expect(empty.end && raw === `${empty.gen}\0\0`, `DIRECTORY_PART of an empty list: ${show(raw)}`);
    },
  },
  {
    id: "NODE-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/d/a\0`);
      const p1 = await partOf(c, `${base}/d`, 0);
      if (p1 === null) notApplicable("DIRECTORY_PART is not offered (ENOSYS)");
      const p2 = (await partOf(c, `${base}/d`, 0))!;
      expect(p1.gen === p2.gen, "the generation changed without a change");
      await okOf(c, XS.WRITE, `${base}/d/b\0`);
      const p3 = (await partOf(c, `${base}/d`, 0))!;
      expect(p3.gen !== p1.gen, `a new child left the generation at ${p1.gen}`);
      await okOf(c, XS.RM, `${base}/d/a\0`);
      const p4 = (await partOf(c, `${base}/d`, 0))!;
      expect(p4.gen !== p3.gen, `a removed child left the generation at ${p3.gen}`);
    },
  },
  {
    id: "NODE-10",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/p\0`);
      await okOf(c, XS.SET_PERMS, `${base}/p\0${nul("b0", "n32003", "r0")}`);
      const got = await okOf(c, XS.GET_PERMS, `${base}/p\0`);
      expect(got === nul("b0", "n32003", "r0"), `GET_PERMS gave ${show(got)}`);
      await errOf(c, "ENOENT", XS.GET_PERMS, `${base}/missing\0`);
    },
  },
  {
    id: "NODE-11",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/p/child\0`);
      await okOf(c, XS.SET_PERMS, `${base}/p\0${nul("r0")}`);
      expect(await okOf(c, XS.GET_PERMS, `${base}/p\0`) === "r0\0", "SET_PERMS did not apply");
      const child = await okOf(c, XS.GET_PERMS, `${base}/p/child\0`);
      expect(child === "n0\0", `SET_PERMS of the parent changed the child's list to ${show(child)}`);
      await errOf(c, "ENOENT", XS.SET_PERMS, `${base}/missing\0${nul("n0")}`);
    },
  },
  {
    id: "NODE-12",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      const g = await ctx.guest();
      await okOf(c, XS.WRITE, `${base}/secret/child\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/secret\0${nul("n0")}`);
      await errOf(g, "EACCES", XS.READ, `${base}/secret\0`);
      await errOf(g, "EACCES", XS.DIRECTORY, `${base}/secret\0`);
      await errOf(g, "EACCES", XS.GET_PERMS, `${base}/secret\0`);
      const part = await outcome(g, XS.DIRECTORY_PART, nul(`${base}/secret`, "0"));
      expect(part === "EACCES" || part === "ENOSYS", `DIRECTORY_PART of an unreadable node: ${part ?? "OK"}`);
      expect(await outcome(g, XS.READ, `${base}\0`) === null, "READ of a readable node");
    },
  },
  {
    id: "NODE-13",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const g = await ctx.guest();
      const G = g.domid;
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("r0")}`);
      await errOf(g, "EACCES", XS.WRITE, `${base}/x\0v`);
      await errOf(g, "EACCES", XS.MKDIR, `${base}/x/y\0`);
      await okOf(c, XS.WRITE, `${base}/ro\0v`);
      await errOf(g, "EACCES", XS.WRITE, `${base}/ro\0w`);
      await okOf(c, XS.WRITE, `${base}/wr\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/wr\0${nul("n0", `w${G}`)}`);
      await okOf(g, XS.WRITE, `${base}/wr/new/deeper\0g`);
      await okOf(g, XS.MKDIR, `${base}/wr/made\0`);
      expect(await okOf(c, XS.READ, `${base}/wr/new/deeper\0`) === "g", "the guest's write");
    },
  },
  {
    id: "NODE-14",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const g = await ctx.guest();
      const G = g.domid;
      await okOf(c, XS.SET_PERMS, `${base}\0${nul("b0")}`);
      await okOf(c, XS.WRITE, `${base}/ro\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/ro\0${nul("r0")}`);
      await errOf(g, "EACCES", XS.RM, `${base}/ro\0`);
      await okOf(c, XS.WRITE, `${base}/wr/child\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/wr\0${nul("n0", `w${G}`)}`);
      await okOf(g, XS.RM, `${base}/wr\0`);
      await okOf(c, XS.WRITE, `${base}/hidden\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/hidden\0${nul("n0", `w${G}`)}`);
      await errOf(g, "EACCES", XS.RM, `${base}/hidden/missing\0`);
      await okOf(g, XS.RM, `${base}/missing\0`);
    },
  },
];
