// The real daemon over its Unix socket, with the raw wire client: pipelining, framing violations,
// malformed payloads, many connections, deep paths.
import assert from "../helpers/assert.ts";
import { withDaemon } from "../helpers/daemon.ts";
import { concat, errnoOf, frame, header, joinNul, type Reply, WireClient, XS } from "../helpers/wire.ts";

/** Run `fn` with a connected client, closing it whatever happens. */
async function withClient<T>(socket: string, fn: (c: WireClient) => Promise<T>): Promise<T> {
  const c = await WireClient.connect(socket);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

async function expectOk(c: WireClient, type: number, payload: string): Promise<Reply> {
  const r = await c.request(type, payload);
  assert.equal(r.type, type, `${type} ${JSON.stringify(payload.slice(0, 50))} failed: ${errnoOf(r)}`);
  return r;
}

Deno.test("e2e: 50 pipelined requests in one write are answered in order", async () => {
  await withDaemon(async (d) => {
    await withClient(d.socket, async (c) => {
      const msgs: Uint8Array[] = [];
      for (let i = 0; i < 50; i++) {
        msgs.push(
          i % 2 === 0
            ? frame(XS.WRITE, 1000 + i, 0, `/pipe/k${i >> 1}\0value-${i}`)
            : frame(XS.READ, 1000 + i, 0, `/pipe/k${i >> 1}\0`),
        );
      }
      await c.writeRaw(concat(msgs));
      for (let i = 0; i < 50; i++) {
        const r = await c.recv();
        assert.equal(r.reqId, 1000 + i, "replies come in request order");
        assert.equal(r.txId, 0);
        if (i % 2 === 0) assert.deepEqual([r.type, r.payload], [XS.WRITE, "OK\0"]);
        else assert.deepEqual([r.type, r.payload], [XS.READ, `value-${i - 1}`], `read ${i}`);
      }
      const dir = await expectOk(c, XS.DIRECTORY, "/pipe\0");
      assert.equal(
        dir.payload,
        Array.from({ length: 25 }, (_, i) => `k${i}`).sort().map((s) => s + "\0").join(""),
      );
    });
  });
});

Deno.test("e2e: a request split into many small writes is reassembled", async () => {
  await withDaemon(async (d) => {
    await withClient(d.socket, async (c) => {
      const bytes = concat([frame(XS.WRITE, 7, 0, "/split\0xyz"), frame(XS.READ, 8, 0, "/split\0")]);
      for (let i = 0; i < bytes.length; i += 3) {
        await c.writeRaw(bytes.subarray(i, i + 3));
        await new Promise((r) => setTimeout(r, 1)); // let each piece arrive on its own
      }
      assert.deepEqual(await c.recv(), { type: XS.WRITE, reqId: 7, txId: 0, payload: "OK\0" });
      assert.deepEqual(await c.recv(), { type: XS.READ, reqId: 8, txId: 0, payload: "xyz" });
    });
  });
});

for (const len of [4097, 0x40000000, 0xffffffff]) {
  Deno.test(`e2e: a header announcing ${len} bytes closes only that connection`, async () => {
    await withDaemon(async (d) => {
      await withClient(d.socket, async (other) => {
        await expectOk(other, XS.WRITE, "/alive\0yes");
        await withClient(d.socket, async (bad) => {
          await expectOk(bad, XS.READ, "/alive\0");
          // Only the header (a daemon waiting for `len` bytes would hang here), plus a few bytes.
          await bad.writeRaw(concat([header(XS.WRITE, 99, 0, len), new TextEncoder().encode("/x\0y")]));
          assert.equal(await bad.expectClosed(), "eof");
        });
        // The other, already open connection keeps working, and new ones are accepted.
        assert.equal((await expectOk(other, XS.READ, "/alive\0")).payload, "yes");
        await withClient(d.socket, async (fresh) => {
          assert.equal((await expectOk(fresh, XS.READ, "/alive\0")).payload, "yes");
        });
      });
    });
  });
}

Deno.test("e2e: a payload of exactly 4096 bytes is served", async () => {
  await withDaemon(async (d) => {
    await withClient(d.socket, async (c) => {
      const path = "/max";
      const value = "v".repeat(4096 - path.length - 1);
      await expectOk(c, XS.WRITE, `${path}\0${value}`);
      assert.equal((await expectOk(c, XS.READ, `${path}\0`)).payload, value);
    });
  });
});

Deno.test("e2e: malformed payloads get EINVAL and the connection lives on", async () => {
  await withDaemon(async (d) => {
    await withClient(d.socket, async (c) => {
      const cases: Array<[number, string]> = [
        [XS.READ, "/no-nul"],
        [XS.READ, "/a\0/b\0"],
        [XS.WRITE, "/no-nul-at-all"],
        [XS.READ, "/bad path\0"],
        [XS.READ, "//\0"],
        [XS.READ, "/trailing/\0"],
        [XS.READ, "\0"],
        [XS.WRITE, "@introduceDomain\0v"],
        [XS.GET_DOMAIN_PATH, "12a\0"],
        [XS.GET_DOMAIN_PATH, "70000\0"],
        [XS.TRANSACTION_END, "X\0"],
        [XS.SET_PERMS, "/tool\0q9\0"],
        [XS.DIRECTORY_PART, "/tool\0-1\0"],
        [XS.RM, "/\0"],
      ];
      for (const [type, payload] of cases) {
        const r = await c.request(type, payload);
        assert.equal(errnoOf(r), "EINVAL", `type ${type} ${JSON.stringify(payload)}`);
        assert.equal(r.payload, "EINVAL\0");
      }
      const unknown = await c.request(27, "");
      assert.equal(errnoOf(unknown), "ENOSYS");
      assert.equal((await expectOk(c, XS.READ, "/tool/xenstored\0")).payload, "");
    });
  });
});

Deno.test("e2e: 100 concurrent connections", async () => {
  await withDaemon(async (d) => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => WireClient.connect(d.socket)));
    try {
      await Promise.all(clients.map((c, i) => c.send(XS.WRITE, `/conc/${i}\0from-${i}`)));
      const writes = await Promise.all(clients.map((c) => c.recv()));
      for (const r of writes) assert.equal(r.payload, "OK\0");
      const reads = await Promise.all(clients.map((c, i) => c.request(XS.READ, `/conc/${(i + 1) % 100}\0`)));
      reads.forEach((r, i) => assert.equal(r.payload, `from-${(i + 1) % 100}`));
      const dir = await clients[0].request(XS.DIRECTORY, "/conc\0");
      assert.equal(dir.payload.split("\0").filter((s) => s !== "").length, 100);
    } finally {
      for (const c of clients) c.close();
    }
    // Closing them all leaves the daemon serving.
    await withClient(d.socket, async (c) => {
      assert.equal((await expectOk(c, XS.READ, "/conc/42\0")).payload, "from-42");
    });
  });
});

