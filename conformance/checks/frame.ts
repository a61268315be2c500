// Framing, limits and errors: docs/spec/wire.md.
import { type Check, describe, errnoOf, errOf, expect, fail, okOf, outcome, show } from "../lib/check.ts";
import { Closed, type Conn, header, nul, PAYLOAD_MAX, Timeout, XS } from "../lib/wire.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";

/** The connection still answers a plain request. */
async function stillServes(c: Conn, after: string): Promise<void> {
  let r;
  try {
    r = await c.request(XS.READ, "/\0");
  } catch (e) {
    fail(`after ${after} the connection no longer answers (${(e as Error).message})`);
  }
  expect(r.type === XS.READ, `after ${after}, READ / answered ${describe(r)}`);
}

/** Write raw bytes, tolerating a peer that closes first (what FRAME-4 requires it to do). */
async function writeTolerant(c: Conn, b: Uint8Array): Promise<void> {
  try {
    await c.writeRaw(b);
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset) return;
    throw e;
  }
}

export const checks: Check[] = [
  {
    id: "FRAME-1",
    async run(ctx) {
      const c = await ctx.dom0();
      // Two messages in one write: each reply must parse where the previous one ended.
      const m1 = encodeMessage(XS.GET_DOMAIN_PATH, 0x01020304, 0, "3\0");
      const m2 = encodeMessage(XS.READ, 0xa0b0c0d0, 0, "/\0");
      const both = new Uint8Array(m1.length + m2.length);
      both.set(m1);
      both.set(m2, m1.length);
      await c.writeRaw(both);
      const r1 = await c.recv();
      const r2 = await c.recv();
      expect(
        r1.reqId === 0x01020304 && r1.type === XS.GET_DOMAIN_PATH,
        `first reply ${describe(r1)} #${r1.reqId}`,
      );
      expect(r1.payload === "/local/domain/3\0", `GET_DOMAIN_PATH 3 payload ${show(r1.payload)}`);
      expect(r2.reqId === 0xa0b0c0d0 && r2.type === XS.READ, `second reply ${describe(r2)} #${r2.reqId}`);
    },
  },
  {
    id: "FRAME-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const m = encodeMessage(XS.GET_DOMAIN_PATH, 77, 0, "12\0");
      for (let i = 0; i < m.length; i++) {
        await c.writeRaw(m.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
      const r = await c.recv(3000);
      expect(
        r.reqId === 77 && r.payload === "/local/domain/12\0",
        `byte-by-byte request answered ${describe(r)}`,
      );
      // A message with no payload at all, alone on the connection: it is complete once its header is in.
      await c.send(27, "", { reqId: 78 });
      try {
        const z = await c.recv(2000);
        expect(z.reqId === 78, `a request with len 0 answered #${z.reqId}`);
      } catch (e) {
        if (e instanceof Timeout) fail("a request with len 0, alone, got no reply within 2 s");
        throw e;
      }
    },
  },
  {
    id: "FRAME-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const path = `${await ctx.scratch(c)}/big`;
      const value = "v".repeat(PAYLOAD_MAX - path.length - 1);
      const r = await c.request(XS.WRITE, `${path}\0${value}`);
      // A refusal by a quota is allowed here (QUOTA-5 is about that); closing or ignoring is not.
      expect(r.type === XS.WRITE || r.type === XS.ERROR, `a 4096-byte WRITE answered type ${r.type}`);
      if (r.type === XS.WRITE) {
        const back = await okOf(c, XS.READ, `${path}\0`);
        expect(back === value, `READ returned ${back.length} bytes, ${value.length} were written`);
      }
      await stillServes(c, "a 4096-byte request");
    },
  },
  {
    id: "FRAME-4",
    async run(ctx) {
      for (const len of [PAYLOAD_MAX + 1, 0xffffffff]) {
        const c = await ctx.dom0();
        // The oversized header, bytes that would complete it, then a valid request that must not be answered.
        await writeTolerant(c, header(XS.READ, 9, 0, len));
        if (len === PAYLOAD_MAX + 1) await writeTolerant(c, new Uint8Array(len));
        await writeTolerant(c, encodeMessage(XS.READ, 10, 0, "/\0"));
        let replies = 0;
        let closed = false;
        const deadline = Date.now() + 2000;
        try {
          for (;;) {
            await c.recv(Math.max(1, deadline - Date.now()));
            replies++;
          }
        } catch (e) {
          if (e instanceof Closed) closed = true;
          else if (!(e instanceof Timeout)) throw e;
        }
        expect(replies === 0, `a header announcing ${len} bytes got ${replies} repl(ies)`);
        expect(closed, `the connection stayed open after a header announcing ${len} bytes`);
      }
    },
  },
  {
    id: "FRAME-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const dir = `${await ctx.scratch(c)}/many`;
      const reqs: Array<[number, string]> = [];
      // 300 children of 15 + 1 bytes: a 4800-byte list.
      for (let i = 0; i < 300; i++) reqs.push([XS.MKDIR, `${dir}/child-${String(i).padStart(9, "0")}\0`]);
      for (const r of await c.pipeline(reqs)) expect(r.type === XS.MKDIR, `MKDIR answered ${describe(r)}`);
      const r = await c.request(XS.DIRECTORY, `${dir}\0`);
      expect(r.payload.length <= PAYLOAD_MAX, `DIRECTORY sent a ${r.payload.length}-byte reply`);
      // The screen of every packet received during the run (see run.ts) adds what other checks provoked.
    },
  },
  {
    id: "FRAME-6",
    async run(ctx) {
      const c = await ctx.dom0();
      for (const reqId of [0, 0xffffffff, 0x12345678]) {
        await c.send(XS.READ, "/\0", { reqId });
        const r = await c.recv();
        expect(r.reqId === reqId && r.txId === 0 && r.type === XS.READ, `READ #${reqId}: ${describe(r)}`);
      }
      await c.send(XS.READ, "/no-such-node-anywhere\0", { reqId: 4 });
      const e = await c.recv();
      expect(e.reqId === 4 && e.type === XS.ERROR, `failing READ #4: ${describe(e)} #${e.reqId}`);
      const tx = Number((await okOf(c, XS.TRANSACTION_START, "\0")).replace(/\0$/, ""));
      await c.send(XS.READ, "/\0", { reqId: 5, txId: tx });
      const t = await c.recv();
      expect(
        t.reqId === 5 && t.txId === tx && t.type === XS.READ,
        `READ in transaction ${tx}: tx_id ${t.txId}`,
      );
      await c.send(XS.READ, "/\0", { reqId: 6, txId: 0x7ffffff1 });
      const u = await c.recv();
      expect(
        u.reqId === 6 && u.txId === 0x7ffffff1,
        `error reply to an unknown tx_id echoed tx_id ${u.txId}`,
      );
      await okOf(c, XS.TRANSACTION_END, "F\0", tx);
    },
  },
  {
    id: "FRAME-7",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const reqs: Array<[number, string]> = [];
      for (let i = 0; i < 24; i++) {
        const k = i % 4;
        reqs.push(
          k === 0
            ? [XS.WRITE, `${base}/n${i}\0${i}`]
            : k === 1
            ? [XS.READ, `${base}/missing${i}\0`]
            : k === 2
            ? [XS.GET_DOMAIN_PATH, `${i}\0`]
            : [XS.READ, `${base}/n${i - 3}\0`],
        );
      }
      // pipeline() fails if a reply arrives for another request than the next one.
      const replies = await c.pipeline(reqs);
      for (let i = 3; i < 24; i += 4) {
        expect(
          replies[i].payload === String(i - 3),
          `READ after WRITE in one batch saw ${show(replies[i].payload)}`,
        );
      }
    },
  },
  {
    id: "FRAME-8",
    async run(ctx) {
      const c = await ctx.dom0();
      const cases: Array<[number, string]> = [
        [20, "\0"],
        [27, "\0"],
        [1000, "x\0"],
        [0xffff, "\0"],
        [XS.WATCH_EVENT, "/a\0t\0"],
        [XS.ERROR, "EINVAL\0"],
      ];
      for (const [type, payload] of cases) {
        await errOf(c, "ENOSYS", type, payload);
        await stillServes(c, `type ${type}`);
      }
    },
  },
  {
    id: "FRAME-9",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const cases: Array<[number, string]> = [
        [XS.READ, "/"], // no terminating NUL
        [XS.READ, "/\0/\0"], // two arguments
        [XS.MKDIR, `${base}/m\0x\0`],
        [XS.WRITE, `${base}/w`], // no NUL between path and value
        [XS.GET_DOMAIN_PATH, nul("1", "2")],
        [XS.SET_PERMS, `${base}\0`], // no permission at all
      ];
      for (const [type, payload] of cases) {
        await errOf(c, "EINVAL", type, payload);
        await stillServes(c, `malformed ${XS[type]} ${show(payload)}`);
      }
      const dir = await okOf(c, XS.DIRECTORY, `${base}\0`);
      expect(dir === "", `malformed requests created ${show(dir)} under the scratch node`);
    },
  },
  {
    id: "ERR-1",
    async run(ctx) {
      const c = await ctx.dom0();
      for (
        const [type, payload] of [[XS.READ, "/no/such/node\0"], [XS.READ, "bad path\0"], [27, "\0"]] as const
      ) {
        const r = await c.request(type, payload);
        const e = errnoOf(r);
        expect(e !== null, `${show(payload)} did not fail`);
        expect(r.payload.endsWith("\0") && /^E[A-Z0-9]+$/.test(e), `error payload ${show(r.payload)}`);
      }
      // Every other error reply of the run is screened too (run.ts).
    },
  },
  {
    id: "ERR-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/n\0v`);
      await okOf(c, XS.SET_PERMS, `${base}/n\0${nul("b0")}`);
      expect(
        (await outcome(c, XS.SET_PERMS, `${base}/n\0${nul("n0", "r0", "q0")}`)) === "EINVAL",
        "bad entry",
      );
      const perms = await okOf(c, XS.GET_PERMS, `${base}/n\0`);
      expect(perms === "b0\0", `a refused SET_PERMS left the permissions ${show(perms)}`);
      await errOf(c, "EINVAL", XS.WRITE, `${base}/a/b c\0v`);
      await errOf(c, "ENOENT", XS.RM, `${base}/x/y\0`);
      const dir = await okOf(c, XS.DIRECTORY, `${base}\0`);
      expect(dir === "n\0", `refused requests left ${show(dir)} under the scratch node`);
      // A duplicate watch is refused and the first one still works.
      await okOf(c, XS.WATCH, `${base}/n\0tok\0`);
      await c.event();
      await errOf(c, "EEXIST", XS.WATCH, `${base}/n\0tok\0`);
      await okOf(c, XS.WRITE, `${base}/n\0w`);
      const e = await c.event();
      expect(e.path === `${base}/n` && e.token === "tok", `after a refused duplicate WATCH got ${show(e)}`);
      await okOf(c, XS.UNWATCH, `${base}/n\0tok\0`);
    },
  },
];
