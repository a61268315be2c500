// Transactions: docs/spec/transactions.md.
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
import { type Conn, nul, XS } from "../lib/wire.ts";
import { introduce, toolstackNodes } from "../lib/sim.ts";
import { createDomain } from "../../src/xen/sim/control.ts";

export const NESTED_TRANSACTIONS = 0x40000000;

async function start(c: Conn, parent = 0): Promise<number> {
  const id = await okOf(c, XS.TRANSACTION_START, "\0", parent);
  expect(/^[0-9]+\0$/.test(id), `TRANSACTION_START replied ${show(id)}`);
  return Number(id.slice(0, -1));
}

/** `tx` names no transaction any more: using it fails (with which error is TXN-4's business). */
async function gone(c: Conn, tx: number, what: string): Promise<void> {
  const e = await outcome(c, XS.READ, "/\0", tx);
  expect(e !== null, `${what}: transaction ${tx} still works`);
}

/** The outcome of committing `tx`: null (OK) or the errno. */
async function commit(c: Conn, tx: number): Promise<string | null> {
  return await outcome(c, XS.TRANSACTION_END, "T\0", tx);
}

interface Scenario {
  readonly setup: ReadonlyArray<[number, string]>;
  /** Requests inside the transaction (a WRITE of `z` is added, so it is not read-only, unless readOnly). */
  readonly inTx: ReadonlyArray<[number, string]>;
  readonly meanwhile: ReadonlyArray<[number, string]>;
  readonly readOnly?: boolean;
}

/** Run one conflict scenario under `base`; `$` in payloads stands for `base`. Returns the commit's outcome. */
async function scenario(ctx: Ctx, s: Scenario): Promise<string | null> {
  const a = await ctx.dom0();
  const other = await ctx.dom0();
  const base = await ctx.scratch(a);
  const sub = (p: string) => p.replaceAll("$", base);
  for (const [t, p] of s.setup) await okOf(a, t, sub(p));
  const tx = await start(a);
  for (const [t, p] of s.inTx) await a.request(t, sub(p), tx);
  if (!s.readOnly) await okOf(a, XS.WRITE, `${base}/z\0mine`, tx);
  for (const [t, p] of s.meanwhile) await okOf(other, t, sub(p));
  return await commit(a, tx);
}

const conflicts: Array<[string, Scenario]> = [
  ["a value read changed", {
    setup: [[XS.WRITE, "$/a\x001"]],
    inTx: [[XS.READ, "$/a\0"]],
    meanwhile: [[XS.WRITE, "$/a\x002"]],
  }],
  ["a node found missing was created", {
    setup: [],
    inTx: [[XS.READ, "$/b\0"]],
    meanwhile: [[XS.WRITE, "$/b\x001"]],
  }],
  ["a listed child list changed", {
    setup: [[XS.WRITE, "$/d/x\0"]],
    inTx: [[XS.DIRECTORY, "$/d\0"]],
    meanwhile: [[XS.WRITE, "$/d/y\0"]],
  }],
  ["permissions read changed", {
    setup: [[XS.WRITE, "$/a\x001"]],
    inTx: [[XS.GET_PERMS, "$/a\0"]],
    meanwhile: [[XS.SET_PERMS, "$/a\0r0\0"]],
  }],
  ["a node read was removed", {
    setup: [[XS.WRITE, "$/a\x001"]],
    inTx: [[XS.READ, "$/a\0"]],
    meanwhile: [[XS.RM, "$/a\0"]],
  }],
];

function nested(ctx: Ctx): void {
  if (!ctx.socketHas(NESTED_TRANSACTIONS)) notApplicable("nested transactions are not offered");
}

