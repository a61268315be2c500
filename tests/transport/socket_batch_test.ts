// The socket server's batched turn (src/transport/socket_server.ts readNoted/writeNoted): the
// requests of the connections a turn finds readable are peeked, then taken off their sockets in one
// system call with the turn's replies, with exactly the bytes, the order and the back-pressure of one
// read()/write() per connection — driven turn by turn with raw client sockets, once batched and once
// without batching.
import assert from "../helpers/assert.ts";
import { testCore } from "../helpers/core.ts";
import * as libc from "../../ffi/libc.ts";
import { encodeMessage } from "../../src/protocol/codec.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { MsgType } from "../../src/protocol/wire.ts";

interface Rig {
  server: SocketServer;
  loop: EventLoop;
  clients: number[];
  done: () => void;
}

/** A server with `n` connected raw clients (blocking sockets), accepted by the loop's first turns. */
function rig(n: number, batchIo: boolean): Rig {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-batch-" });
  const loop = new EventLoop();
  const server = new SocketServer(loop, testCore(), { path: `${dir}/sock`, batchIo });
  server.listen();
  const clients: number[] = [];
  for (let i = 0; i < n; i++) clients.push(libc.connectUnix(`${dir}/sock`));
  for (let i = 0; i < 10 && server.connectionCount < n; i++) loop.turn(100);
  assert.equal(server.connectionCount, n);
  return {
    server,
    loop,
    clients,
    done: () => {
      for (const fd of clients) if (fd >= 0) libc.close(fd);
      server.close();
      loop.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** Everything readable on `fd` now (non-blocking poll first). */
function drain(fd: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (;;) {
    if (!libc.pollReadable([fd], 0)) break;
    const buf = new Uint8Array(65536);
    const n = libc.read(fd, buf);
    if (n <= 0) break;
    parts.push(buf.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The replies in `bytes`: [type, reqId, payload]. */
function replies(bytes: Uint8Array): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (let o = 0; o < bytes.length;) {
    const v = new DataView(bytes.buffer, bytes.byteOffset + o, 16);
    const len = v.getUint32(12, true);
    const payload = new TextDecoder("latin1").decode(bytes.subarray(o + 16, o + 16 + len));
    out.push([v.getUint32(0, true), v.getUint32(4, true), payload]);
    o += 16 + len;
  }
  return out;
}

for (const batched of [true, false]) {
  const mode = batched ? "batched" : "one call per connection";
  Deno.test(`socket turn (${mode}): eight clients' requests read and answered in one turn`, () => {
    const r = rig(8, batched);
    try {
      r.clients.forEach((fd, i) => {
        libc.write(fd, encodeMessage(MsgType.WRITE, 100 + i, 0, `/c${i}\0value ${i}`));
      });
      r.loop.turn(100); // one turn: all eight readable
      r.clients.forEach((fd, i) => {
        libc.write(fd, encodeMessage(MsgType.READ, 200 + i, 0, `/c${i}\0`));
        // A second request pipelined behind it: same read, answered in order.
        libc.write(fd, encodeMessage(MsgType.READ, 300 + i, 0, `/c${(i + 1) % 8}\0`));
      });
      r.loop.turn(100);
      r.clients.forEach((fd, i) => {
        assert.deepEqual(replies(drain(fd)), [
          [MsgType.WRITE, 100 + i, "OK\0"],
          [MsgType.READ, 200 + i, `value ${i}`],
          [MsgType.READ, 300 + i, `value ${(i + 1) % 8}`],
        ]);
      });
      const s = r.server.batchStats;
      if (batched && s.batches > 0) {
        // Each turn: 8 requests peeked, then taken off with the 8 replies in one call (none without AIO).
        assert.equal(s.reads, 16);
        assert.equal(s.writes, 16);
        assert.equal(s.batches, 2);
      } else assert.deepEqual(s, { batches: 0, reads: 0, writes: 0 });
    } finally {
      r.done();
    }
  });

  Deno.test(`socket turn (${mode}): output past the socket's buffer waits for EPOLLOUT, nothing lost`, () => {
    const r = rig(3, batched);
    try {
      const value = "v".repeat(4000);
      libc.write(r.clients[0], encodeMessage(MsgType.WRITE, 1, 0, `/big\0${value}`));
      r.loop.turn(100);
      drain(r.clients[0]);
      // 200 READs of 4 KB from each client: far more than a socket buffer holds.
      const N = 200;
      for (const fd of r.clients) {
        const reqs: Uint8Array[] = [];
        for (let i = 0; i < N; i++) reqs.push(encodeMessage(MsgType.READ, i, 0, "/big\0"));
        const all = new Uint8Array(reqs.reduce((a, q) => a + q.length, 0));
        let o = 0;
        for (const q of reqs) {
          all.set(q, o);
          o += q.length;
        }
        assert.equal(libc.write(fd, all), all.length);
      }
      const got = r.clients.map(() => [] as Uint8Array[]);
      const total = N * (16 + value.length);
      const size = (i: number) => got[i].reduce((a, p) => a + p.length, 0);
      for (let turn = 0; turn < 2000 && r.clients.some((_, i) => size(i) < total); turn++) {
        r.loop.turn(10);
        r.clients.forEach((fd, i) => got[i].push(drain(fd)));
      }
      r.clients.forEach((_, i) => {
        const bytes = new Uint8Array(size(i));
        let o = 0;
        for (const p of got[i]) {
          bytes.set(p, o);
          o += p.length;
        }
        const rs = replies(bytes);
        assert.equal(rs.length, N, `client ${i}`);
        rs.forEach(([type, id, payload], k) => {
          assert.equal(type, MsgType.READ);
          assert.equal(id, k);
          assert.equal(payload, value);
        });
      });
      assert.equal(r.server.connectionCount, 3);
      // The first turn found all three readable: their requests were peeked and taken off in a batch.
      if (batched && r.server.batchStats.batches > 0) assert.ok(r.server.batchStats.reads >= 3);
    } finally {
      r.done();
    }
  });

  Deno.test(`socket turn (${mode}): a client gone before its reply is closed, the others are answered`, () => {
    const r = rig(3, batched);
    try {
      r.clients.forEach((fd, i) => libc.write(fd, encodeMessage(MsgType.READ, i, 0, "/\0")));
      libc.close(r.clients[1]);
      r.clients[1] = -1;
      for (let i = 0; i < 5 && r.server.connectionCount > 2; i++) r.loop.turn(100);
      assert.equal(r.server.connectionCount, 2);
      for (const i of [0, 2]) assert.deepEqual(replies(drain(r.clients[i])), [[MsgType.READ, i, ""]]);
    } finally {
      r.done();
    }
  });
}
