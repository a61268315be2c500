// "No packet over 4096 payload bytes, on any transport" (docs/protocol.md), end to end: a dxenstored
// process on the simulated Xen, dom0's tools on its socket, a guest and dom0's kernel on rings. Every
// place a packet is built is exercised on both transports: watch events (the XSA-324 class: not sent,
// counted, logged once per watch, later events unaffected), replies (E2BIG), CONTROL output, errors.
// A ring client refuses a packet over 4096 bytes as a protocol fault, and the socket client here
// checks every header, so an oversized packet fails these tests on either side.
import assert from "../helpers/assert.ts";
import { type Reply, WireClient, XS } from "../helpers/wire.ts";
import { type SimXen, startSimXen } from "../xen/sim_harness.ts";
import { XsError } from "../../src/common/xs_error.ts";
import type { GuestClient } from "../../src/client/guest.ts";

const LIMIT = 4096;
const TOKEN = "t".repeat(3900);
/** A child name long enough that `<path>/<name>\0<TOKEN>\0` exceeds 4096 bytes. */
const LONG = "n".repeat(600);

/** Every message a socket receives is ≤ 4096 bytes: the wire client reads whatever the header says. */
function bounded(r: Reply): Reply {
  assert.ok(r.payload.length <= LIMIT, `a ${r.payload.length}-byte packet of type ${r.type}`);
  return r;
}

let sentinels = 0;

/**
 * The event paths queued for a socket watcher, each packet checked against the bound: a watch on a
 * fresh path is registered, and everything that arrives before its registration event was queued
 * before it (no waiting period needed).
 */
async function socketEvents(c: WireClient): Promise<string[]> {
  const path = `/sentinel-${sentinels++}`;
  const reqId = await c.send(XS.WATCH, `${path}\0s\0`);
  const out: string[] = [];
  for (;;) {
    const r = bounded(await c.recv());
    if (r.type === XS.WATCH && r.reqId === reqId) continue; // the reply; the registration event follows
    assert.equal(r.type, XS.WATCH_EVENT);
    const [p, token] = r.payload.split("\0");
    if (p === path && token === "s") break;
    out.push(p);
  }
  assert.equal(bounded(await c.request(XS.UNWATCH, `${path}\0s\0`)).type, XS.UNWATCH);
  return out;
}

async function oversizedCount(x: SimXen): Promise<number> {
  const text = await x.ok(XS.CONTROL, "stats\0dxenstored_watch_events_oversized\0");
  const m = /^dxenstored_watch_events_oversized_total (\d+)$/m.exec(text);
  assert.ok(m !== null, text);
  return Number(m[1]);
}

/** The same for a ring watcher (an oversized packet would be a ring fault for this client). */
async function ringEvents(g: GuestClient): Promise<string[]> {
  const path = `/sentinel-${sentinels++}`;
  await g.watch(path, "s");
  const out: string[] = [];
  for (;;) {
    const e = await g.nextEvent();
    if (e === null) throw new Error("no registration event");
    if (e.path === path && e.token === "s") break;
    out.push(e.path);
  }
  await g.unwatch(path, "s");
  return out;
}

Deno.test("watch events over 4096 bytes are not sent on a socket or a ring; later ones arrive; counted, logged once per watch", async () => {
  await using x = await startSimXen();
  const g = await x.introduce(5);
  await x.ok(XS.MKDIR, "/local/domain/5/data/w\0");
  // A socket watcher and a ring watcher (relative path) on the same node, both with a long token.
  const s = await x.socket();
  assert.equal(bounded(await s.request(XS.WATCH, `/local/domain/5/data/w\0${TOKEN}\0`)).type, XS.WATCH);
  assert.deepEqual(await socketEvents(s), ["/local/domain/5/data/w"]);
  await g.watch("data/w", TOKEN);
  assert.deepEqual(await ringEvents(g), ["data/w"]);

  for (const round of [1, 2]) {
    await x.ok(XS.WRITE, `/local/domain/5/data/w/${LONG}${round}\0v`); // ~4 500-byte events
    await x.ok(XS.WRITE, `/local/domain/5/data/w/short${round}\0v`);
    assert.deepEqual(await socketEvents(s), [`/local/domain/5/data/w/short${round}`], `round ${round}`);
    assert.deepEqual(await ringEvents(g), [`data/w/short${round}`], `round ${round}`);
  }
  // The guest's own write under the watched node: its oversized event is dropped, its reply arrives.
  await g.write(`data/w/${LONG}g`, "v");
  assert.deepEqual(await ringEvents(g), []);
  assert.deepEqual(await socketEvents(s), []);
  assert.equal(await oversizedCount(x), 6);
  // One log line per watch, however many of its events were dropped.
  const lines = x.daemon.stderr.split("\n").filter((l) => /exceeds 4096: not sent/.test(l));
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.ok(
    lines.some((l) => l.includes("socket#")) && lines.some((l) => l.includes("dom5")),
    lines.join("\n"),
  );
  // Both connections still work.
  assert.equal(bounded(await s.request(XS.READ, "/local/domain/5/data/w/short1\0")).payload, "v");
  assert.equal(await g.read("data/w/short2"), "v");
  s.close();
});

