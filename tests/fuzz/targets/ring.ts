// The Xen ring reader (src/xen/ring.ts MessageReader): a guest writes a byte stream into the request
// queue of a ring page in chunks, moving the producer index, and may poke garbage into an index; the
// daemon's reader takes messages off. It never throws: bad indices and oversized headers are
// RingFault values. Invariants: no payload over 4096 bytes; while the indices are left alone, the
// messages (and an "oversized" fault) are exactly what the socket framer makes of the same stream —
// two independent decoders of one format must agree — and "ring-index" never happens.
//
// Input: a 16-byte control block, then the stream.
//   u32 start index (cons = prod = it: wrapping is exercised), u32 step at which to poke an index,
//   u32 the value poked, u8 which index (even: req_cons, odd: req_prod), u8 seed of the chunk sizes.
import { encodeMessage, Framer, isFrameError } from "../../../src/protocol/codec.ts";
import { Field, MessageReader, PAGE_SIZE, REQUESTS, RingPage, ringProduce } from "../../../src/xen/ring.ts";
import { PAYLOAD_MAX } from "../../../src/protocol/wire.ts";
import { Rng } from "../../helpers/rng.ts";
import { check, type Target } from "../engine.ts";
import { VALID_REQUESTS } from "./wire.ts";

const CONTROL = 16;
const NEVER = 0xffffffff;

function control(start: number, pokeAt = NEVER, value = 0, field = 0, chunkSeed = 1): Uint8Array {
  const b = new Uint8Array(CONTROL);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, start, true);
  dv.setUint32(4, pokeAt, true);
  dv.setUint32(8, value, true);
  b[12] = field;
  b[13] = chunkSeed;
  return b;
}

/** The socket framer's reading of a stream: messages, then "oversized" if a header is too long. */
function reference(stream: Uint8Array): string[] {
  const f = new Framer();
  f.feed(stream);
  const out: string[] = [];
  for (;;) {
    const m = f.next();
    if (m === null) return out;
    if (isFrameError(m)) {
      out.push("fault oversized");
      return out;
    }
    out.push(`${m.type}/${m.reqId}/${m.txId}/${m.payload.length}/${m.payload}`);
  }
}

export const ringTarget: Target = {
  name: "ring",
  contract: "Xen ring MessageReader (never throws; RingFault value)",
  corpus() {
    const enc = VALID_REQUESTS.map(([t, p], i) => encodeMessage(t, i, 0, p));
    const big = encodeMessage(11, 9, 0, "/t/x\0" + "v".repeat(PAYLOAD_MAX - 5)); // 4 passes round the ring
    const out: Uint8Array[] = [];
    for (const [k, start] of [0, 1000, 0xfffffff0, 0x7ffffffe].entries()) {
      const parts = [control(start, NEVER, 0, 0, k + 1), ...enc.slice(k * 7, k * 7 + 7), big];
      const n = parts.reduce((a, p) => a + p.length, 0);
      const b = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        b.set(p, o);
        o += p.length;
      }
      out.push(b);
    }
    // One with a poke: the guest sets a garbage producer index half way.
    const poked = out[0].slice();
    poked.set(control(0, 3, 5000, 1, 9).subarray(0, CONTROL));
    out.push(poked);
    return out;
  },
  run(input) {
    if (input.length < CONTROL) return;
    const dv = new DataView(input.buffer, input.byteOffset, CONTROL);
    const start = dv.getUint32(0, true);
    const pokeAt = dv.getUint32(4, true);
    const pokeValue = dv.getUint32(8, true);
    const pokeField = input[12] % 2 === 0 ? Field.REQ_CONS : Field.REQ_PROD;
    const r = new Rng(input[13]);
    const stream = input.subarray(CONTROL);

    const page = new RingPage(new Uint8Array(PAGE_SIZE));
    page.set(Field.REQ_CONS, start);
    page.set(Field.REQ_PROD, start);
    const reader = new MessageReader();
    const got: string[] = [];
    let poked = false;
    let off = 0;
    let fault: string | null = null;
    // Each step the guest writes some bytes and the daemon reads what it can: progress is made every
    // step until the stream is written (the ring is never full after a read), so this bound is ample.
    const maxSteps = 2 * stream.length + 16;
    for (let step = 0; step < maxSteps && fault === null; step++) {
      if (off < stream.length) {
        const k = 1 + r.int(r.chance(0.3) ? 1024 : 48);
        const n = ringProduce(page, REQUESTS, stream.subarray(off, Math.min(stream.length, off + k)));
        if (n > 0) off += n;
      }
      if (step === pokeAt) {
        page.set(pokeField, pokeValue);
        poked = true;
      }
      for (;;) {
        const m = reader.read(page, REQUESTS);
        if (m === null) break;
        if (typeof m === "string") {
          fault = m;
          break;
        }
        check(m.payload.length <= PAYLOAD_MAX, `a ${m.payload.length}-byte payload off the ring`);
        got.push(`${m.type}/${m.reqId}/${m.txId}/${m.payload.length}/${m.payload}`);
      }
      const pokePending = !poked && pokeAt > step && pokeAt < maxSteps;
      if (off >= stream.length && !pokePending) break;
    }
    if (poked) return; // garbage indices: anything but an exception is an answer
    if (fault !== null) got.push(`fault ${fault}`);
    const want = reference(stream);
    check(
      got.length === want.length && got.every((x, i) => x === want[i]),
      `ring reader and socket framer disagree: ${JSON.stringify(got).slice(0, 160)} vs ${
        JSON.stringify(want).slice(0, 160)
      }`,
    );
  },
  expected: () => false,
  ciCases: 5_000,
};
