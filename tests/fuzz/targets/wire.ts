// The socket wire codec and the request parser.
//
//  - "wire": a byte stream through src/protocol/codec.ts's Framer (as the server feeds it: chunks of
//    any size, `release()` between reads), every framed message through parseRequest. The Framer
//    never throws (a bad header is a FrameError value); parseRequest throws only XsError. Invariants:
//    chunking does not change what comes out (the same messages, the same error at the same point, as
//    when the stream arrives in one read); no payload over 4096 bytes is returned.
//  - "request": parseRequest on one message (type byte + payload): XsError only; what it returns is
//    well-formed (domids 0..65535, strings without NUL).
import { XsError } from "../../../src/common/xs_error.ts";
import { latin1 } from "../../../src/common/latin1.ts";
import { encodeMessage, Framer, isFrameError, type Message } from "../../../src/protocol/codec.ts";
import { parseRequest } from "../../../src/protocol/request.ts";
import { MsgType, PAYLOAD_MAX } from "../../../src/protocol/wire.ts";
import { Rng } from "../../helpers/rng.ts";
import { crc32 } from "../../../src/backend/records.ts";
import { check, type Target } from "../engine.ts";

/** Valid requests of every type (type, payload). */
export const VALID_REQUESTS: ReadonlyArray<readonly [number, string]> = [
  [MsgType.READ, "/local/domain/5/data\0"],
  [MsgType.READ, "data/x\0"],
  [MsgType.WRITE, "/t/a\0value with bytes \x01\xff"],
  [MsgType.WRITE, "/t/b\0"],
  [MsgType.MKDIR, "/t/c\0"],
  [MsgType.RM, "/t/c\0"],
  [MsgType.DIRECTORY, "/t\0"],
  [MsgType.DIRECTORY_PART, "/t\0" + "0\0"],
  [MsgType.GET_PERMS, "/t\0"],
  [MsgType.SET_PERMS, "/t\0n0\0r5\0b7\0"],
  [MsgType.SET_PERMS, "@releaseDomain\0n0\0r1\0"],
  [MsgType.WATCH, "/t\0token\0"],
  [MsgType.WATCH, "@introduceDomain\0tok\0" + "1\0"],
  [MsgType.UNWATCH, "/t\0token\0"],
  [MsgType.TRANSACTION_START, "\0"],
  [MsgType.TRANSACTION_END, "T\0"],
  [MsgType.TRANSACTION_END, "F\0"],
  [MsgType.INTRODUCE, "5\0" + "4096\0" + "7\0"],
  [MsgType.RELEASE, "5\0"],
  [MsgType.RESUME, "5\0"],
  [MsgType.GET_DOMAIN_PATH, "5\0"],
  [MsgType.IS_DOMAIN_INTRODUCED, "5\0"],
  [MsgType.SET_TARGET, "5\0" + "6\0"],
  [MsgType.RESET_WATCHES, ""],
  [MsgType.CONTROL, "quota\0set\0nodes\0" + "100\0"],
  [MsgType.CONTROL, "help\0"],
  [MsgType.GET_FEATURE, "5\0"],
  [MsgType.SET_FEATURE, "5\0" + "4\0"],
  [MsgType.GET_QUOTA, "5\0nodes\0"],
  [MsgType.SET_QUOTA, "5\0nodes\0" + "50\0"],
];

function bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** What a framer gives for a whole stream, as comparable strings. */
type Framed = string[];

function show(m: Message): string {
  return `${m.type}/${m.reqId}/${m.txId}/${m.payload.length}/${m.payload}`;
}

/**
 * Frame `input`, fed in chunks chosen by `chunk()` (0 = all at once); checks every message, and
 * (`parse`) parses each as a request.
 */
function frame(input: Uint8Array, chunk: () => number, parse: boolean): Framed {
  const f = new Framer();
  const out: Framed = [];
  let off = 0;
  while (off < input.length) {
    const k = chunk();
    const end = k === 0 ? input.length : Math.min(input.length, off + k);
    // A fresh copy per read: the server reuses one read buffer, which release() must not keep.
    const buf = input.slice(off, end);
    f.feed(buf);
    off = end;
    for (;;) {
      const m = f.next();
      if (m === null) break;
      if (isFrameError(m)) {
        out.push(`error ${m.kind} ${m.len}`);
        return out;
      }
      check(m.payload.length <= PAYLOAD_MAX, `a ${m.payload.length}-byte payload was framed`);
      out.push(show(m));
      if (parse) request(m);
    }
    f.release();
    buf.fill(0xee); // what the next read() would do to the shared buffer
  }
  out.push(`pending ${f.pending}`);
  return out;
}

/** parseRequest: XsError only; a parsed request is well-formed. */
function request(m: Message): void {
  const req = parseRequest(m) as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(req)) {
    if (k === "domid" || k === "target") {
      check(
        v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff),
        `${k} ${v}`,
      );
    }
    if ((k === "path" || k === "token") && typeof v === "string") check(!v.includes("\0"), `NUL in ${k}`);
  }
}

export const wireTarget: Target = {
  name: "wire",
  contract: "socket framer (never throws; FrameError value) + parseRequest (XsError only)",
  corpus() {
    const out: Uint8Array[] = [];
    const enc = VALID_REQUESTS.map(([t, p], i) => encodeMessage(t, i + 1, i % 3, p));
    for (let i = 0; i < enc.length; i++) {
      out.push(enc[i]);
      // Pipelined: two and three messages in one stream.
      const two = new Uint8Array(enc[i].length + enc[(i + 7) % enc.length].length);
      two.set(enc[i]);
      two.set(enc[(i + 7) % enc.length], enc[i].length);
      out.push(two);
    }
    out.push(encodeMessage(MsgType.WRITE, 1, 0, "/t/full\0" + "v".repeat(PAYLOAD_MAX - 8)));
    return out;
  },
  run(input) {
    const whole = frame(input, () => 0, true);
    const r = new Rng(crc32(input));
    const chunked = frame(input, () => 1 + r.int(r.chance(0.1) ? 8 : 512), false);
    const same = whole.length === chunked.length && whole.every((x, i) => x === chunked[i]);
    check(
      same,
      `chunking changes the result: ${JSON.stringify(whole).slice(0, 200)} vs ${
        JSON.stringify(chunked).slice(0, 200)
      }`,
    );
  },
  expected: (e) => e instanceof XsError,
  ciCases: 10_000,
};

export const requestTarget: Target = {
  name: "request",
  contract: "parseRequest on one message (XsError only)",
  corpus() {
    return VALID_REQUESTS.map(([t, p]) => {
      const b = new Uint8Array(1 + p.length);
      b[0] = t;
      b.set(bytes(p), 1);
      return b;
    });
  },
  run(input) {
    if (input.length === 0) return;
    // As a framer would hand it over: at most 4096 payload bytes.
    request({
      type: input[0],
      reqId: 1,
      txId: 0,
      payload: latin1(input, 1, Math.min(input.length, 1 + PAYLOAD_MAX)),
    });
  },
  expected: (e) => e instanceof XsError,
  ciCases: 20_000,
};