Deno.test("special watch events over 4096 bytes (@introduceDomain/<domid> with a depth) are not sent", async () => {
  await using x = await startSimXen();
  // "@introduceDomain\0<token>\0" + "1\0" is exactly 4096 bytes; the event for a two-digit domid is 4097.
  const token = "d".repeat(LIMIT - "@introduceDomain\0".length - 1 - 2);
  const s = await x.socket();
  assert.equal(bounded(await s.request(XS.WATCH, `@introduceDomain\0${token}\0` + "1\0")).type, XS.WATCH);
  assert.deepEqual(await socketEvents(s), ["@introduceDomain"]);
  await x.introduce(5);
  assert.deepEqual(await socketEvents(s), ["@introduceDomain/5"], "4096 bytes: sent");
  await x.introduce(12);
  assert.deepEqual(await socketEvents(s), [], "4097 bytes: not sent");
  await x.introduce(6);
  assert.deepEqual(await socketEvents(s), ["@introduceDomain/6"], "the watch still works");
  assert.equal(await oversizedCount(x), 1);
  s.close();
});

Deno.test("replies, CONTROL output and errors stay within 4096 bytes on a socket and on rings", async () => {
  await using x = await startSimXen([], { dom0Ring: true });
  const g = await x.introduce(5);
  const kernel = x.attach(0); // dom0's own ring: privileged, may use CONTROL
  // A directory whose listing is over 4096 bytes, readable by the guest.
  for (let i = 0; i < 300; i++) await x.ok(XS.WRITE, `/local/domain/5/big/child-with-a-long-name-${i}\0`);
  const s = await x.socket();
  assert.equal(bounded(await s.request(XS.DIRECTORY, "/local/domain/5/big\0")).payload, "E2BIG\0");
  await assert.rejects(g.directory("big"), XsError, (e) => e.errno === "E2BIG");
  await assert.rejects(kernel.directory("/local/domain/5/big"), XsError, (e) => e.errno === "E2BIG");
  const part = bounded(await s.request(XS.DIRECTORY_PART, "/local/domain/5/big\0" + "0\0"));
  assert.ok(part.payload.length > 3000, "DIRECTORY_PART fills a packet");
  assert.ok((await g.call(XS.DIRECTORY_PART, "big\0" + "0\0")).length > 3000);
  // CONTROL output over 4096 bytes (all statistics, with per-domain samples) is cut to fit, on the
  // socket and on dom0's ring.
  let stats = "";
  for (let domid = 10; domid < 40 && !stats.includes("# truncated"); domid++) {
    await x.introduce(domid);
    stats = bounded(await s.request(XS.CONTROL, "stats\0")).payload;
  }
  assert.ok(stats.length > 3000 && stats.includes("# truncated"), stats.slice(-200));
  const ringStats = await kernel.call(XS.CONTROL, "stats\0");
  assert.ok(ringStats.length > 3000 && ringStats.length <= LIMIT);
  // A value that fills a packet reads back whole; errors are short.
  const value = "v".repeat(LIMIT - "/local/domain/5/full\0".length);
  assert.equal(bounded(await s.request(XS.WRITE, `/local/domain/5/full\0${value}`)).type, XS.WRITE);
  assert.equal(bounded(await s.request(XS.READ, "/local/domain/5/full\0")).payload, value);
  assert.equal(await g.read("full"), value);
  assert.equal(await kernel.read("/local/domain/5/full"), value);
  assert.equal(bounded(await s.request(XS.READ, "/nope\0")).payload, "ENOENT\0");
  await assert.rejects(g.read("nope"), XsError, (e) => e.errno === "ENOENT");
  s.close();
});
