// ffi/aio.ts AioBatch: several socket reads or writes in one io_submit give exactly what the plain
// read(2)/write(2) calls give — bytes, EAGAIN on an empty or full non-blocking socket, EPIPE on a
// closed peer — and an operation io_submit refuses (a closed descriptor) is answered by the plain call.
import assert from "../helpers/assert.ts";
import * as libc from "../../ffi/libc.ts";
import { AioBatch } from "../../ffi/aio.ts";

/** `n` connected pairs: [server side (non-blocking, as the daemon's), client side (blocking)]. */
function pairs(n: number): { pairs: Array<[number, number]>; done: () => void } {
  const dir = Deno.makeTempDirSync({ prefix: "dxs-aio-" });
  const listener = libc.listenUnix(`${dir}/sock`);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const client = libc.connectUnix(`${dir}/sock`);
    const server = libc.accept(listener);
    assert.ok(server >= 0, `accept: ${server}`);
    out.push([server, client]);
  }
  return {
    pairs: out,
    done: () => {
      for (const [s, c] of out) {
        if (s >= 0) libc.close(s);
        if (c >= 0) libc.close(c);
      }
      libc.close(listener);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("AioBatch: writes to several sockets in one batch arrive, each with its byte count", () => {
  const batch = AioBatch.create(8);
  if (batch === null) return; // no AIO in this kernel: the server writes one by one (tested below)
  const { pairs: ps, done } = pairs(5);
  try {
    ps.forEach(([s], i) => assert.ok(batch.write(s, bytes(`reply ${i} `.repeat(i + 1)))));
    assert.equal(batch.size, 5);
    const r = batch.run();
    assert.equal(batch.size, 0);
    ps.forEach(([, c], i) => {
      const want = `reply ${i} `.repeat(i + 1);
      assert.equal(r[i], want.length);
      const buf = new Uint8Array(256);
      assert.equal(text(buf.subarray(0, libc.read(c, buf))), want);
    });
  } finally {
    done();
    batch.destroy();
  }
});

Deno.test("AioBatch: views at different offsets of one buffer, batch after batch, write their own bytes", () => {
  // The socket transport hands the batch subarrays of long-lived buffers (a connection's output, the
  // buffer peeked requests are consumed into): each view's address is its buffer's plus its offset.
  const batch = AioBatch.create(8);
  if (batch === null) return;
  const { pairs: ps, done } = pairs(3);
  try {
    const shared = bytes("0123456789abcdefghij");
    for (const [from, to] of [[0, 4], [7, 12], [15, 20], [3, 9]]) {
      const view = shared.subarray(from, to);
      ps.forEach(([s]) => batch.write(s, view));
      assert.deepEqual(Array.from(batch.run().subarray(0, 3)), [to - from, to - from, to - from]);
      for (const [, c] of ps) {
        const buf = new Uint8Array(64);
        assert.equal(text(buf.subarray(0, libc.read(c, buf))), text(view));
      }
    }
  } finally {
    done();
    batch.destroy();
  }
});

Deno.test("AioBatch: reads give each socket's bytes, EAGAIN for an empty one, 0 at end of file", () => {
  const batch = AioBatch.create(8);
  if (batch === null) return;
  const { pairs: ps, done } = pairs(4);
  try {
    assert.equal(libc.write(ps[0][1], bytes("first")), 5);
    // ps[1]: nothing written (EAGAIN); ps[2]: peer closed (0); ps[3]: more than the buffer holds.
    libc.close(ps[2][1]);
    ps[2][1] = -1;
    assert.equal(libc.write(ps[3][1], bytes("x".repeat(100))), 100);
    const bufs = [new Uint8Array(64), new Uint8Array(64), new Uint8Array(64), new Uint8Array(40)];
    ps.forEach(([s], i) => batch.read(s, bufs[i]));
    assert.deepEqual(Array.from(batch.run().subarray(0, 4)), [5, -libc.EAGAIN, 0, 40]);
    assert.equal(text(bufs[0].subarray(0, 5)), "first");
    // The rest stays in the socket for the next read, as with read(2).
    assert.equal(libc.read(ps[3][0], new Uint8Array(100)), 60);
  } finally {
    done();
    batch.destroy();
  }
});

Deno.test("AioBatch: EPIPE for a closed peer, EAGAIN for a full socket, the plain call for a bad fd", () => {
  const batch = AioBatch.create(4);
  if (batch === null) return;
  const { pairs: ps, done } = pairs(3);
  try {
    libc.close(ps[0][1]);
    ps[0][1] = -1;
    // Fill ps[1]'s socket until write(2) says EAGAIN.
    const chunk = new Uint8Array(65536);
    while (libc.write(ps[1][0], chunk) > 0) { /* fill */ }
    assert.ok(batch.write(ps[0][0], bytes("lost")));
    assert.ok(batch.write(ps[1][0], bytes("full")));
    assert.ok(batch.write(ps[2][0], bytes("fine")));
    assert.deepEqual(Array.from(batch.run().subarray(0, 3)), [-libc.EPIPE, -libc.EAGAIN, 4]);
    // io_submit refuses a descriptor that is not open (EBADF) and stops there: the plain calls answer
    // it and the rest. (Not one just closed: the next socket would get its number.)
    const fd = 1 << 20;
    const other = pairs(1);
    try {
      batch.write(fd, bytes("gone"));
      batch.write(other.pairs[0][0], bytes("still"));
      assert.deepEqual(Array.from(batch.run().subarray(0, 2)), [-9, /* EBADF */ 5]);
      const buf = new Uint8Array(16);
      assert.equal(text(buf.subarray(0, libc.read(other.pairs[0][1], buf))), "still");
    } finally {
      other.done();
    }
    // A full batch says so.
    for (let i = 0; i < 4; i++) assert.ok(batch.write(ps[1][0], bytes("x")));
    assert.equal(batch.write(ps[1][0], bytes("x")), false);
    batch.run();
  } finally {
    done();
    batch.destroy();
  }
});
