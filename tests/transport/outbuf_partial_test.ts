// OutBuffer.partial (live update hands unsent output over as "partial bytes, then whole messages")
// and Framer.unread (a held request stays unprocessed input): checked against a model.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { OutBuffer } from "../../src/transport/outbuf.ts";
import { encodeMessage, Framer, type Message } from "../../src/protocol/codec.ts";

Deno.test("OutBuffer.partial: the bytes left of a message written in part, whatever was consumed", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant("append" as const), len: fc.integer({ min: 0, max: 5000 }) }),
          fc.record({ kind: fc.constant("consume" as const), n: fc.integer({ min: 1, max: 9000 }) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        const b = new OutBuffer(64);
        // The model: message lengths still (partly) pending, and how much of the first was written.
        const msgs: number[] = [];
        let writtenOfFirst = 0;
        for (const op of ops) {
          if (op.kind === "append") {
            b.append(2, 1, 0, "x".repeat(op.len));
            msgs.push(16 + op.len);
          } else {
            let n = Math.min(op.n, b.length);
            b.consume(n);
            while (n > 0) {
              const left = msgs[0] - writtenOfFirst;
              if (n >= left) {
                n -= left;
                msgs.shift();
                writtenOfFirst = 0;
              } else {
                writtenOfFirst += n;
                n = 0;
              }
            }
          }
          const expected = msgs.length === 0 || writtenOfFirst === 0 ? 0 : msgs[0] - writtenOfFirst;
          assert.equal(b.partial, expected);
          assert.equal(b.length, msgs.reduce((a, x) => a + x, 0) - writtenOfFirst);
        }
      },
    ),
  );
});

Deno.test("OutBuffer.appendRaw: adopted output keeps its partial count", () => {
  const b = new OutBuffer(16);
  const whole = encodeMessage(2, 7, 0, "hello\0");
  const raw = new Uint8Array(5 + whole.length);
  raw.set(whole, 5);
  b.appendRaw(raw, 5);
  assert.equal(b.partial, 5);
  b.consume(3);
  assert.equal(b.partial, 2);
  b.consume(2);
  assert.equal(b.partial, 0);
  b.append(2, 8, 0, "more");
  b.consume(whole.length + 1);
  assert.equal(b.partial, 16 + 4 - 1);
});

Deno.test("Framer.unread: a held message comes back first, then the rest", () => {
  const f = new Framer();
  const a = encodeMessage(6, 1, 0, "\0");
  const b = encodeMessage(2, 2, 0, "/x\0");
  const both = new Uint8Array(a.length + b.length + 3);
  both.set(a);
  both.set(b, a.length);
  f.feed(both);
  const m = f.next() as Message;
  assert.equal(m.reqId, 1);
  f.unread(m);
  f.release();
  assert.equal(f.pending, both.length);
  assert.deepEqual(f.pendingBytes(), both);
  assert.equal((f.next() as Message).reqId, 1);
  assert.equal((f.next() as Message).reqId, 2);
  assert.equal(f.next(), null);
  assert.equal(f.pending, 3);
});
