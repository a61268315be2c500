// The ring codec (src/xen/ring.ts): byte queues with free-running 32-bit indices, message assembly,
// and the faults a peer can cause.
import assert from "../helpers/assert.ts";
import fc from "fast-check";
import {
  BAD_INDEXES,
  encode,
  Field,
  FIELDS_OFFSET,
  INTERFACE_SIZE,
  isRingFault,
  MessageReader,
  MessageWriter,
  PAGE_SIZE,
  REQUESTS,
  RESPONSES,
  RING_SIZE,
  ringConsume,
  RingMessage,
  RingPage,
  ringProduce,
  ringUsed,
} from "../../src/xen/ring.ts";
import { HEADER_SIZE, PAYLOAD_MAX } from "../../src/protocol/wire.ts";
import { preemptible } from "../helpers/preempt.ts";
import { frame, header } from "../helpers/wire.ts";

function page(): RingPage {
  return new RingPage(new Uint8Array(PAGE_SIZE));
}

/** Put both indices of `side` at `at` (an empty queue that does not start at zero). */
function startAt(p: RingPage, side: typeof REQUESTS, at: number): void {
  p.set(side.cons, at);
  p.set(side.prod, at);
}

function drainMessages(r: MessageReader, p: RingPage, side = REQUESTS): RingMessage[] {
  const out: RingMessage[] = [];
  for (;;) {
    const m = r.read(p, side);
    if (m === null) return out;
    if (isRingFault(m)) throw new Error(`unexpected fault ${m}`);
    out.push(m);
  }
}

Deno.test("ring layout is xs_wire.h's struct xenstore_domain_interface", () => {
  const bytes = new Uint8Array(PAGE_SIZE);
  const p = new RingPage(bytes);
  const dv = new DataView(bytes.buffer);
  const fields: Array<[Field, number]> = [
    [Field.REQ_CONS, 2048],
    [Field.REQ_PROD, 2052],
    [Field.RSP_CONS, 2056],
    [Field.RSP_PROD, 2060],
    [Field.SERVER_FEATURES, 2064],
    [Field.CONNECTION, 2068],
    [Field.ERROR, 2072],
  ];
  for (const [f, off] of fields) {
    p.set(f, 0x11223344 + off);
    assert.equal(dv.getUint32(off, true), 0x11223344 + off, `field ${f} at offset ${off}, little-endian`);
  }
  assert.equal(FIELDS_OFFSET, 2048);
  assert.equal(INTERFACE_SIZE, 2076);
  for (const [f] of fields) p.set(f, 0);
  // Requests go to bytes 0..1023, responses to 1024..2047.
  assert.equal(ringProduce(p, REQUESTS, new Uint8Array([1, 2])), 2);
  assert.equal(ringProduce(p, RESPONSES, new Uint8Array([3])), 1);
  assert.deepEqual([bytes[0], bytes[1], bytes[1024]], [1, 2, 3]);
  assert.throws(() => new RingPage(new Uint8Array(INTERFACE_SIZE - 1)));
});

Deno.test("indices wrap around at 2^32 in the middle of a message", () => {
  const p = page();
  startAt(p, REQUESTS, 0xfffffff0); // 16 bytes before the wrap
  const w = new MessageWriter();
  const r = new MessageReader();
  const msgs = [
    { type: 2, reqId: 1, txId: 0, payload: "/local/domain/5/name\0" },
    { type: 11, reqId: 2, txId: 7, payload: "data/x\0value" },
  ];
  for (const m of msgs) w.enqueue(m.type, m.reqId, m.txId, m.payload);
  assert.ok(w.write(p, REQUESTS) > 16, "crossed the wrap point");
  assert.ok(p.get(Field.REQ_PROD) < 0x100, `producer index wrapped: ${p.get(Field.REQ_PROD)}`);
  assert.deepEqual(drainMessages(r, p), msgs);
  assert.equal(p.get(Field.REQ_CONS), p.get(Field.REQ_PROD));
  assert.ok(p.get(Field.REQ_CONS) < 0x100, "consumer index wrapped too");
  assert.equal(ringUsed(p, REQUESTS), 0);
});

Deno.test("a packet split across the end of the ring buffer is reassembled", () => {
  for (const at of [1020, 1023, 1024 - 16, 1024 - 17, 1008 + 5]) {
    const p = page();
    startAt(p, RESPONSES, 7 * RING_SIZE + at);
    const bytes = encode(15, 0, 0, "backend/vbd/51712/state\0tok\0");
    assert.equal(ringProduce(p, RESPONSES, bytes), bytes.length);
    // The header or payload straddles offset 1023 → 0 of the response buffer.
    const raw = p.bytes.subarray(1024, 2048);
    assert.equal(raw[at], bytes[0], `first byte at buffer offset ${at}`);
    assert.equal(raw[(at + bytes.length - 1) % RING_SIZE], bytes[bytes.length - 1], "last byte wrapped");
    const got = new MessageReader().read(p, RESPONSES);
    assert.deepEqual(got, { type: 15, reqId: 0, txId: 0, payload: "backend/vbd/51712/state\0tok\0" });
  }
});

