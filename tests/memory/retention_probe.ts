// Does anything stay behind when watches, transactions, connections, nodes or guests go? Run by
// retention_test.ts as `deno run --v8-flags=--expose-gc retention_probe.ts <scenario> <cycles>`
// (a test cannot force a full collection itself). Each cycle creates many of the things of one kind
// in an in-process core and tears them down the way the daemon does; after two full collections the
// heap left is recorded, and the last cycle's objects still alive are counted (WeakRefs). Prints one
// JSON line: { alive: objects of the last cycle still reachable, tracked, heap: bytes after each }.
import type { Core } from "../../src/dispatch/core.ts";
import { testCore } from "../helpers/core.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { lookup } from "../../src/store/tree.ts";
import { components } from "../../src/store/path.ts";
import { rig } from "../domains/harness.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");

// Objects are tracked in the last cycle only: WeakRefs are themselves heap objects, and tracking in
// every cycle would make the heap grow by design.
const refs: Array<WeakRef<object>> = [];
let tracking = false;
const track = (o: object | undefined) => {
  if (tracking && o !== undefined) refs.push(new WeakRef(o));
};
const sink = { send: () => true };
let req = 1;
const send = (core: Core, c: ReturnType<Core["open"]>, type: number, payload: string, tx = 0) =>
  core.message(c, { type, reqId: req++, txId: tx, payload });

type Scenario = () => Promise<() => Promise<void>>;

const scenarios: Record<string, Scenario> = {
  // 2 000 watches on one connection, then the connection closes.
  watches: () => {
    const core = testCore();
    return Promise.resolve(() => {
      const c = core.open(sink, "watcher");
      for (let i = 0; i < 2000; i++) {
        send(
          core,
          c,
          MsgType.WATCH,
          `/local/domain/${i % 50}/device/vif/${i}/state\0tok${i}-abcdefghijklmnop\0`,
        );
      }
      for (const w of core.watches.trie.watchesOf(c.id)) track(w);
      track(c);
      core.close(c);
      return Promise.resolve();
    });
  },
  // 500 transactions opened, each writing, then abandoned by closing the connection.
  transactions: () => {
    const core = testCore();
    return Promise.resolve(() => {
      const c = core.open(sink, "txn");
      for (let i = 0; i < 500; i++) send(core, c, MsgType.TRANSACTION_START, "\0");
      // Ids are opaque, but a fresh connection's are 1, 2, 3...
      for (let id = 1; id <= 500; id++) {
        send(core, c, MsgType.WRITE, `/tx/${id % 20}/k\0value-${id}-abcdefghijklmnop`, id);
        track(c.txns.get(id, 0, false));
      }
      track(c);
      core.close(c);
      return Promise.resolve();
    });
  },
  // 500 connections opened, each serving a request, then closed.
  connections: () => {
    const core = testCore();
    return Promise.resolve(() => {
      const cs = [];
      for (let i = 0; i < 500; i++) {
        const c = core.open(sink, `c${i}`);
        send(core, c, MsgType.READ, "/tool\0");
        cs.push(c);
      }
      for (const c of cs) {
        track(c);
        core.close(c);
      }
      return Promise.resolve();
    });
  },
  // 20 000 nodes written and removed again; the node total (memreport, metrics) was read meanwhile.
  nodes: () => {
    const core = testCore();
    const c = core.open(sink, "writer");
    return Promise.resolve(() => {
      for (let i = 0; i < 20_000; i++) {
        send(core, c, MsgType.WRITE, `/fill/g${i % 200}/n${i}\0value-${i}-abcdefghijklmnop`);
      }
      core.quotas.totalNodes();
      track(core.db.root);
      track(lookup(core.db.root, components("/fill")));
      send(core, c, MsgType.RM, "/fill\0");
      return Promise.resolve();
    });
  },
  // 20 guests introduced (each with a small tree and watches of its own), then released.
  guests: () => {
    const r = rig();
    let next = 1;
    return Promise.resolve(async () => {
      const ids: number[] = [];
      for (let i = 0; i < 20; i++) {
        const domid = next++; // Xen hands out new domids
        ids.push(domid);
        const g = r.guest(domid);
        // The toolstack's part: the guest's home, owned by the guest (a domain that exists now).
        send(r.core, r.dom0.client, MsgType.MKDIR, `/local/domain/${domid}\0`);
        send(r.core, r.dom0.client, MsgType.SET_PERMS, `/local/domain/${domid}\0n${domid}\0r0\0`);
        for (let k = 0; k < 20; k++) await g.write(`data/k${k}`, `value-${domid}-${k}-abcdefghijklmnop`);
        for (const p of ["data", "device", "control/shutdown"]) await g.watch(p, `w-${p}`);
        track(g);
        for (const c of r.core.clients.values()) if (c.domid === domid) track(c);
        track(lookup(r.core.db.root, components(`/local/domain/${domid}`)));
        g.close();
      }
      for (const domid of ids) {
        r.xen.destroy(domid);
        r.turn();
        send(r.core, r.dom0.client, MsgType.RELEASE, `${domid}\0`);
        send(r.core, r.dom0.client, MsgType.RM, `/local/domain/${domid}\0`);
      }
      r.dom0.sink.sent.length = 0;
    });
  },
};

const [name, cyclesArg] = Deno.args;
const scenario = scenarios[name];
if (scenario === undefined) throw new Error(`scenario: one of ${Object.keys(scenarios).join(", ")}`);
const cycle = await scenario();
const heap: number[] = [];
const cycles = Number(cyclesArg ?? 6);
for (let i = 0; i < cycles; i++) {
  tracking = i === cycles - 1;
  await cycle();
  // Let queued microtasks and timers of the cycle finish before collecting.
  await new Promise((r) => setTimeout(r, 0));
  gc();
  gc();
  heap.push(Deno.memoryUsage().heapUsed);
}
const alive = refs.filter((r) => r.deref() !== undefined).length;
heap[heap.length - 1] -= refs.length * 32 + refs.length * 8; // the WeakRefs and their array
console.log(JSON.stringify({ scenario: name, alive, tracked: refs.length, heap }));