export const checks: Check[] = [
  {
    id: "TXN-1",
    async run(ctx) {
      const c = await ctx.dom0();
      const ids = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const id = await start(c);
        expect(id > 0 && id <= 0xffffffff, `transaction id ${id}`);
        expect(!ids.has(id), `transaction id ${id} given twice`);
        ids.add(id);
      }
      for (const id of ids) await okOf(c, XS.TRANSACTION_END, "F\0", id);
    },
  },
  {
    id: "TXN-2",
    async run(ctx) {
      const c = await ctx.dom0();
      const o = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/a\0old`);
      const tx = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\0new`, tx);
      await okOf(c, XS.WRITE, `${base}/made\0m`, tx);
      expect(await okOf(c, XS.READ, `${base}/a\0`, tx) === "new", "the transaction does not see its write");
      expect((await okOf(c, XS.DIRECTORY, `${base}\0`, tx)).includes("made\0"), "nor the node it created");
      expect(
        await okOf(o, XS.READ, `${base}/a\0`) === "old",
        "another connection sees the uncommitted write",
      );
      expect(await okOf(c, XS.READ, `${base}/a\0`) === "old", "tx_id 0 of the same connection sees it");
      await errOf(o, "ENOENT", XS.READ, `${base}/made\0`);
      await okOf(c, XS.TRANSACTION_END, "F\0", tx);
    },
  },
  {
    id: "TXN-3",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/gone\0x`);
      const tx = await start(c);
      await okOf(c, XS.WRITE, `${base}/one\x001`, tx);
      await okOf(c, XS.WRITE, `${base}/two/deep\x002`, tx);
      await okOf(c, XS.RM, `${base}/gone\0`, tx);
      expect(await commit(c, tx) === null, "a transaction without conflict did not commit");
      expect(await okOf(c, XS.READ, `${base}/one\0`) === "1", "commit lost a write");
      expect(await okOf(c, XS.READ, `${base}/two/deep\0`) === "2", "commit lost a write");
      await errOf(c, "ENOENT", XS.READ, `${base}/gone\0`);
      await gone(c, tx, "after its commit");
      const ab = await start(c);
      await okOf(c, XS.WRITE, `${base}/aborted\0x`, ab);
      await okOf(c, XS.TRANSACTION_END, "F\0", ab);
      await errOf(c, "ENOENT", XS.READ, `${base}/aborted\0`);
      await gone(c, ab, "after its abort");
    },
  },
  {
    id: "TXN-4",
    async run(ctx) {
      const c = await ctx.dom0();
      const o = await ctx.dom0();
      const base = await ctx.scratch(c);
      await errOf(c, "ENOENT", XS.READ, `${base}\0`, 0x7ffffff0);
      await errOf(c, "ENOENT", XS.WRITE, `${base}/x\0v`, 0x7ffffff0);
      await errOf(c, "ENOENT", XS.TRANSACTION_END, "T\0", 0x7ffffff0);
      await errOf(c, "ENOENT", XS.TRANSACTION_START, "\0", 0x7ffffff0);
      const tx = await start(c);
      await errOf(o, "ENOENT", XS.READ, `${base}\0`, tx);
      await errOf(o, "ENOENT", XS.WRITE, `${base}/x\0v`, tx);
      await errOf(o, "ENOENT", XS.TRANSACTION_END, "T\0", tx);
      await okOf(c, XS.TRANSACTION_END, "F\0", tx);
      await errOf(c, "ENOENT", XS.READ, `${base}/x\0`);
    },
  },
  {
    id: "TXN-5",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const tx = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\0x`, tx);
      for (const bad of ["X\0", "t\0", "TF\0", "T", "T\0F\0"]) {
        await errOf(c, "EINVAL", XS.TRANSACTION_END, bad, tx);
      }
      expect(await okOf(c, XS.READ, `${base}/a\0`, tx) === "x", "the transaction did not survive");
      expect(await commit(c, tx) === null, "commit after refused ENDs");
      expect(await okOf(c, XS.READ, `${base}/a\0`) === "x", "its write");
    },
  },
  {
    id: "TXN-6",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const tx = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\0x`, tx);
      await okOf(c, XS.RESET_WATCHES, "\0");
      await gone(c, tx, "after RESET_WATCHES");
      expect(
        await outcome(c, XS.TRANSACTION_END, "T\0", tx) !== null,
        "a commit after RESET_WATCHES succeeded",
      );
      await errOf(c, "ENOENT", XS.READ, `${base}/a\0`);
    },
  },
  {
    id: "TXN-7",
    async run(ctx) {
      for (const [what, s] of conflicts) {
        const r = await scenario(ctx, s);
        expect(r === "EAGAIN", `${what}: commit answered ${r ?? "OK"}, expected EAGAIN`);
        const c = await ctx.dom0();
        await okOf(c, XS.RM, `${ctx.base}\0`);
        await okOf(c, XS.MKDIR, `${ctx.base}\0`);
      }
    },
  },
  {
    id: "TXN-8",
    async run(ctx) {
      const cases: Array<[string, Scenario]> = [
        ["nothing else happened", {
          setup: [[XS.WRITE, "$/a\x001"]],
          inTx: [[XS.READ, "$/a\0"]],
          meanwhile: [],
        }],
        ["another subtree changed", {
          setup: [[XS.WRITE, "$/t/a\x001"], [XS.WRITE, "$/u/b\x001"]],
          inTx: [[XS.READ, "$/t/a\0"], [XS.WRITE, "$/t/a\x002"]],
          meanwhile: [[XS.WRITE, "$/u/b\x002"], [XS.WRITE, "$/u/c\0"]],
        }],
        ["a failed READ of a node nobody touched", {
          setup: [[XS.WRITE, "$/t\0"], [XS.WRITE, "$/u\0"]],
          inTx: [[XS.READ, "$/t/q\0"], [XS.WRITE, "$/t/n\0"]],
          meanwhile: [[XS.WRITE, "$/u/c\x001"]],
        }],
      ];
      for (const [what, s] of cases) {
        const r = await scenario(ctx, s);
        expect(r === null, `${what}: commit answered ${r}`);
        const c = await ctx.dom0();
        await okOf(c, XS.RM, `${ctx.base}\0`);
        await okOf(c, XS.MKDIR, `${ctx.base}\0`);
      }
    },
  },
  {
    id: "TXN-9",
    async run(ctx) {
      const r = await scenario(ctx, {
        setup: [[XS.WRITE, "$/d/x\0"]],
        inTx: [[XS.WRITE, "$/d/y\0"]],
        meanwhile: [[XS.WRITE, "$/d/w\0"]],
      });
      expect(r === null, `two transactions creating siblings: ${r}`);
    },
  },
  {
    id: "TXN-10",
    async run(ctx) {
      const r = await scenario(ctx, {
        setup: [[XS.WRITE, "$/a\x001"]],
        inTx: [[XS.READ, "$/a\0"], [XS.DIRECTORY, "$\0"]],
        meanwhile: [[XS.WRITE, "$/a\x002"], [XS.WRITE, "$/new\0"]],
        readOnly: true,
      });
      expect(r === null, `a read-only transaction: ${r}`);
    },
  },
  {
    id: "TXN-11",
    async run(ctx) {
      const r = await scenario(ctx, {
        setup: [[XS.WRITE, "$/a\x001"]],
        inTx: [[XS.WRITE, "$/a\x003"]],
        meanwhile: [[XS.WRITE, "$/a\x002"]],
      });
      expect(r === null, `blind writes of one node: ${r}`);
      const c = await ctx.dom0();
      expect(await okOf(c, XS.READ, `${ctx.base}/a\0`) === "3", "the later commit did not win");
    },
  },
  {
    id: "TXN-12",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(c, XS.WRITE, `${base}/a\x001`);
      await okOf(w, XS.WATCH, `${base}\0t\0`);
      await eventsBefore(w);
      const r = await scenario(ctx, conflicts[0][1]);
      expect(r === "EAGAIN", `the conflict was not detected (${r ?? "OK"})`);
      await errOf(c, "ENOENT", XS.READ, `${base}/z\0`);
      const events = (await eventsBefore(w)).map((e) => e.path);
      expect(!events.some((p) => p.endsWith("/z")), `a failed commit fired ${show(events)}`);
    },
  },
  {
    id: "TXN-13",
    async run(ctx) {
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const tx = await start(c);
      await errOf(c, "ENOENT", XS.READ, `${base}/missing\0`, tx);
      await errOf(c, "EINVAL", XS.WRITE, `${base}/bad path\0v`, tx);
      await errOf(c, "ENOENT", XS.RM, `${base}/no/such\0`, tx);
      await okOf(c, XS.WRITE, `${base}/ok\0v`, tx);
      expect(await okOf(c, XS.READ, `${base}/ok\0`, tx) === "v", "requests after failed ones");
      const r = await commit(c, tx);
      expect(r === null, `commit after failed requests: ${r}`);
      expect(await okOf(c, XS.READ, `${base}/ok\0`) === "v", "the write after the failures was lost");
    },
  },
  {
    id: "TXN-14",
    async run(ctx) {
      const w = await ctx.dom0();
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      await okOf(w, XS.WATCH, `${base}\0t\0`);
      await eventsBefore(w);
      const tx = await start(c);
      for (let i = 0; i < 3; i++) await okOf(c, XS.WRITE, `${base}/a\0${i}`, tx);
      await okOf(c, XS.WRITE, `${base}/b\0`, tx);
      const early = await eventsBefore(w);
      expect(early.length === 0, `events before the commit: ${show(early)}`);
      expect(await commit(c, tx) === null, "commit");
      const paths = new Set((await eventsBefore(w)).map((e) => e.path));
      expect(paths.has(`${base}/a`) && paths.has(`${base}/b`), `events at the commit: ${show([...paths])}`);
      const ab = await start(c);
      await okOf(c, XS.WRITE, `${base}/c\0`, ab);
      await okOf(c, XS.TRANSACTION_END, "F\0", ab);
      const late = await eventsBefore(w);
      expect(late.length === 0, `an aborted transaction fired ${show(late)}`);
    },
  },
  {
    id: "TXN-15",
    async run(ctx) {
      const c = await ctx.dom0();
      const p = await start(c);
      const r = await c.request(XS.TRANSACTION_START, "\0", p);
      if (ctx.socketHas(NESTED_TRANSACTIONS)) {
        expect(
          r.type === XS.TRANSACTION_START,
          `a nested start with the feature answered ${show(r.payload)}`,
        );
        await okOf(c, XS.TRANSACTION_END, "F\0", Number(r.payload.slice(0, -1)));
      } else {
        expect(r.type === XS.ERROR && r.payload === "EBUSY\0", `a nested start answered ${show(r.payload)}`);
      }
      await okOf(c, XS.TRANSACTION_END, "F\0", p);
      if (!ctx.hasGuests) return;
      // A guest whose features exclude nested transactions.
      const env = ctx.sim();
      const domid = env.freshDomid();
      const d = createDomain(env.dir, domid);
      ctx.defer(() => env.destroy(domid));
      const all = await c.request(XS.GET_FEATURE, `${domid}\0`);
      if (all.type !== XS.GET_FEATURE) notApplicable("GET_FEATURE is not offered for domains");
      const without = Number(all.payload.slice(0, -1)) & ~NESTED_TRANSACTIONS;
      await okOf(c, XS.SET_FEATURE, nul(String(domid), String(without)));
      await toolstackNodes(c, domid);
      const g = ctx.attach(domid, d);
      await introduce(c, d);
      const gp = Number((await okOf(g, XS.TRANSACTION_START, "\0")).slice(0, -1));
      await errOf(g, "EBUSY", XS.TRANSACTION_START, "\0", gp);
    },
  },
  {
    id: "TXN-16",
    async run(ctx) {
      nested(ctx);
      const c = await ctx.dom0();
      const o = await ctx.dom0();
      const base = await ctx.scratch(c);
      const p = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\0p`, p);
      const k = await start(c, p);
      expect(await okOf(c, XS.READ, `${base}/a\0`, k) === "p", "a child does not see its parent's write");
      await okOf(c, XS.WRITE, `${base}/b\0k`, k);
      await errOf(c, "ENOENT", XS.READ, `${base}/b\0`, p);
      expect(await commit(c, k) === null, "child commit");
      expect(await okOf(c, XS.READ, `${base}/b\0`, p) === "k", "the parent does not see its committed child");
      await errOf(o, "ENOENT", XS.READ, `${base}/b\0`);
      const k2 = await start(c, p);
      await okOf(c, XS.WRITE, `${base}/c\0k2`, k2);
      await okOf(c, XS.TRANSACTION_END, "F\0", k2);
      await errOf(c, "ENOENT", XS.READ, `${base}/c\0`, p);
      expect(await commit(c, p) === null, "parent commit");
      expect(await okOf(o, XS.READ, `${base}/b\0`) === "k", "the child's write after the parent's commit");
    },
  },
  {
    id: "TXN-17",
    async run(ctx) {
      nested(ctx);
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const p = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\0p`, p);
      const k = await start(c, p);
      await errOf(c, "EBUSY", XS.TRANSACTION_END, "T\0", p);
      await errOf(c, "EBUSY", XS.TRANSACTION_END, "F\0", p);
      expect(await okOf(c, XS.READ, `${base}/a\0`, p) === "p", "the parent changed");
      await okOf(c, XS.TRANSACTION_END, "F\0", k);
      expect(await commit(c, p) === null, "the parent commits once its child ended");
    },
  },
  {
    id: "TXN-18",
    async run(ctx) {
      nested(ctx);
      const c = await ctx.dom0();
      const base = await ctx.scratch(c);
      const p = await start(c);
      await okOf(c, XS.WRITE, `${base}/a\x001`, p);
      const k = await start(c, p);
      expect(await okOf(c, XS.READ, `${base}/a\0`, k) === "1", "child read");
      await okOf(c, XS.WRITE, `${base}/x\0k`, k);
      await okOf(c, XS.WRITE, `${base}/a\x002`, p);
      expect(await commit(c, k) === "EAGAIN", "a child whose read the parent changed committed");
      await errOf(c, "ENOENT", XS.READ, `${base}/x\0`, p);
      await okOf(c, XS.TRANSACTION_END, "F\0", p);
    },
  },
];
