// End-to-end watches against a real daemon: Debian's xenstore-watch (libxenstore) as the client,
// and raw-protocol clients for what the tools cannot express (depth, a reader that stops reading).
// No timing assertions: every wait is for a message, a line or an exit, with a generous timeout that
// only turns a hang into a failure.
import assert from "../helpers/assert.ts";
import { type Daemon, runTool, withDaemon } from "../helpers/daemon.ts";
import { EofError, errnoOf, joinNul, type Reply, splitNul, WireClient, XS } from "../helpers/wire.ts";

const dec = new TextDecoder();

/** A running `xenstore-watch`, whose stdout lines can be awaited one by one. */
class Watcher {
  private buf = "";
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly child: Deno.ChildProcess;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(args: string[], socket: string, timeoutMs = 20000) {
    this.child = new Deno.Command("xenstore-watch", {
      args,
      env: { XENSTORED_PATH: socket },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.reader = this.child.stdout.getReader();
    // A hung watcher fails the test instead of hanging it.
    this.timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* exited */ }
    }, timeoutMs);
  }

  /** The next line of output (xenstore-watch flushes after every event). */
  async line(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const l = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return l;
      }
      const { value, done } = await this.reader.read();
      if (done) throw new Error(`xenstore-watch output ended; partial line ${JSON.stringify(this.buf)}`);
      this.buf += dec.decode(value, { stream: true });
    }
  }

  /** Wait for the exit; returns the exit code and any lines not read yet. */
  async exit(): Promise<{ code: number; rest: string[] }> {
    for (;;) {
      const { value, done } = await this.reader.read();
      if (done) break;
      this.buf += dec.decode(value, { stream: true });
    }
    const st = await this.child.status;
    clearTimeout(this.timer);
    return { code: st.signal ? -1 : st.code, rest: this.buf.split("\n").filter((l) => l !== "") };
  }
}

