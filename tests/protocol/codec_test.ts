// Framing and Latin-1 encoding: src/protocol/codec.ts.
import assert from "../helpers/assert.ts";
import {
  encodeMessage,
  type FrameError,
  Framer,
  isFrameError,
  latin1,
  type Message,
} from "../../src/protocol/codec.ts";
import { HEADER_SIZE, PAYLOAD_MAX } from "../../src/protocol/wire.ts";
import { frame, header } from "../helpers/wire.ts";

function drain(f: Framer): Message[] {
  const out: Message[] = [];
  for (;;) {
    const m = f.next();
    if (m === null) return out;
    if (isFrameError(m)) throw new Error(`unexpected frame error ${JSON.stringify(m)}`);
    out.push(m);
  }
}

function msg(type: number, reqId: number, txId: number, payload: string): Message {
  return { type, reqId, txId, payload };
}

const SAMPLES: Message[] = [
  msg(2, 1, 0, "/local/domain/0\0"),
  msg(11, 0xffffffff, 7, "/a\0value with \x00 nul and \xff"),
  msg(6, 3, 0, ""),
  msg(1, 4, 0xfffffffe, "x".repeat(PAYLOAD_MAX)),
  msg(0xffff, 0, 0, "\x80\x9f"),
];

Deno.test("encodeMessage writes a little-endian header and the payload bytes", () => {
  const b = encodeMessage(11, 0x01020304, 0x0a0b0c0d, "ab\0\xff");
  assert.deepEqual(Array.from(b), [
    11,
    0,
    0,
    0,
    4,
    3,
    2,
    1,
    0x0d,
    0x0c,
    0x0b,
    0x0a,
    4,
    0,
    0,
    0,
    97,
    98,
    0,
    255,
  ]);
  // The independent test encoder agrees.
  assert.deepEqual(b, frame(11, 0x01020304, 0x0a0b0c0d, "ab\0\xff"));
});

Deno.test("Framer: one whole message per feed", () => {
  for (const m of SAMPLES) {
    const f = new Framer();
    f.feed(encodeMessage(m.type, m.reqId, m.txId, m.payload));
    assert.deepEqual(drain(f), [m]);
    assert.equal(f.pending, 0);
  }
});

Deno.test("Framer: byte by byte", () => {
  const f = new Framer();
  const got: Message[] = [];
  for (const m of SAMPLES) {
    const bytes = encodeMessage(m.type, m.reqId, m.txId, m.payload);
    for (let i = 0; i < bytes.length; i++) {
      // A fresh one-byte buffer each time, reused after release(): the framer must copy what it keeps.
      const one = new Uint8Array([bytes[i]]);
      f.feed(one);
      got.push(...drain(f));
      f.release();
      one[0] ^= 0xff; // scribble over the caller's buffer
      if (i < bytes.length - 1) assert.equal(got.length, SAMPLES.indexOf(m), `early message at byte ${i}`);
    }
  }
  assert.deepEqual(got, SAMPLES);
});

Deno.test("Framer: many messages coalesced in one chunk", () => {
  const many: Message[] = [];
  for (let i = 0; i < 200; i++) many.push(msg(i % 27, i, i * 3, `/p/${i}\0${"v".repeat(i)}`));
  const all = new Uint8Array(many.reduce((n, m) => n + HEADER_SIZE + m.payload.length, 0));
  let off = 0;
  for (const m of many) {
    const b = encodeMessage(m.type, m.reqId, m.txId, m.payload);
    all.set(b, off);
    off += b.length;
  }
  const f = new Framer();
  f.feed(all);
  assert.deepEqual(drain(f), many);
  assert.equal(f.pending, 0);
});

Deno.test("Framer: a stream split at every offset", () => {
  const parts = SAMPLES.slice(0, 3).map((m) => encodeMessage(m.type, m.reqId, m.txId, m.payload));
  const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    stream.set(p, off);
    off += p.length;
  }
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new Framer();
    const a = stream.slice(0, cut);
    const b = stream.slice(cut);
    const got: Message[] = [];
    f.feed(a);
    got.push(...drain(f));
    f.release();
    a.fill(0xee); // the framer must not read the released chunk again
    f.feed(b);
    got.push(...drain(f));
    f.release();
    assert.deepEqual(got, SAMPLES.slice(0, 3), `split at ${cut}`);
    assert.equal(f.pending, 0, `pending after split at ${cut}`);
  }
});