Deno.test("e2e: the deepest chain the protocol allows (1536 levels) via WRITE, walked, removed via RM", async () => {
  // 3072 bytes is the absolute-path limit: "/a" × 1536, reachable by dom0 once -M (path-max, 2048 by
  // default, binding dom0 too as in cxenstored 4.17) allows it. (A 2000-deep chain cannot be named on
  // the wire; tests/store/tree_test.ts covers deeper trees.)
  const DEPTH = 1536;
  await withDaemon(async (d) => {
    await withClient(d.socket, async (c) => {
      const at = (n: number) => "/a".repeat(n);
      assert.equal(at(DEPTH).length, 3072);
      await expectOk(c, XS.WRITE, `${at(DEPTH)}\0bottom`);
      assert.equal((await expectOk(c, XS.READ, `${at(DEPTH)}\0`)).payload, "bottom");
      assert.equal((await expectOk(c, XS.DIRECTORY, `${at(DEPTH - 1)}\0`)).payload, "a\0");
      assert.equal(
        errnoOf(await c.request(XS.WRITE, `${at(DEPTH)}/b\0x`)),
        "EINVAL",
        "one more level is too long",
      );
      await expectOk(c, XS.RM, "/a\0");
      assert.equal(errnoOf(await c.request(XS.READ, "/a\0")), "ENOENT");

      // Again one level per WRITE (pipelined), then removed bottom-up one RM at a time.
      const writes = Array.from(
        { length: DEPTH },
        (_, i) => frame(XS.WRITE, i + 1, 0, `${at(i + 1)}\0${i + 1}`),
      );
      await c.writeRaw(concat(writes));
      for (let i = 0; i < DEPTH; i++) {
        const r = await c.recv();
        assert.equal(r.payload, "OK\0", `write level ${i + 1}`);
      }
      assert.equal((await expectOk(c, XS.READ, `${at(1000)}\0`)).payload, "1000");
      const rms = Array.from({ length: DEPTH }, (_, i) => frame(XS.RM, i + 1, 0, joinNul(at(DEPTH - i))));
      await c.writeRaw(concat(rms));
      for (let i = 0; i < DEPTH; i++) assert.equal((await c.recv()).payload, "OK\0", `rm level ${DEPTH - i}`);
      assert.equal((await expectOk(c, XS.DIRECTORY, "/\0")).payload, "tool\0");
    });
  }, { args: ["-M", "3072"] });
});