Deno.test("a message written in small pieces comes out once, whole", () => {
  const p = page();
  startAt(p, REQUESTS, 0xffffffff - 2);
  const bytes = frame(11, 9, 0, "/a/b\0" + "v".repeat(300));
  const r = new MessageReader();
  let off = 0;
  let got: RingMessage | null = null;
  for (const step of [1, 3, 11, 1, 16, 100, 5]) {
    if (off >= bytes.length) break;
    off += ringProduce(p, REQUESTS, bytes.subarray(off, Math.min(bytes.length, off + step)));
    const m = r.read(p, REQUESTS);
    assert.ok(!isRingFault(m));
    assert.equal(m, null, `incomplete after ${off} bytes`);
    assert.ok(r.partial || off === 0);
  }
  while (off < bytes.length) {
    off += ringProduce(p, REQUESTS, bytes.subarray(off));
    const m = r.read(p, REQUESTS);
    assert.ok(!isRingFault(m));
    if (m !== null) got = m;
  }
  assert.deepEqual(got, { type: 11, reqId: 9, txId: 0, payload: "/a/b\0" + "v".repeat(300) });
  assert.equal(r.partial, false);
});

Deno.test("a maximum-size message passes through the 1 KiB ring in several rounds", () => {
  const p = page();
  const payload = Array.from({ length: PAYLOAD_MAX }, (_, i) => String.fromCharCode(i % 256)).join("");
  const w = new MessageWriter();
  w.enqueue(11, 1, 2, payload);
  const r = new MessageReader();
  let got: RingMessage | null = null;
  let rounds = 0;
  while (got === null) {
    assert.ok(w.write(p, RESPONSES) >= 0);
    const m = r.read(p, RESPONSES);
    assert.ok(!isRingFault(m));
    got = m;
    assert.ok(++rounds < 10);
  }
  assert.ok(rounds >= 4, `4112 bytes need ≥ 5 passes of 1024, took ${rounds}`);
  assert.equal(got.payload, payload);
  assert.ok(w.empty);
});

Deno.test("a completely full ring (exactly 1024 bytes) is valid", () => {
  const p = page();
  startAt(p, REQUESTS, 0xfffffe00);
  const data = new Uint8Array(RING_SIZE + 10).map((_, i) => i & 0xff);
  assert.equal(ringProduce(p, REQUESTS, data), RING_SIZE, "only 1024 fit");
  assert.equal(ringUsed(p, REQUESTS), RING_SIZE);
  assert.equal(ringProduce(p, REQUESTS, data), 0, "full: nothing more");
  const out = new Uint8Array(2000);
  assert.equal(ringConsume(p, REQUESTS, out), RING_SIZE);
  assert.deepEqual(out.subarray(0, RING_SIZE), data.subarray(0, RING_SIZE));
});

Deno.test("inconsistent indices are a fault on every operation and change nothing", () => {
  const cases: Array<[string, number, number]> = [
    ["producer 1025 ahead", 100, 100 + RING_SIZE + 1],
    ["producer 5000 ahead (XSA-38)", 0xfffff000, (0xfffff000 + 5000) >>> 0],
    ["producer behind the consumer", 500, 499],
    ["garbage", 0xdeadbeef, 0x12345678],
  ];
  for (const [what, cons, prod] of cases) {
    const p = page();
    p.set(Field.REQ_CONS, cons);
    p.set(Field.REQ_PROD, prod);
    p.set(Field.RSP_CONS, cons);
    p.set(Field.RSP_PROD, prod);
    assert.equal(ringUsed(p, REQUESTS), BAD_INDEXES, what);
    assert.equal(ringConsume(p, REQUESTS, new Uint8Array(16)), BAD_INDEXES, what);
    assert.equal(ringProduce(p, REQUESTS, new Uint8Array(16)), BAD_INDEXES, what);
    assert.equal(new MessageReader().read(p, REQUESTS), "ring-index", what);
    const w = new MessageWriter();
    w.enqueue(2, 0, 0, "x");
    assert.equal(w.write(p, RESPONSES), BAD_INDEXES, `${what} (responses)`);
    assert.equal(w.bytes, 17, "nothing was taken off the queue");
    assert.equal(p.get(Field.REQ_CONS), cons, "consumer index untouched");
    assert.equal(p.get(Field.REQ_PROD), prod, "producer index untouched");
  }
});

