// End-to-end transactions against a real daemon: nested transactions through the raw protocol, and
// Debian's xenstore-write (which wraps all its writes in one transaction) checked with xenstore-read.
// No timing assertions: every wait is for a reply or an exit, with a timeout that only turns a hang
// into a failure.
import assert from "../helpers/assert.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";
import { errnoOf, type Reply, WireClient, XS } from "../helpers/wire.ts";
import { FEATURE_NESTED_TRANSACTIONS } from "../../src/protocol/wire.ts";

const GET_FEATURE = 23; // xs_wire.h XS_GET_FEATURE (not in the helper's table)

function body(r: Reply): string {
  assert.equal(errnoOf(r), null, `unexpected error reply ${JSON.stringify(r.payload)}`);
  return r.payload.replace(/\0$/, "");
}

async function start(c: WireClient, parent = 0): Promise<number> {
  const r = await c.request(XS.TRANSACTION_START, "\0", { txId: parent });
  const id = Number(body(r));
  assert.ok(Number.isInteger(id) && id > 0 && id <= 0xffffffff, `transaction id ${r.payload}`);
  return id;
}

Deno.test("e2e: nested transactions through the raw protocol", async () => {
  await withDaemon(async (d) => {
    using a = await WireClient.connect(d.socket);
    using b = await WireClient.connect(d.socket);

    const features = Number(body(await a.request(GET_FEATURE, "")));
    assert.ok((features & FEATURE_NESTED_TRANSACTIONS) !== 0, `GET_FEATURE ${features}`);

    // b watches the area; its watch events must only appear once the outer transaction commits.
    assert.equal(body(await b.request(XS.WATCH, "/e2e\0tok\0")), "OK");
    const first = await b.recv();
    assert.equal(first.type, XS.WATCH_EVENT, "registration event");

    const p = await start(a);
    assert.equal(body(await a.request(XS.WRITE, "/e2e/a\0parent", { txId: p })), "OK");
    const c = await start(a, p);
    assert.notEqual(c, p);
    // The child sees the parent's uncommitted write and adds its own.
    assert.equal(body(await a.request(XS.READ, "/e2e/a\0", { txId: c })), "parent");
    assert.equal(body(await a.request(XS.WRITE, "/e2e/b\0child", { txId: c })), "OK");
    assert.equal(
      errnoOf(await a.request(XS.READ, "/e2e/b\0", { txId: p })),
      "ENOENT",
      "child not merged yet",
    );

    // Another connection can neither see nor use these transactions.
    const rb = await b.request(XS.READ, "/e2e/a\0");
    assert.equal(rb.type, XS.ERROR, "no watch event queued before this reply, and nothing visible");
    assert.equal(errnoOf(rb), "ENOENT");
    assert.equal(errnoOf(await b.request(XS.READ, "/e2e/a\0", { txId: p })), "ENOENT");
    assert.equal(errnoOf(await b.request(XS.TRANSACTION_START, "\0", { txId: p })), "ENOENT");

    // The parent cannot end while the child is open.
    assert.equal(errnoOf(await a.request(XS.TRANSACTION_END, "T\0", { txId: p })), "EBUSY");
    assert.equal(body(await a.request(XS.TRANSACTION_END, "T\0", { txId: c })), "OK");
    assert.equal(body(await a.request(XS.READ, "/e2e/b\0", { txId: p })), "child");

    // A second child, aborted: only it is discarded.
    const c2 = await start(a, p);
    assert.equal(body(await a.request(XS.WRITE, "/e2e/c\0discarded", { txId: c2 })), "OK");
    assert.equal(body(await a.request(XS.TRANSACTION_END, "F\0", { txId: c2 })), "OK");
    assert.equal(errnoOf(await a.request(XS.READ, "/e2e/c\0", { txId: p })), "ENOENT");

    assert.equal(errnoOf(await b.request(XS.READ, "/e2e/b\0")), "ENOENT", "still invisible to others");
    assert.equal(body(await a.request(XS.TRANSACTION_END, "T\0", { txId: p })), "OK");

    // Now b hears about the commit (events first, then the reply to its READ), once per path.
    await b.send(XS.READ, "/e2e/b\0");
    const events: string[] = [];
    for (;;) {
      const m = await b.recv();
      if (m.type !== XS.WATCH_EVENT) {
        assert.equal(body(m), "child");
        break;
      }
      events.push(m.payload.split("\0")[0]);
    }
    assert.deepEqual(events.sort(), ["/e2e/a", "/e2e/b"]);
    assert.equal(body(await b.request(XS.READ, "/e2e/a\0")), "parent");
    assert.equal(errnoOf(await b.request(XS.READ, "/e2e/c\0")), "ENOENT");
  });
});

Deno.test("e2e: a conflicting commit gets EAGAIN; a closed connection's transactions are aborted", async () => {
  await withDaemon(async (d) => {
    using a = await WireClient.connect(d.socket);
    using b = await WireClient.connect(d.socket);
    assert.equal(body(await b.request(XS.WRITE, "/x\0old")), "OK");
    const t = await start(a);
    assert.equal(body(await a.request(XS.READ, "/x\0", { txId: t })), "old");
    assert.equal(body(await a.request(XS.WRITE, "/y\0derived", { txId: t })), "OK");
    assert.equal(body(await b.request(XS.WRITE, "/x\0new")), "OK");
    assert.equal(errnoOf(await a.request(XS.TRANSACTION_END, "T\0", { txId: t })), "EAGAIN");
    assert.equal(errnoOf(await b.request(XS.READ, "/y\0")), "ENOENT");

    const c = await WireClient.connect(d.socket);
    const u = await start(c);
    assert.equal(body(await c.request(XS.WRITE, "/z\0never", { txId: u })), "OK");
    c.close();
    // Whenever the daemon notices the close, the uncommitted write never becomes visible (the registry
    // being emptied on close is checked directly in rules_more_test.ts, P6).
    assert.equal(errnoOf(await b.request(XS.READ, "/z\0")), "ENOENT");
    assert.equal(body(await b.request(XS.WRITE, "/after\x001")), "OK");
    assert.equal(errnoOf(await b.request(XS.READ, "/z\0")), "ENOENT");
  });
});

Deno.test("e2e: xenstore-write with several pairs (one transaction), read back with xenstore-read", async () => {
  await withDaemon(async (d) => {
    const w = await runTool("xenstore-write", ["/tw/a", "1", "/tw/b", "two", "/tw/c/d", "3"], d.socket);
    assert.equal(w.code, 0, `xenstore-write failed: ${w.stderr}`);
    const r = await runTool("xenstore-read", ["/tw/a", "/tw/b", "/tw/c/d"], d.socket);
    assert.equal(r.code, 0, `xenstore-read failed: ${r.stderr}`);
    assert.deepEqual(r.stdout.trimEnd().split("\n"), ["1", "two", "3"]);

    // A failing write makes xenstore-write abort its transaction: none of the pairs may land.
    const bad = await runTool("xenstore-write", ["/tw2/a", "1", "/tw2/b", "2", "bad//path", "3"], d.socket);
    assert.notEqual(bad.code, 0, "a write of an invalid path must fail");
    const gone = await runTool("xenstore-read", ["/tw2/a"], d.socket);
    assert.notEqual(gone.code, 0, `the aborted transaction leaked /tw2/a: ${gone.stdout}`);
    const ls = await runTool("xenstore-ls", ["/"], d.socket);
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(!ls.stdout.includes("tw2"), ls.stdout);
  });
});
