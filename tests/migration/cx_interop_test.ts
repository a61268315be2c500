// Live update between implementations, through the real tools: the proof of concept
// (tests/live_update/poc_server.ts, dxenstored's stream writer/reader and exec over a libc epoll loop)
// and Debian's cxenstored 4.17 under the anchors' shim hand a host to each other with
// `xenstore-control live-update`, while socket clients stay connected. And what cxenstored 4.17 makes
// of streams it did not write: the rules phase B must respect (docs/live-update.md).
import assert from "../helpers/assert.ts";
import { fromLsText } from "../../src/backend/export.ts";
import { frame, joinNul, type Reply, WireClient, XS } from "../helpers/wire.ts";
import { copyingTarget, cxAvailable, type Host, liveUpdate, startHost, tool } from "../live_update/poc.ts";
import { readStream } from "../../src/migration/reader.ts";
import { type Cx417Verdict, cx417Verdict } from "../../src/migration/cx417.ts";

const ignore = !cxAvailable();

async function connect(h: Host): Promise<WireClient> {
  for (let i = 0;; i++) {
    try {
      return await WireClient.connect(h.socket);
    } catch (e) {
      // cxenstored listens with a backlog of 1.
      if (i > 300 || !(e instanceof Deno.errors.WouldBlock || e instanceof Deno.errors.ConnectionRefused)) {
        throw e;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Send a request; return its reply, keeping watch events that come first in `events`. */
async function call(c: WireClient, events: Reply[], type: number, payload: string): Promise<Reply> {
  const reqId = await c.send(type, payload);
  for (;;) {
    const r = await c.recv();
    if (r.type === XS.WATCH_EVENT) events.push(r);
    else if (r.reqId === reqId) return r;
    else throw new Error(`reply to ${r.reqId}, expected ${reqId}`);
  }
}

async function nextEvent(c: WireClient, events: Reply[]): Promise<string> {
  const r = events.shift() ?? await c.recv();
  assert.equal(r.type, XS.WATCH_EVENT);
  return r.payload;
}

async function ls(h: Host): Promise<string> {
  const r = await tool(h, "xenstore-ls", "-f", "-p", "/");
  assert.equal(r.code, 0, r.out);
  return r.out;
}

Deno.test({
  name: "live update dx → cx: cxenstored 4.17 starts from dxenstored's stream with -U and serves on",
  ignore,
  async fn() {
    const h = await startHost("poc");
    const clients: WireClient[] = [];
    try {
      const w = await connect(h);
      const watcher = await connect(h);
      const cut = await connect(h);
      clients.push(w, watcher, cut);
      const we: Reply[] = [];
      const ev: Reply[] = [];
      for (const [p, v] of [["/a/b", "hello"], ["/a/c", "\x01\xffbytes"], ["/local/domain/3/x", "guest's"]]) {
        assert.equal((await call(w, we, XS.WRITE, joinNul(p) + v)).payload, "OK\0");
      }
      // (An owner cxenstored knows: it dies restoring a node of a domain that does not exist, see below.)
      assert.equal(
        (await call(w, we, XS.SET_PERMS, joinNul("/local/domain/3/x", "n0", "r3"))).payload,
        "OK\0",
      );
      assert.equal((await call(watcher, ev, XS.WATCH, joinNul("/a", "tok"))).payload, "OK\0");
      assert.equal(await nextEvent(watcher, ev), joinNul("/a", "tok"));
      // A request cut in the middle: its first 20 bytes are read before the switch.
      const req = frame(XS.WRITE, 9, 0, joinNul("/a/cut") + "completed after");
      await cut.writeRaw(req.subarray(0, 20));
      await new Promise((r) => setTimeout(r, 200));

      const lu = await liveUpdate(h, h.cxTarget);
      assert.equal(lu.code, 0, lu.out);
      assert.ok(
        h.cmdline().startsWith("/usr/lib/xen-4.17/bin/xenstored -N -U"),
        `${h.cmdline()}: ${h.log()}`,
      );

      // Same process, same connections: the cut request completes, the watch fires from cxenstored.
      await cut.writeRaw(req.subarray(20));
      const done = await cut.recv();
      assert.deepEqual([done.type, done.reqId, done.payload], [XS.WRITE, 9, "OK\0"]);
      assert.equal(await nextEvent(watcher, ev), joinNul("/a/cut", "tok"));
      assert.equal((await call(w, we, XS.WRITE, joinNul("/a/d") + "via cx")).payload, "OK\0");
      assert.equal(await nextEvent(watcher, ev), joinNul("/a/d", "tok"));
      const nodes = fromLsText(await ls(h)).nodes.map((n) =>
        `${n.path}=${JSON.stringify(n.value)} ${n.perms}`
      );
      assert.deepEqual(nodes, [
        '/="" n0',
        '/a="" n0',
        '/a/b="hello" n0',
        '/a/c="\\u0001ÿbytes" n0',
        '/a/cut="completed after" n0',
        '/a/d="via cx" n0',
        '/local="" n0',
        '/local/domain="" n0',
        '/local/domain/3="" n0',
        '/local/domain/3/x="guest\'s" n0,r3',
      ]);
    } finally {
      for (const c of clients) c.close();
      await h.stop();
    }
  },
});

Deno.test({
  name: "live update cx → dx → cx: cxenstored's host through dxenstored's reader and writer, unchanged",
  ignore,
  async fn() {
    const h = await startHost("cx");
    const clients: WireClient[] = [];
    try {
      const w = await connect(h);
      const watcher = await connect(h);
      clients.push(w, watcher);
      const we: Reply[] = [];
      const ev: Reply[] = [];
      await call(w, we, XS.WRITE, joinNul("/vm/1/name") + "guest one");
      await call(w, we, XS.SET_PERMS, joinNul("/vm/1/name", "n0", "r5", "b9")); // 5, 9: no such domains
      await call(w, we, XS.WRITE, joinNul("/vm/2") + "\0\x7f\x80");
      await call(w, we, XS.SET_PERMS, joinNul("@releaseDomain", "r0", "r1"));
      await call(watcher, ev, XS.WATCH, joinNul("/vm", "vm-watch"));
      await call(watcher, ev, XS.WATCH, joinNul("tools", "relative"));
      assert.equal(await nextEvent(watcher, ev), joinNul("/vm", "vm-watch"));
      assert.equal(await nextEvent(watcher, ev), joinNul("tools", "relative"));
      const before = await ls(h);

      assert.equal((await liveUpdate(h, h.pocTarget)).code, 0);
      assert.ok(h.cmdline().includes("poc_server.ts -N -U"), h.cmdline());
      // The proof of concept restored the watch from cxenstored's dump and fires it.
      await call(w, we, XS.WRITE, joinNul("/vm/3") + "while dx");
      assert.equal(await nextEvent(watcher, ev), joinNul("/vm/3", "vm-watch"));

      assert.equal((await liveUpdate(h, h.cxTarget)).code, 0);
      assert.ok(
        h.cmdline().startsWith("/usr/lib/xen-4.17/bin/xenstored -N -U"),
        `${h.cmdline()}: ${h.log()}`,
      );
      await call(w, we, XS.WRITE, joinNul("/vm/4") + "cx again");
      assert.equal(await nextEvent(watcher, ev), joinNul("/vm/4", "vm-watch"));
      // The relative watch is still relative to dom0's home.
      await call(w, we, XS.WRITE, joinNul("/local/domain/0/tools/t") + "1");
      assert.equal(await nextEvent(watcher, ev), joinNul("tools/t", "relative"));
      // Everything cxenstored had, permissions (stale entries too) included, came back.
      const after = await ls(h);
      assert.equal(
        after,
        before + '/vm/3 = "while dx"   (n0)\n/vm/4 = "cx again"   (n0)\n' +
          '/local = ""   (n0)\n/local/domain = ""   (n0)\n/local/domain/0 = ""   (n0)\n' +
          '/local/domain/0/tools = ""   (n0)\n/local/domain/0/tools/t = "1"   (n0)\n',
      );
    } finally {
      for (const c of clients) c.close();
      await h.stop();
    }
  },
});

/**
 * Hand cxenstored 4.17 the stream the proof of concept writes with `env` (its probing knobs), after
 * `prepare` put nodes in it. Returns what cx417Verdict says of that very stream and what cxenstored did.
 */
async function handToCx(
  env: Record<string, string>,
  prepare: (h: Host, c: WireClient) => Promise<void>,
): Promise<{ verdict: Cx417Verdict; survived: boolean; log: string; listing: string }> {
  const h = await startHost("poc", env);
  const c = await connect(h);
  try {
    await prepare(h, c);
    const lu = await liveUpdate(h, copyingTarget(h, h.cxTarget));
    const verdict = cx417Verdict(readStream(Deno.readFileSync(`${h.dir}/handed.state`)), (d) => d === 0);
    // Dying, it still flushes the "OK" it restored: the tool's answer says nothing. Look at the process.
    for (let i = 0; i < 50 && h.alive(); i++) await new Promise((r) => setTimeout(r, 20));
    const survived = h.alive() && h.cmdline().startsWith("/usr/lib/xen-4.17/bin/xenstored") && lu.code === 0;
    const listing = survived ? await ls(h) : "";
    return { verdict, survived, log: h.log(), listing };
  } finally {
    c.close();
    await h.stop();
  }
}

const writeAB = async (_h: Host, c: WireClient) => {
  assert.equal((await call(c, [], XS.WRITE, joinNul("/a/b") + "x")).payload, "OK\0");
};

Deno.test({
  name:
    "cx 4.17 restore rules: what kills it, as cx417Verdict predicts (version 2, no dom0 ring, ownerless node)",
  ignore,
  async fn() {
    const cases: Array<[string, Record<string, string>, (h: Host, c: WireClient) => Promise<void>, string]> =
      [
        ["version 2", { POC_STREAM_VERSION: "2" }, writeAB, "FATAL: Unknown record identifier"],
        ["no dom0 ring", { POC_NO_DOM0: "1" }, writeAB, ""],
        ["node owned by a domain that does not exist", {}, async (h, c) => {
          await writeAB(h, c);
          assert.equal((await call(c, [], XS.SET_PERMS, joinNul("/a/b", "n3", "r0"))).payload, "OK\0");
        }, "FATAL: write node error restoring node"],
      ];
    for (const [what, env, prepare, why] of cases) {
      const r = await handToCx(env, prepare);
      assert.ok(!r.survived, `${what}: cxenstored survived`);
      assert.ok(r.log.includes(why), `${what}: ${r.log}`);
      assert.equal(r.verdict.fatal.length, 1, `${what}: ${JSON.stringify(r.verdict)}`);
    }
    // And the same host without the breach is restored.
    const fine = await handToCx({}, writeAB);
    assert.ok(fine.survived, fine.log);
    assert.deepEqual(fine.verdict, { fatal: [], lost: [] });
    assert.equal(fine.listing, '/a = ""   (n0)\n/a/b = "x"   (n0)\n');
  },
});

Deno.test({
  name: "cx 4.17 restore rules: unknown types skipped, TA ignored, a transaction's NODE committed",
  ignore,
  async fn() {
    const opaque = await handToCx({ POC_EXTRA: "opaque" }, writeAB);
    assert.ok(
      opaque.survived && opaque.log.includes("live-update: unknown state record 64780000"),
      opaque.log,
    );
    assert.equal(opaque.listing, '/a = ""   (n0)\n/a/b = "x"   (n0)\n');
    assert.deepEqual(opaque.verdict, { fatal: [], lost: ["1 dxenstored record(s) of type 0x64780000"] });

    const txn = await handToCx({ POC_EXTRA: "transaction" }, writeAB);
    assert.ok(txn.survived && txn.log.includes("live-update: ignore transaction record"), txn.log);
    // The pending node of transaction 42 became a committed node.
    assert.ok(txn.listing.includes('/a/in-transaction = "pending"'), txn.listing);
    assert.equal(txn.verdict.fatal.length, 1, JSON.stringify(txn.verdict));
    assert.deepEqual(txn.verdict.lost, ["1 open transaction(s) (TA records are ignored)"]);
  },
});