Deno.test("a header announcing more than 4096 payload bytes is a protocol fault", () => {
  for (const len of [PAYLOAD_MAX + 1, 0x40000000, 0x7fffffff, 0x80000000, 0xffffffff]) {
    const p = page();
    ringProduce(p, REQUESTS, header(2, 1, 0, len));
    assert.equal(new MessageReader().read(p, REQUESTS), "oversized", `len ${len}`);
  }
  // Exactly 4096 is fine.
  const p = page();
  const r = new MessageReader();
  ringProduce(p, REQUESTS, header(11, 1, 0, PAYLOAD_MAX));
  assert.equal(r.read(p, REQUESTS), null);
  assert.ok(r.partial);
});

Deno.test("MessageWriter counts queued watch events until they are written", () => {
  const p = page();
  const w = new MessageWriter();
  w.enqueue(15, 0, 0, "a\0t\0");
  w.enqueue(2, 1, 0, "x".repeat(2000));
  w.enqueue(15, 0, 0, "b\0t\0");
  assert.equal(w.events, 2);
  assert.equal(w.eventBytes, 2 * (16 + 4));
  assert.equal(w.bytes, 2 * 20 + 2016);
  assert.equal(w.write(p, RESPONSES), RING_SIZE);
  assert.equal(w.events, 1, "first event written, second still queued");
  w.clear();
  assert.equal(w.bytes, 0);
  assert.equal(w.events, 0);
});

Deno.test("property: any messages in any chunking, from any start index, arrive intact and in order", () => {
  const msg = fc.record({
    type: fc.integer({ min: 0, max: 30 }),
    reqId: fc.nat(),
    txId: fc.nat(),
    payload: fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
      maxLength: 5000,
    })
      .map((s) => s.slice(0, PAYLOAD_MAX)),
  });
  fc.assert(
    fc.property(
      fc.array(msg, { maxLength: 12 }),
      fc.nat(),
      fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 20 }),
      (msgs, start, chunks) => {
        const p = page();
        startAt(p, REQUESTS, start >>> 0);
        const stream = msgs.map((m) => encode(m.type, m.reqId, m.txId, m.payload));
        const r = new MessageReader();
        const got: RingMessage[] = [];
        let i = 0;
        let off = 0;
        let c = 0;
        for (let guard = 0; got.length < msgs.length; guard++) {
          if (guard > 100_000) throw new Error("no progress");
          // Producer: up to one chunk of the concatenated stream.
          let budget = chunks[c++ % chunks.length];
          while (budget > 0 && i < stream.length) {
            const part = stream[i].subarray(off, off + budget);
            const n = ringProduce(p, REQUESTS, part);
            budget -= n;
            off += n;
            if (off === stream[i].length) {
              i++;
              off = 0;
            }
            if (n < part.length) break; // ring full
          }
          for (;;) {
            const m = r.read(p, REQUESTS);
            if (m === null) break;
            if (isRingFault(m)) throw new Error(m);
            got.push(m);
          }
        }
        assert.deepEqual(got, msgs.map((m) => ({ ...m })));
        assert.equal(ringUsed(p, REQUESTS), 0);
      },
    ),
    { numRuns: 200 },
  );
});

// Lost wake-ups (docs/domains.md, "The ring": signalling). Each side signals the other only when the
// other may be waiting; these check the codec's half of that contract against a peer that runs
// between any two of our index accesses (the whole-daemon version: tests/transport/ring_wakeup_test.ts).

/** Drain `side` with `r` as a guest does; returns whether it must signal (it freed a full ring). */
function drainSignal(r: MessageReader, p: RingPage, side = RESPONSES): boolean {
  drainMessages(r, p, side);
  return r.takeFreedFull();
}

