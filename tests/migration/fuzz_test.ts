// Seeded fuzzing of the migration stream reader with the dumps cxenstored 4.17 really wrote (the
// fixtures) and generated streams as seeds: bytes flipped, inserted, deleted, ranges duplicated or
// moved, length fields set to anything, streams spliced. The reader must answer every input with a
// stream or a StreamError — no other exception, no hang — and whatever it accepts must write back to a
// stream it reads the same way (nothing half-understood). Replay a failure with its seed.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import { StreamError } from "../../src/migration/errors.ts";
import { FIXTURES, gunzip } from "./cx_capture.ts";
import { streamArb } from "./arbitrary.ts";

/** xorshift32: small, fast, replayable. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function mutate(b: Uint8Array, r: (n: number) => number, other: Uint8Array): Uint8Array {
  const a = [...b];
  const ops = 1 + r(4);
  for (let k = 0; k < ops; k++) {
    const at = r(a.length + 1);
    switch (r(7)) {
      case 0: // flip a byte
        if (a.length > 0) a[at % a.length] ^= 1 + r(255);
        break;
      case 1: // insert bytes
        a.splice(at, 0, ...Array.from({ length: 1 + r(16) }, () => r(256)));
        break;
      case 2: // delete a range
        a.splice(at, 1 + r(32));
        break;
      case 3: { // duplicate a range (records said twice)
        const len = 8 * (1 + r(8));
        a.splice(at, 0, ...a.slice(at, at + len));
        break;
      }
      case 4: { // a 32-bit field (a length, a count, an id) set to anything
        const v = [0, 1, 7, 8, 0xfff8, 0x7fffffff, 0xffffffff, r(1 << 16)][r(8)];
        const p = at - (at % 4);
        for (let i = 0; i < 4 && p + i < a.length; i++) a[p + i] = (v >>> (8 * i)) & 0xff;
        break;
      }
      case 5: { // move a range elsewhere (records reordered)
        const len = 8 * (1 + r(8));
        const cut = a.splice(at, len);
        a.splice(r(a.length + 1), 0, ...cut);
        break;
      }
      default: { // splice in a piece of another stream
        const from = r(other.length);
        a.splice(at, r(64), ...other.subarray(from, from + r(64)));
      }
    }
  }
  return Uint8Array.from(a);
}

function check(input: Uint8Array, seed: number): "accepted" | "refused" {
  let s;
  try {
    s = readStream(input);
  } catch (e) {
    if (e instanceof StreamError) return "refused";
    throw new Error(`seed ${seed}: readStream threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
  assert.deepEqual(readStream(writeStream(s)), s, `seed ${seed}: accepted stream does not write back`);
  return "accepted";
}

/** The pending dump without the watcher holding 270 KB of events (which would only slow this down). */
function pendingWithoutTheBigOutput(b: Uint8Array): Uint8Array {
  const s = readStream(b);
  const big = s.records.find((r) => r.type === "conn" && r.output.length > 1000);
  const connId = big?.type === "conn" ? big.connId : -1;
  const records = s.records.filter((r) =>
    !((r.type === "conn" || r.type === "watch") && r.connId === connId)
  );
  return writeStream({ version: s.version, records: records.slice(0, 16) });
}

Deno.test("migration stream fuzz: mutated cxenstored dumps and generated streams", async () => {
  const seeds: Uint8Array[] = [
    Deno.readFileSync(`${FIXTURES}/basic.state`),
    pendingWithoutTheBigOutput(await gunzip(Deno.readFileSync(`${FIXTURES}/pending.state.gz`))),
    ...fc.sample(streamArb, { numRuns: 20, seed: 16 }).map((s) => writeStream(s)),
  ];
  const counts = { accepted: 0, refused: 0 };
  for (let seed = 1; seed <= 4000; seed++) {
    const r = rng(seed);
    const base = seeds[r(seeds.length)];
    const other = seeds[r(seeds.length)];
    counts[check(mutate(base, r, other), seed)]++;
  }
  // Both outcomes occur: the mutations are neither all fatal nor all harmless.
  assert.ok(counts.accepted > 50 && counts.refused > 1000, JSON.stringify(counts));
});

Deno.test("migration stream fuzz: random bytes after a valid preamble", () => {
  const head = writeStream({ version: 1, records: [] }).subarray(0, 16);
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed * 7919);
    const body = Array.from({ length: r(200) }, () => r(4) === 0 ? r(256) : r(9));
    check(Uint8Array.from([...head, ...body]), seed);
  }
});
