// Group commit on guest rings: a ring's replies and watch events are written only once the record
// they wait for is durable (the loop's gate, src/transport/release_marks.ts), in order,
// and a later turn's output never overtakes or leaks with an earlier one's.
import assert from "../helpers/assert.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { rig } from "./harness.ts";

/** The test plays the group commit gate: each turn's output waits for `outputTag`. */
class FakeGate {
  outputTag = 0;
  durableUpTo = Number.MAX_SAFE_INTEGER;
  readonly gathering = false;
  /** Runs when the loop tags a turn's output (after the turn's before-output step). */
  onTag = () => {};
  turnEnd(): number {
    this.onTag();
    return this.outputTag;
  }
  durable(): number {
    return this.durableUpTo;
  }
}

/** The reply to `id` if it is in the ring now (one pump, no waiting), else null. */
async function replyNow(
  g: { reply(id: number, ms: number): Promise<{ type: number }> },
  id: number,
): Promise<number | null> {
  try {
    return (await g.reply(id, 0)).type;
  } catch {
    return null;
  }
}

Deno.test("group commit on rings: replies and events wait for their record, and release in order", async () => {
  const loop = new FakeGate();
  const r = rig({}, loop);
  const g = r.guest(1);
  // The toolstack's part: the domain's home, owned by it.
  assert.equal(r.dom0.tryRequest(MsgType.MKDIR, "/local/domain/1\0"), "OK");
  assert.equal(r.dom0.tryRequest(MsgType.SET_PERMS, "/local/domain/1\0n1\0"), "OK");
  await g.watch("data", "tok");
  assert.deepEqual((await r.events(g)).map((e) => e.token), ["tok"], "the initial event");

  // A write whose record (5) is not durable yet (4 is): nothing reaches the ring.
  loop.outputTag = 5;
  loop.durableUpTo = 4;
  const first = g.send(MsgType.WRITE, "data/a\0one");
  r.turn();
  assert.equal(await replyNow(g, first), null, "the reply waits for record 5");
  assert.deepEqual(await r.events(g), [], "so does the watch event");

  // A second write in a later turn waits for record 6.
  loop.outputTag = 6;
  const second = g.send(MsgType.WRITE, "data/b\0two");
  r.turn();
  assert.equal(await replyNow(g, second), null);

  // Record 5 durable: the first turn's reply and event go, the second's stay.
  loop.durableUpTo = 5;
  r.turn();
  assert.equal(await replyNow(g, first), MsgType.WRITE, "the first reply");
  assert.deepEqual((await g.eventsWithin(0)).map((e) => e.path), ["data/a"]);
  assert.equal(await replyNow(g, second), null, "the second turn's reply still waits");

  // Record 6 durable: the rest.
  loop.durableUpTo = 6;
  loop.outputTag = 0;
  r.turn();
  assert.equal(await replyNow(g, second), MsgType.WRITE, "the second reply");
  assert.deepEqual((await g.eventsWithin(0)).map((e) => e.path), ["data/b"]);
  assert.equal(await g.read("data/b"), "two", "with nothing unsynced, replies go at once");
});

Deno.test("group commit on rings: a guest's new watch is stored before the turn's output is tagged", async () => {
  const gate = new FakeGate();
  let stored = 0;
  const r = rig({ onDomainsChanged: () => stored++ }, gate);
  const g = r.guest(1);
  const n = stored;
  let storedWhenServed = -1;
  let storedAtTag = -1;
  // After the ring server's serving step, before the turn's end.
  r.loop.onServe("backlog", () => storedWhenServed = stored, () => false);
  gate.onTag = () => storedAtTag = stored;
  const id = g.send(MsgType.WATCH, "data\0tok\0");
  r.turn(); // serve the request, then the turn's end: the before-output step, then the gate's tag
  assert.equal(storedWhenServed, n, "not stored while serving: that is the before-output step's job");
  assert.equal(storedAtTag, n + 1, "the domain record with the new watch is stored before tagging");
  assert.equal(stored, n + 1, "and stored once");
  assert.equal(await replyNow(g, id), MsgType.WATCH);
});