Deno.test("property: a writer left with output has seen the ring full after its last publish, so the reader signals", () => {
  fc.assert(
    fc.property(
      fc.nat(),
      fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 700 }), { minLength: 1, maxLength: 6 }),
      fc.nat({ max: 12 }),
      (start, before, after, at) => {
        const bytes = new Uint8Array(PAGE_SIZE);
        const daemon = new RingPage(bytes);
        const guest = new RingPage(bytes);
        startAt(daemon, RESPONSES, start >>> 0);
        const w = new MessageWriter();
        const r = new MessageReader();
        // Output the reader has not read yet, then more than may fit; the reader runs before the
        // writer's `at`-th index access (between reading the reader's index and publishing its own).
        for (const n of before) w.enqueue(2, 1, 0, "a".repeat(n));
        w.write(daemon, RESPONSES);
        for (const n of after) w.enqueue(2, 2, 0, "b".repeat(n));
        let access = 0;
        let signalled = false;
        preemptible(daemon, () => {
          if (access++ === at) signalled = drainSignal(r, guest) || signalled;
        });
        w.write(daemon, RESPONSES);
        // The writer now waits for a signal if it has output left; the reader reads on (it was
        // signalled for the new output) and signals only when it frees a ring that had been full.
        signalled = drainSignal(r, guest) || signalled;
        assert.ok(
          w.empty || signalled,
          `lost wake-up: ${w.bytes} bytes left to write, ${
            RING_SIZE - ringUsed(guest, RESPONSES)
          } free, no signal`,
        );
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: a reader that returns null has seen the ring empty after its last consume, so Linux's writer signals", () => {
  // xenbus_comms.c's xb_write publishes each piece of a request (header, each part) on its own and
  // signals only if the consumer had caught up with the producer index before that piece.
  const publish = (p: RingPage, piece: Uint8Array): boolean => {
    const prod = p.get(Field.REQ_PROD);
    const n = ringProduce(p, REQUESTS, piece);
    if (n !== piece.length) throw new Error("the test's pieces fit");
    return ((p.get(Field.REQ_CONS) - prod) >>> 0) <= n;
  };
  fc.assert(
    fc.property(
      fc.nat(),
      fc.array(fc.integer({ min: 1, max: 250 }), { minLength: 2, maxLength: 4 }), // the request fits the ring
      fc.nat({ max: 3 }),
      fc.nat({ max: 12 }),
      (start, parts, early, at) => {
        const bytes = new Uint8Array(PAGE_SIZE);
        const daemon = new RingPage(bytes);
        const guest = new RingPage(bytes);
        startAt(daemon, REQUESTS, start >>> 0);
        const msg = encode(2, 7, 0, parts.map((n) => "p".repeat(n)).join(""));
        const pieces = [msg.subarray(0, HEADER_SIZE)];
        let off = HEADER_SIZE;
        for (const n of parts) pieces.push(msg.subarray(off, off += n));
        // The guest has published the first pieces; the daemon reads, and the guest publishes the
        // rest before the daemon's `at`-th index access.
        const first = Math.min(1 + early, pieces.length - 1);
        for (const piece of pieces.slice(0, first)) publish(guest, piece);
        let access = 0;
        let signalled = false;
        preemptible(daemon, () => {
          if (access++ !== at) return;
          for (const piece of pieces.slice(first)) signalled = publish(guest, piece) || signalled;
        });
        const r = new MessageReader();
        const got = drainMessages(r, daemon, REQUESTS);
        // The reader was done before the rest came: then the guest sees it caught up, and signals.
        if (access <= at) return;
        assert.ok(
          got.length === 1 || signalled,
          `lost wake-up: the reader stopped with ${ringUsed(guest, REQUESTS)} bytes unread and no signal`,
        );
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: a writer's queue, emptied and refilled in rounds and drained in any pieces, sends every message in order", () => {
  const msg = fc.record({
    type: fc.constantFrom(2, 15), // a reply or a watch event (counted apart)
    reqId: fc.nat(),
    txId: fc.nat(),
    len: fc.integer({ min: 0, max: 300 }),
  });
  fc.assert(
    fc.property(
      // Rounds of up to 150 messages: the queue's arrays are compacted (64 or more written with more
      // left), emptied, and let go after a burst (more than it keeps).
      fc.array(fc.array(msg, { maxLength: 150, size: "max" }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
      (rounds, drains) => {
        const p = page();
        const w = new MessageWriter();
        const r = new MessageReader();
        const sent: RingMessage[] = [];
        const got: RingMessage[] = [];
        let d = 0;
        const drain = (k: number) => {
          for (; k > 0; k--) {
            const m = r.read(p, RESPONSES);
            if (m === null) return;
            if (isRingFault(m)) throw new Error(m);
            got.push(m);
          }
        };
        for (const round of rounds) {
          for (const m of round) {
            const payload = String.fromCharCode(65 + (sent.length % 26)).repeat(m.len);
            w.enqueue(m.type, m.reqId, m.txId, payload);
            sent.push({ type: m.type, reqId: m.reqId, txId: m.txId, payload });
          }
          while (!w.empty) {
            assert.ok(w.write(p, RESPONSES) >= 0);
            // What is left is exactly the unwritten tail of what was queued, and its bytes.
            const left = w.pending();
            assert.deepEqual(left.messages, sent.slice(sent.length - w.queued));
            const leftBytes = left.messages.reduce((n, m) => n + HEADER_SIZE + m.payload.length, 0);
            assert.equal(w.bytes, leftBytes - left.offset);
            assert.equal(w.events, left.messages.filter((m) => m.type === 15).length);
            drain(drains[d++ % drains.length]);
          }
          drain(Number.MAX_SAFE_INTEGER);
          assert.equal(w.queued, 0);
        }
        assert.deepEqual(got, sent);
        assert.equal(w.repliesWritten, sent.filter((m) => m.type !== 15).length);
      },
    ),
    { numRuns: 150 },
  );
});
