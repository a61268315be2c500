// The transports' own bound on outgoing packets (src/protocol/outgoing.ts replaceOversized): whatever a
// handler hands them, neither the Unix-socket server nor a ring connection puts a packet of more
// than 4096 payload bytes on the wire. An oversized reply becomes E2BIG (the client still gets one
// reply, in order), an oversized watch event is dropped. The core never gets here (its own bounds
// are tested in tests/e2e/packet_bound_test.ts and tests/dispatch/packet_bound_test.ts); these tests
// drive the transports with a handler that does.
import assert from "../helpers/assert.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import type { Client } from "../../src/dispatch/client.ts";
import type { Message } from "../../src/protocol/codec.ts";
import type { Connection } from "../../src/transport/connection.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { DEFAULT_RING_LIMITS, RingConnection } from "../../src/transport/ring_connection.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { DEFAULT_WRITE_THROTTLE, WriteCredit } from "../../src/transport/throttle.ts";
import { MessageReader, PAGE_SIZE, RESPONSES, RingPage } from "../../src/xen/ring.ts";

Deno.test("socket transport: an oversized reply goes out as E2BIG, an oversized event not at all", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-guard-" });
  const sent: boolean[] = [];
  // Answers a request of n bytes with an event and a reply of 4095 + n bytes each.
  // The connection itself stands for the core's client: the handler answers through it.
  const handler = {
    open: (sink: Connection) => sink as unknown as Client,
    message: (client: Client, m: Message) => {
      const sink = client as unknown as Connection;
      const big = "x".repeat(4095 + m.payload.length);
      sent.push(sink.send(XS.WATCH_EVENT, 0, 0, big));
      sent.push(sink.send(m.type, m.reqId, m.txId, big));
    },
    close: () => {},
  };
  const loop = new EventLoop();
  const server = new SocketServer(loop, handler, { path: `${dir}/sock` });
  server.listen();
  const running = loop.run();
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
    loop.stop();
    await running;
    server.close();
    loop.close();
    Deno.removeSync(dir, { recursive: true });
  }
  assert.deepEqual(sent, [false, true, true, true], "the oversized event refused, the reply replaced");
});

Deno.test("ring transport: an oversized reply goes into the ring as E2BIG, an oversized event not at all", () => {
  const page = new RingPage(new Uint8Array(PAGE_SIZE));
  const owner = { outputQueued: () => {}, flush: (c: RingConnection) => c.writeOut() };
  const conn = new RingConnection(
    { domid: 5, privileged: false, features: 0 },
    page.bytes,
    7,
    owner,
    DEFAULT_RING_LIMITS,
    new WriteCredit(DEFAULT_WRITE_THROTTLE, 0),
  );
  assert.equal(conn.send(XS.WATCH_EVENT, 0, 0, "e".repeat(4097)), false);
  assert.equal(conn.send(XS.WATCH_EVENT, 0, 0, "e".repeat(4096)), true, "4096 bytes fit");
  assert.equal(conn.send(XS.READ, 9, 3, "r".repeat(5000)), true);
  const reader = new MessageReader();
  const got: Array<[number, number, number]> = [];
  conn.marks.add(0, conn.queuedPosition); // released at once (no group commit)
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
