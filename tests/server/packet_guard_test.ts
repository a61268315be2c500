// The transports' own bound on outgoing packets (src/protocol/outgoing.ts replaceOversized): whatever a
// handler hands them, neither the Unix-socket server nor a ring connection puts a packet of more
// than 4096 payload bytes on the wire. An oversized reply becomes E2BIG (the client still gets one
// reply, in order), an oversized watch event is dropped. The core never gets here (its own bounds
// are tested in tests/e2e/packet_bound_test.ts and tests/dispatch/packet_bound_test.ts); these tests
// drive the transports with a handler that does.
import assert from "../helpers/assert.ts";
import { UnixServer } from "../../src/server/unix_server.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import { RingConnection } from "../../src/domains/connection.ts";
import { DEFAULT_RING_LIMITS } from "../../src/domains/connection.ts";
import { MessageReader, PAGE_SIZE, RESPONSES, RingPage } from "../../src/xen/ring.ts";
import type { Message } from "../../src/protocol/codec.ts";

type Sink = { send(type: number, reqId: number, txId: number, payload: string): boolean };

Deno.test("socket transport: an oversized reply goes out as E2BIG, an oversized event not at all", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-guard-" });
  const sent: boolean[] = [];
  // Answers a request of n bytes with an event and a reply of 4095 + n bytes each.
  const handler = {
    open: (sink: Sink) => sink,
    message: (sink: Sink, m: Message) => {
      const big = "x".repeat(4095 + m.payload.length);
      sent.push(sink.send(XS.WATCH_EVENT, 0, 0, big));
      sent.push(sink.send(m.type, m.reqId, m.txId, big));
    },
    close: () => {},
  };
  const server = new UnixServer<Sink>({ path: `${dir}/sock` }, handler);
  server.listen();
  const running = server.run();
  try {
    const c = await WireClient.connect(`${dir}/sock`);
    const r = await c.request(XS.READ, "a\0", { txId: 7 });
    assert.deepEqual([r.type, r.txId, r.payload], [XS.ERROR, 7, "E2BIG\0"]);
    // The stream is in step: for an empty request both packets fit (4095 bytes) and arrive, in order.
    const reqId = await c.send(XS.READ, "");
    const e = await c.recv();
    assert.deepEqual([e.type, e.payload.length], [XS.WATCH_EVENT, 4095]);
    const ok = await c.recv();
    assert.deepEqual([ok.type, ok.reqId, ok.payload.length], [XS.READ, reqId, 4095]);
    c.close();
  } finally {
    server.stop();
    await running;
    Deno.removeSync(dir, { recursive: true });
  }
  assert.deepEqual(sent, [false, true, true, true], "the oversized event refused, the reply replaced");
});

Deno.test("ring transport: an oversized reply goes into the ring as E2BIG, an oversized event not at all", () => {
  const page = new RingPage(new Uint8Array(PAGE_SIZE));
  const conn = new RingConnection(5, page.bytes, "dom5", { outputQueued: () => {} }, DEFAULT_RING_LIMITS);
  assert.equal(conn.send(XS.WATCH_EVENT, 0, 0, "e".repeat(4097)), false);
  assert.equal(conn.send(XS.WATCH_EVENT, 0, 0, "e".repeat(4096)), true, "4096 bytes fit");
  assert.equal(conn.send(XS.READ, 9, 3, "r".repeat(5000)), true);
  const reader = new MessageReader();
  const got: Array<[number, number, number]> = [];
  conn.markOutput(0); // released at once (no group commit)
  for (let i = 0; i < 20 && got.length < 2; i++) {
    conn.flush();
    for (;;) {
      const m = reader.read(page, RESPONSES);
      if (m === null) break;
      if (typeof m === "string") throw new Error(`ring fault ${m}`);
      got.push([m.type, m.reqId, m.payload.length]);
    }
  }
  assert.deepEqual(got, [[XS.WATCH_EVENT, 0, 4096], [XS.ERROR, 9, "E2BIG\0".length]]);
});