Deno.test("Framer: payload of exactly 4096 bytes is accepted", () => {
  const f = new Framer();
  const p = "\x01".repeat(PAYLOAD_MAX);
  f.feed(encodeMessage(2, 9, 0, p));
  const m = f.next();
  assert.ok(m !== null && !isFrameError(m), "expected a message");
  assert.equal(m.payload.length, 4096);
  assert.equal(m.payload, p);
});

for (const len of [PAYLOAD_MAX + 1, 0x40000000, 0xffffffff]) {
  Deno.test(`Framer: header announcing ${len} bytes → FrameError before any payload arrives`, () => {
    const f = new Framer();
    // Only the header: an implementation waiting for `len` bytes would return null here.
    f.feed(header(2, 1, 0, len));
    const e = f.next();
    assert.ok(e !== null && isFrameError(e), `expected FrameError, got ${JSON.stringify(e)}`);
    assert.deepEqual(e as FrameError, { kind: "oversized", len });
    // Fed in two pieces, after a valid message: the valid one comes out first.
    const g = new Framer();
    const good = encodeMessage(2, 1, 0, "/a\0");
    const bad = header(2, 2, 0, len);
    g.feed(good);
    g.feed(bad.subarray(0, 10));
    const first = g.next();
    assert.ok(first !== null && !isFrameError(first));
    assert.equal(first.payload, "/a\0");
    assert.equal(g.next(), null, "incomplete header must wait");
    g.release();
    g.feed(bad.subarray(10));
    const second = g.next();
    assert.ok(second !== null && isFrameError(second), "oversized header after a valid message");
  });
}

Deno.test("latin1: exact for all 256 byte values (no windows-1252 remapping)", () => {
  const bytes = new Uint8Array(256);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  const s = latin1(bytes);
  assert.equal(s.length, 256);
  for (let i = 0; i < 256; i++) assert.equal(s.charCodeAt(i), i, `byte ${i}`);
  // Through the whole codec: encode, frame, decode.
  const f = new Framer();
  f.feed(encodeMessage(11, 1, 0, s));
  const m = f.next();
  assert.ok(m !== null && !isFrameError(m));
  assert.equal(m.payload, s);
  const enc = encodeMessage(11, 1, 0, s);
  for (let i = 0; i < 256; i++) assert.equal(enc[HEADER_SIZE + i], i, `encoded byte ${i}`);
});

Deno.test("latin1: sub-ranges and buffers larger than one internal chunk", () => {
  const big = new Uint8Array(20000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const s = latin1(big);
  assert.equal(s.length, big.length);
  for (let i = 0; i < big.length; i += 97) assert.equal(s.charCodeAt(i), big[i]);
  assert.equal(s.charCodeAt(big.length - 1), big[big.length - 1]);
  const sub = latin1(big, 8190, 8200);
  assert.equal(sub, s.slice(8190, 8200));
  assert.equal(latin1(big, 5, 5), "");
});

Deno.test("latin1: every short length and offset, every byte value (the short ranges' own path)", () => {
  const bytes = new Uint8Array(512);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
  for (let start = 0; start < 9; start++) {
    for (let len = 0; len <= 80; len++) {
      const s = latin1(bytes, start, start + len);
      let want = "";
      for (let i = start; i < start + len; i++) want += String.fromCharCode(bytes[i]);
      assert.equal(s, want, `start ${start}, length ${len}`);
    }
  }
});

Deno.test("Framer: empty feed is a no-op and release with nothing pending is safe", () => {
  const f = new Framer();
  f.feed(new Uint8Array(0));
  assert.equal(f.next(), null);
  f.release();
  assert.equal(f.pending, 0);
  f.feed(encodeMessage(2, 1, 0, "/\0").subarray(0, 5));
  assert.equal(f.pending, 5);
  assert.equal(f.next(), null);
});

Deno.test("Framer: feed(buf, n) takes the first n bytes of a reused buffer, at every split", () => {
  // As the socket server feeds it: one read buffer, the count read; what follows is stale bytes.
  const stream = new Uint8Array(
    SAMPLES.slice(0, 3).flatMap((m) => Array.from(encodeMessage(m.type, m.reqId, m.txId, m.payload))),
  );
  for (let split = 0; split <= stream.length; split++) {
    const f = new Framer();
    const readBuf = new Uint8Array(stream.length + 64).fill(0xee);
    const got: Message[] = [];
    for (const [from, to] of [[0, split], [split, stream.length]]) {
      readBuf.fill(0xee);
      readBuf.set(stream.subarray(from, to));
      f.feed(readBuf, to - from);
      got.push(...drain(f));
      f.release();
    }
    assert.deepEqual(got, SAMPLES.slice(0, 3), `split at ${split}`);
    assert.equal(f.pending, 0);
  }
});