async function xs(d: Daemon, tool: string, ...args: string[]): Promise<string> {
  const r = await runTool(tool, args, d.socket);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

Deno.test("xenstore-watch: initial event, create, modify, child, recursive removal", async () => {
  await withDaemon(async (d) => {
    const w = new Watcher(["-n", "5", "/e2e/watched"], d.socket);
    assert.equal(await w.line(), "/e2e/watched", "initial event");
    await xs(d, "xenstore-write", "/e2e/unrelated", "x"); // sibling: no event
    await xs(d, "xenstore-write", "/e2e/watched", "1"); // creation
    await xs(d, "xenstore-write", "/e2e/watched", "2"); // modification
    await xs(d, "xenstore-write", "/e2e/watched/child/deep", "3"); // descendant
    await xs(d, "xenstore-rm", "/e2e"); // parent removed: reported as the watched path
    const { code, rest } = await w.exit();
    assert.equal(code, 0);
    assert.deepEqual(rest, ["/e2e/watched", "/e2e/watched", "/e2e/watched/child/deep", "/e2e/watched"]);
  });
});

Deno.test("xenstore-watch: relative path reported relative; permission change fires", async () => {
  await withDaemon(async (d) => {
    const w = new Watcher(["-n", "4", "rel"], d.socket);
    assert.equal(await w.line(), "rel");
    await xs(d, "xenstore-write", "/local/domain/0/rel/x", "1");
    assert.equal(await w.line(), "rel/x");
    await xs(d, "xenstore-chmod", "/local/domain/0/rel/x", "n0", "r3");
    assert.equal(await w.line(), "rel/x");
    await xs(d, "xenstore-rm", "/local/domain/0/rel");
    const { code, rest } = await w.exit();
    assert.equal(code, 0);
    assert.deepEqual(rest, ["rel"]);
  });
});

Deno.test("xenstore-watch: several watchers each get their own events; a transaction fires once per path", async () => {
  await withDaemon(async (d) => {
    const a = new Watcher(["-n", "3", "/multi/a"], d.socket);
    const b = new Watcher(["-n", "2", "/multi"], d.socket);
    assert.equal(await a.line(), "/multi/a");
    assert.equal(await b.line(), "/multi");
    // Raw client: a transaction that writes /multi/a twice commits one event per watcher.
    using c = await WireClient.connect(d.socket);
    const tx = Number(splitNul((await c.request(XS.TRANSACTION_START, joinNul(""))).payload)[0]);
    assert.ok(tx > 0);
    for (const v of ["1", "2"]) {
      const r = await c.request(XS.WRITE, "/multi/a\0" + v, { txId: tx });
      assert.equal(errnoOf(r), null);
    }
    assert.equal(errnoOf(await c.request(XS.TRANSACTION_END, joinNul("T"), { txId: tx })), null);
    await xs(d, "xenstore-write", "/multi/a", "3");
    const ra = await a.exit();
    const rb = await b.exit();
    assert.equal(ra.code, 0);
    assert.equal(rb.code, 0);
    assert.deepEqual(ra.rest, ["/multi/a", "/multi/a"]);
    assert.deepEqual(rb.rest, ["/multi/a"]);
  });
});

/** Read the next WATCH_EVENT as [path, token]. */
async function nextEvent(c: WireClient): Promise<[string, string]> {
  const r = await c.recv(10000);
  assert.equal(
    r.type,
    XS.WATCH_EVENT,
    `expected a WATCH_EVENT, got type ${r.type} ${JSON.stringify(r.payload)}`,
  );
  const [p, t] = splitNul(r.payload);
  return [p, t];
}

/** Send a request; return its reply and the WATCH_EVENTs that arrived before it, as "path token". */
async function requestCollecting(
  c: WireClient,
  type: number,
  payload: string,
  events: string[],
): Promise<Reply> {
  const reqId = await c.send(type, payload);
  for (;;) {
    const m = await c.recv(10000);
    if (m.type === XS.WATCH_EVENT) {
      events.push(splitNul(m.payload).join(" "));
      continue;
    }
    assert.equal(m.reqId, reqId);
    return m;
  }
}

Deno.test("raw protocol: depth parameter, duplicate registration, tx_id ignored", async () => {
  await withDaemon(async (d) => {
    using c = await WireClient.connect(d.socket);
    const events: string[] = [];
    const r = await requestCollecting(c, XS.WATCH, joinNul("/dp", "d1", "1"), events);
    assert.equal(r.type, XS.WATCH);
    assert.equal(errnoOf(await requestCollecting(c, XS.WATCH, joinNul("/dp", "d1"), events)), "EEXIST");
    // A non-zero tx_id (no such transaction) is ignored by WATCH.
    const reqId = await c.send(XS.WATCH, joinNul("/dp/a", "tx"), { txId: 99 });
    const rt = await c.recv(10000);
    assert.equal(rt.type, XS.WATCH, `WATCH with tx_id 99: ${JSON.stringify(rt.payload)}`);
    assert.equal(rt.reqId, reqId);
    for (const p of ["/dp/a/b", "/dp/a", "/dp"]) {
      assert.equal(errnoOf(await requestCollecting(c, XS.WRITE, `${p}\0v`, events)), null);
    }
    await requestCollecting(c, XS.READ, joinNul("/dp"), events); // events are sent before later replies
    // /dp/a/b is two levels below /dp: the depth-1 watch fires only for /dp/a and /dp.
    assert.deepEqual(events, ["/dp d1", "/dp/a tx", "/dp/a/b tx", "/dp/a d1", "/dp/a tx", "/dp d1"]);
  });
});

/**
 * A client registers a watch and never reads. Another client writes until the daemon gives up on the
 * stuck one; meanwhile an active watcher keeps receiving everything and a third client is answered.
 * The daemon must stay up and exit cleanly afterwards.
 */
async function slowReader(args: string[], logNeedle: string): Promise<void> {
  await withDaemon(async (d) => {
    using slow = await WireClient.connect(d.socket);
    await slow.send(XS.WATCH, joinNul("/slow", "stuck")); // never read its reply or anything else
    using active = await WireClient.connect(d.socket);
    assert.equal((await active.request(XS.WATCH, joinNul("/slow", "active"))).type, XS.WATCH);
    assert.deepEqual(await nextEvent(active), ["/slow", "active"]);
    using writer = await WireClient.connect(d.socket);

    // ~2 KiB per event: the socket buffer fills after a few hundred, then the daemon's own limit.
    const long = "p".repeat(2000);
    const BATCH = 16;
    let writes = 0;
    for (let batch = 0; batch < 400 && !d.stderr.includes(logNeedle); batch++) {
      for (let i = 0; i < BATCH; i++) await writer.send(XS.WRITE, `/slow/${writes + i}/${long}\0v`);
      for (let i = 0; i < BATCH; i++) {
        const r = await writer.recv(10000);
        assert.equal(r.type, XS.WRITE, `write reply: ${JSON.stringify(r.payload)}`);
      }
      for (let i = 0; i < BATCH; i++) {
        assert.deepEqual(await nextEvent(active), [`/slow/${writes + i}/${long}`, "active"]);
      }
      writes += BATCH;
      // The log line is written before the disconnect's effects; give the daemon's stderr a turn.
      await writer.request(XS.READ, joinNul("/slow"));
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(d.stderr.includes(logNeedle), `no "${logNeedle}" in the daemon log after ${writes} writes`);
    assert.ok(d.stderr.includes("disconnecting a stuck client (1 so far)"), "counted and logged");

    // The stuck client was disconnected: what the kernel still held, then EOF.
    let events = 0;
    let sawReply = false;
    for (;;) {
      try {
        const m = await slow.recv(10000);
        if (m.type === XS.WATCH) sawReply = true;
        else if (m.type === XS.WATCH_EVENT) events++;
      } catch (e) {
        if (e instanceof EofError || e instanceof Deno.errors.ConnectionReset) break;
        throw e;
      }
    }
    assert.ok(sawReply, "the WATCH reply was delivered before the disconnect");
    assert.ok(events < writes + 1, `the stuck client got ${events} of ${writes + 1} events`);

    // Everyone else is unaffected: more writes still reach the active watcher, requests are answered.
    assert.equal(errnoOf(await writer.request(XS.WRITE, "/slow/after\0v")), null);
    assert.deepEqual(await nextEvent(active), ["/slow/after", "active"]);
    using fresh = await WireClient.connect(d.socket);
    const r = await fresh.request(XS.READ, joinNul("/slow/after"));
    assert.equal(r.type, XS.READ);
    assert.equal(r.payload, "v");
    assert.ok(await d.alive());
  }, { args });
}

Deno.test("slow reader: disconnected at --max-watch-events, others unaffected", async () => {
  await slowReader(["--max-watch-events", "32"], "watch events unread (limit 32)");
});

Deno.test("slow reader: disconnected at --max-out-bytes, others unaffected", async () => {
  await slowReader(
    ["--max-out-bytes", "65536", "--max-watch-events", "1000000"],
    "bytes unread (limit 65536)",
  );
});
