// The connection contract (src/transport/connection.ts): socket and ring connections alike expose what
// the transport holds between the peer and the core — the unprocessed input, the unsent output and how
// much of it is released — which is what a live update has to carry across an exec.
import assert from "../helpers/assert.ts";
import { testCore } from "../helpers/core.ts";
import { frame, header, WireClient, XS } from "../helpers/wire.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import type { RingState, SocketState } from "../../src/transport/connection.ts";
import { MsgType } from "../../src/protocol/wire.ts";
import { REQUESTS, ringProduce } from "../../src/xen/ring.ts";
import { rig } from "../domains/harness.ts";

/** A gate that holds every turn's output until `durableUpTo` reaches `tag`. */
class HoldingGate {
  tag = 0;
  durableUpTo = Number.MAX_SAFE_INTEGER;
  readonly gathering = false;
  turnEnd(): number {
    return this.tag;
  }
  durable(): number {
    return this.durableUpTo;
  }
}

Deno.test("socket connection state: a partial request, then output held for group commit, then released", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-conn-" });
  const gate = new HoldingGate();
  const loop = new EventLoop({ gate });
  const server = new SocketServer(loop, testCore(), { path: `${dir}/sock` });
  server.listen();
  const turns = (n = 3) => {
    for (let i = 0; i < n; i++) loop.turn(0);
  };
  const c = await WireClient.connect(`${dir}/sock`);
  try {
    turns();
    const conns = [...server.connections()];
    assert.equal(conns.length, 1);
    const conn = conns[0];
    // Half a request: the header of a READ whose payload has not come yet.
    const req = frame(XS.READ, 7, 0, "/\0");
    await c.writeRaw(req.subarray(0, 16));
    turns();
    let st = conn.transportState() as SocketState;
    assert.equal(st.kind, "socket");
    assert.deepEqual([...st.input], [...header(XS.READ, 7, 0, 2)], "the header is held as unprocessed input");
    assert.equal(st.output.length, 0);
    // The rest arrives; the reply waits for record 5.
    gate.tag = 5;
    gate.durableUpTo = 4;
    await c.writeRaw(req.subarray(16));
    turns();
    st = conn.transportState() as SocketState;
    assert.equal(st.input.length, 0, "the request was handed to the core");
    assert.equal(st.output.length, 16, "the reply (the root's empty value: a header alone) is queued");
    assert.equal(st.releasedOutput, 0, "and held: record 5 is not durable");
    // Durable: released and written.
    gate.tag = 0;
    gate.durableUpTo = 5;
    turns();
    const r = await c.recv();
    assert.equal(r.type, XS.READ);
    assert.equal((conn.transportState() as SocketState).output.length, 0);
  } finally {
    c.close();
    server.close();
    loop.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ring connection state: a partial request, then queued messages with what is released", () => {
  const gate = new HoldingGate();
  const r = rig({}, gate);
  const g = r.guest(3);
  r.turn();
  const conn = [...r.rings.connections()].find((x) => x.domid === 3)!;
  let st = conn.transportState() as RingState;
  assert.equal(st.kind, "ring");
  assert.equal(st.domid, 3);
  assert.equal(st.state, "connected");
  assert.equal(st.localPort, conn.localPort);
  // The header of a request only: the reader takes it off the ring and holds it.
  const req = frame(MsgType.GET_DOMAIN_PATH, 9, 0, "3\0");
  ringProduce(g.page, REQUESTS, req.subarray(0, 16));
  g.transport.notify();
  r.turn();
  st = conn.transportState() as RingState;
  assert.deepEqual([...st.input], [...req.subarray(0, 16)], "the partial request is transport state");
  // The rest; its reply waits for record 8.
  gate.tag = 8;
  gate.durableUpTo = 7;
  ringProduce(g.page, REQUESTS, req.subarray(16));
  g.transport.notify();
  r.turn();
  st = conn.transportState() as RingState;
  assert.equal(st.input.length, 0);
  assert.equal(st.output.length, 1, "one reply queued");
  assert.equal(st.output[0].reqId, 9);
  assert.equal(st.output[0].payload, "/local/domain/3\0");
  assert.equal(st.releasedOutput, 0, "held for record 8");
  gate.tag = 0;
  gate.durableUpTo = 8;
  r.turn();
  assert.equal((conn.transportState() as RingState).output.length, 0, "released and written into the ring");
});
