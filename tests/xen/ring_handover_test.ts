// A ring's buffered bytes across a live update (src/xen/ring.ts MessageReader.restore and
// MessageWriter.resume, used by RingConnection.adoptState): whatever point the old program stopped
// at — inside a request it was taking off the ring, inside a reply it was putting in — the new one
// carries on so that the peer sees exactly the byte stream it would have seen without the switch.
// Property test over message sizes and cut points (fast-check, seeded by the runner).
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import {
  encode,
  MessageReader,
  MessageWriter,
  REQUESTS,
  RESPONSES,
  ringConsume,
  RingPage,
  ringProduce,
} from "../../src/xen/ring.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";

const page = () => new RingPage(new Uint8Array(4096));

/** Take up to `max` bytes off the response side as a guest would. */
function drain(p: RingPage, max: number): number[] {
  const buf = new Uint8Array(max);
  const n = ringConsume(p, RESPONSES, buf);
  return n <= 0 ? [] : [...buf.subarray(0, n)];
}

const msg = fc.record({
  type: fc.integer({ min: 0, max: 30 }),
  reqId: fc.nat(),
  txId: fc.nat(),
  payload: fc.uint8Array({ maxLength: 3000, size: "max" }).map((b) => String.fromCharCode(...b)),
});

Deno.test("MessageWriter.resume: the peer reads the same bytes whatever point the switch came at", () => {
  fc.assert(
    fc.property(fc.array(msg, { minLength: 1, maxLength: 6 }), fc.nat(), (msgs, cut) => {
      const expected = msgs.flatMap((m) => [...encode(m.type, m.reqId, m.txId, m.payload)]);
      // The old writer fills the ring, the guest takes some, the old writer fills it again: it stops
      // at some point inside some message. The ring page itself is shared memory: it stays as it is.
      const p = page();
      const old = new MessageWriter();
      for (const m of msgs) old.enqueue(m.type, m.reqId, m.txId, m.payload);
      old.write(p, RESPONSES);
      const got = drain(p, cut % 1025);
      old.write(p, RESPONSES);
      // Hand over what the old writer had not put in, as a CONN record carries it.
      const pend = old.pending();
      const parts = pend.messages.map((m) => encodeMessage(m.type, m.reqId, m.txId, m.payload));
      const rest = pend.offset > 0 ? parts[0].subarray(pend.offset) : new Uint8Array(0);
      const fresh = new MessageWriter();
      fresh.resume(rest, pend.offset > 0 ? pend.messages.slice(1) : pend.messages);
      for (let i = 0; i < 100; i++) {
        got.push(...drain(p, 1024));
        if (fresh.empty) break;
        fresh.write(p, RESPONSES);
      }
      assert.ok(fresh.empty);
      assert.ok(got.length === expected.length && got.every((b, i) => b === expected[i]), "the same bytes");
    }),
    { endOnFailure: true },
  ); // shrinking kilobyte payloads is slow
});

Deno.test("MessageReader.restore: a request cut anywhere is completed by the new reader", () => {
  fc.assert(fc.property(msg, fc.nat(), (m, cut) => {
    const bytes = encode(m.type, m.reqId, m.txId, m.payload);
    const at = cut % bytes.length; // strictly inside: the old reader held a partial request
    const r = new MessageReader();
    r.restore(bytes.subarray(0, at));
    const p = page();
    let got = null;
    for (let off = at; got === null;) {
      const n = ringProduce(p, REQUESTS, bytes.subarray(off, off + 1024));
      off += n;
      const x = r.read(p, REQUESTS);
      if (x !== null) got = x;
    }
    assert.equal(JSON.stringify(got), JSON.stringify(m));
  }));
  assert.throws(() => new MessageReader().restore(encode(1, 2, 3, "ab")), RangeError);
});
