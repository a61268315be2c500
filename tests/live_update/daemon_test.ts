// Live update dx → dx end to end (issue 16): the real daemon, switched by Debian's xenstore-control
// 4.17 (`live-update <program>`) or by raw CONTROL requests, while socket clients are mid-flight:
// a watcher, a half-sent request, a client that never reads, a transaction start held during the
// switch. Every connection must survive on the same descriptor (no reconnect), its watch still fire,
// each acknowledgement arrive exactly once, the store be equal before and after, and the pid stay.
import assert from "../helpers/assert.ts";
import { type Daemon, runTool, startDaemon } from "../helpers/daemon.ts";
import { errnoOf, frame, splitNul, WireClient, XS } from "../helpers/wire.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const XENSTORE_CONTROL = "/usr/lib/xen-4.17/bin/xenstore-control";
const haveTools = exists(XENSTORE_CONTROL) && exists("/usr/bin/xenstore-ls");

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A daemon whose run folder is its temp dir, and a launcher there that starts this checkout. */
async function liveDaemon(extra: readonly string[] = []): Promise<{ d: Daemon; launcher: string }> {
  const rundir = await Deno.makeTempDir({ prefix: "dxs-lu-" });
  const launcher = `${rundir}/dxenstored`;
  Deno.writeTextFileSync(
    launcher,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" "$@"\n`,
    { mode: 0o755 },
  );
  const args = ["--log-level", "debug", ...extra.map((a) => a.replaceAll("{rundir}", rundir))];
  const d = await startDaemon({ env: { XENSTORED_RUNDIR: rundir }, args });
  return { d, launcher };
}

async function cleanup(d: Daemon, launcher: string): Promise<void> {
  try {
    await d.stop();
  } finally {
    await Deno.remove(launcher.slice(0, launcher.lastIndexOf("/")), { recursive: true }).catch(() => {});
  }
}

/** The whole store with permissions, as xenstore-ls -p prints it. */
async function storeText(socket: string): Promise<string> {
  const r = await runTool("/usr/bin/xenstore-ls", ["-p", "/"], socket);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function control(socket: string, ...args: string[]) {
  return await runTool(XENSTORE_CONTROL, args, socket, 60000);
}

/** A round trip that proves nothing else is queued before its reply (exactly-once checks). */
async function nothingPending(c: WireClient, what: string): Promise<void> {
  const id = await c.send(XS.READ, "/\0");
  const r = await c.recv(20000);
  assert.equal(r.reqId, id, `${what}: an unexpected message before the sync reply: ${JSON.stringify(r)}`);
}

Deno.test({
  name: "live update dx → dx by xenstore-control: connections, watches, half-sent and unread data survive",
  ignore: !haveTools,
  sanitizeResources: false,
  fn: async () => {
    const { d, launcher } = await liveDaemon();
    try {
      const w = await WireClient.connect(d.socket);
      const writer = await WireClient.connect(d.socket);
      const half = await WireClient.connect(d.socket);
      const lazy = await WireClient.connect(d.socket);
      // Data.
      const big = "v".repeat(4000);
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/lu/big\0" + big)), null);
      for (let i = 0; i < 20; i++) {
        assert.equal(errnoOf(await writer.request(XS.WRITE, `/lu/n${i}\0value ${i}`)), null);
      }
      assert.equal(errnoOf(await writer.request(XS.SET_PERMS, "/lu/n3\0b0\0r5\0")), null);
      // A watcher: its OK and the initial event.
      const wid = await w.send(XS.WATCH, "/lu/w\0tokW\0");
      const got = [await w.recv(), await w.recv()];
      assert.ok(got.some((r) => r.reqId === wid && r.type === XS.WATCH), "watch acknowledged");
      assert.ok(got.some((r) => r.type === XS.WATCH_EVENT), "initial event");
      // A request cut inside its payload.
      const halfReq = frame(XS.WRITE, 77, 0, "/lu/half\0the rest arrives after the switch");
      await half.writeRaw(halfReq.subarray(0, 25));
      // A client that sends 150 READs of a 4000-byte value and does not read the replies (yet).
      const LAZY = 150;
      const reqs: Uint8Array[] = [];
      for (let i = 1; i <= LAZY; i++) reqs.push(frame(XS.READ, 1000 + i, 0, "/lu/big\0"));
      for (const r of reqs) await lazy.writeRaw(r);
      await new Promise((r) => setTimeout(r, 300));
      const before = await storeText(d.socket);

      const lu = await control(d.socket, "live-update", launcher);
      assert.equal(lu.code, 0, `xenstore-control: ${lu.stdout}${lu.stderr}\n${d.stderr}`);
      assert.ok(await d.alive(), "the same process (pid) serves on");
      // Our four and xenstore-control's own.
      assert.ok(/adopted 5 socket connection\(s\) with 1 watch/.test(d.stderr), d.stderr);

      assert.equal(await storeText(d.socket), before, "store equal before and after");
      // The watch fires on the same connection.
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/lu/w/x\0after")), null);
      const ev = await w.recv(20000);
      assert.equal(ev.type, XS.WATCH_EVENT);
      assert.deepEqual(splitNul(ev.payload), ["/lu/w/x", "tokW"]);
      await nothingPending(w, "watcher");
      // The half-sent request completes and is answered once.
      await half.writeRaw(halfReq.subarray(25));
      const hr = await half.recv(20000);
      assert.equal(hr.reqId, 77);
      assert.equal(hr.type, XS.WRITE, JSON.stringify(hr));
      await nothingPending(half, "half-sent client");
      const v = await writer.request(XS.READ, "/lu/half\0");
      assert.equal(v.payload, "the rest arrives after the switch");
      // The lazy client reads every reply, in order, exactly once.
      for (let i = 1; i <= LAZY; i++) {
        const r = await lazy.recv(20000);
        assert.equal(r.reqId, 1000 + i, `lazy reply ${i}`);
        assert.equal(r.payload, big, `lazy reply ${i} payload`);
      }
      await nothingPending(lazy, "lazy client");
      for (const c of [w, writer, half, lazy]) c.close();
    } finally {
      await cleanup(d, launcher);
    }
  },
});

Deno.test({
  name: "live update dx → dx: 5 switches in a row keep the watcher's connection; a held transaction start",
  ignore: !haveTools,
  sanitizeResources: false,
  fn: async () => {
    const { d, launcher } = await liveDaemon();
    try {
      const w = await WireClient.connect(d.socket);
      const writer = await WireClient.connect(d.socket);
      await w.request(XS.WATCH, "lu-rel\0rel\0"); // relative: /local/domain/0/lu-rel
      assert.equal((await w.recv()).type, XS.WATCH_EVENT);
      for (let i = 0; i < 5; i++) {
        const before = await storeText(d.socket);
        // Switch 2 names the new program's arguments (-c), as an operator changing options would.
        const cmdline = `--socket ${d.socket} --log-level debug --entry-nb 4321`;
        const lu = i === 2
          ? await control(d.socket, "live-update", "-c", cmdline, launcher)
          : await control(d.socket, "live-update", launcher);
        assert.equal(lu.code, 0, `switch ${i}: ${lu.stdout}${lu.stderr}\n${d.stderr}`);
        assert.equal(await storeText(d.socket), before, `switch ${i}: store`);
        assert.equal(errnoOf(await writer.request(XS.WRITE, `/local/domain/0/lu-rel/k${i}\0${i}`)), null);
        const ev = await w.recv(20000);
        assert.deepEqual(splitNul(ev.payload), [`lu-rel/k${i}`, "rel"], `switch ${i}: relative watch event`);
      }
      assert.equal(d.stderr.match(/live update: adopted/g)?.length, 5);
      assert.ok(d.stderr.includes(`"--entry-nb","4321","-U"]`), "switch 2 exec'd with -c's arguments");
      // Later switches pass the arguments on: the quota from -c is still in force.
      const q = await control(d.socket, "quota");
      assert.ok(/^nodes +: +4321 /m.test(q.stdout), q.stdout);

      // Raw CONTROL: a TRANSACTION_START sent after -f is held and answered by the new program.
      const ctl = await WireClient.connect(d.socket);
      const t = await WireClient.connect(d.socket);
      const f = await ctl.request(XS.CONTROL, `live-update\0-f\0${launcher}\0`, { timeoutMs: 30000 });
      assert.equal(f.payload, "OK\0");
      const tsId = await t.send(XS.TRANSACTION_START, "\0");
      await new Promise((r) => setTimeout(r, 200));
      const sId = await ctl.send(XS.CONTROL, "live-update\0-s\0-t\x005\0");
      const s = await ctl.recv(30000);
      assert.equal(s.reqId, sId);
      assert.equal(s.payload, "OK\0");
      const ts = await t.recv(20000);
      assert.equal(ts.reqId, tsId);
      assert.equal(ts.type, XS.TRANSACTION_START, JSON.stringify(ts));
      const tx = Number(splitNul(ts.payload)[0]);
      assert.equal(errnoOf(await t.request(XS.WRITE, "/lu/tx\0in tx", { txId: tx })), null);
      assert.equal(errnoOf(await t.request(XS.TRANSACTION_END, "T\0", { txId: tx })), null);
      await nothingPending(t, "transaction client");
      assert.equal(d.stderr.match(/live update: adopted/g)?.length, 6);
      for (const c of [w, writer, ctl, t]) c.close();
    } finally {
      await cleanup(d, launcher);
    }
  },
});

Deno.test({
  name: "live update dx → dx: refusals and failures leave the daemon serving with a clear reply",
  ignore: !haveTools,
  sanitizeResources: false,
  fn: async () => {
    const { d, launcher } = await liveDaemon();
    try {
      const missing = await control(d.socket, "live-update", `${launcher}.missing`);
      assert.equal(missing.code, 3);
      assert.ok(missing.stderr.includes("File not accessible."), missing.stderr);
      const notDx = await control(d.socket, "live-update", "/bin/true");
      assert.equal(notDx.code, 3);
      assert.ok(notDx.stderr.includes("not a xenstored"), notDx.stderr);

      // The program disappears between -f and -s: exec fails, the old daemon answers and serves on.
      const ctl = await WireClient.connect(d.socket);
      const gone = `${launcher}-gone`;
      Deno.copyFileSync(launcher, gone);
      Deno.chmodSync(gone, 0o755);
      assert.equal(
        (await ctl.request(XS.CONTROL, `live-update\0-f\0${gone}\0`, { timeoutMs: 30000 })).payload,
        "OK\0",
      );
      assert.equal(
        (await ctl.request(XS.CONTROL, "live-update\0-f\0/bin/sh\0")).payload.startsWith(
          "live-update session already active.",
        ),
        true,
      );
      Deno.removeSync(gone);
      const s = await ctl.request(XS.CONTROL, "live-update\0-s\0", { timeoutMs: 30000 });
      assert.ok(s.payload.startsWith("Error activating new binary.\n"), JSON.stringify(s.payload));
      assert.ok(/live update failed/.test(d.stderr), d.stderr);
      assert.ok(!exists(`${launcher.slice(0, launcher.lastIndexOf("/"))}/state_dump`), "no dump left behind");
      assert.equal(errnoOf(await ctl.request(XS.WRITE, "/lu/after\0still serving")), null);
      assert.equal(
        (await ctl.request(XS.CONTROL, "live-update\0-a\0")).payload,
        "No live-update session active.\0",
      );

      // An open transaction: -s waits for it, then refuses (no -F) naming it.
      const t = await WireClient.connect(d.socket);
      const tx = Number(splitNul((await t.request(XS.TRANSACTION_START, "\0")).payload)[0]);
      assert.equal(
        (await ctl.request(XS.CONTROL, `live-update\0-f\0${launcher}\0`, { timeoutMs: 30000 })).payload,
        "OK\0",
      );
      const started = Date.now();
      const r = await ctl.request(XS.CONTROL, "live-update\0-s\0-t\x001\0", { timeoutMs: 30000 });
      assert.ok(Date.now() - started >= 900, "waited for the timeout");
      assert.ok(
        /^Domains with long running transactions:\nDomain 0: [0-9]+ s\0$/.test(r.payload),
        JSON.stringify(r.payload),
      );
      // The transaction is intact.
      assert.equal(errnoOf(await t.request(XS.WRITE, "/lu/t\0x", { txId: tx })), null);
      // -F: it goes ahead, the transaction is dropped (TRANSACTION_END: ENOENT, as cxenstored).
      const forced = await control(d.socket, "live-update", "-F", "-t", "1", launcher);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal(errnoOf(await t.request(XS.TRANSACTION_END, "T\0", { txId: tx })), "ENOENT");
      const gone2 = await t.request(XS.READ, "/lu/t\0");
      assert.equal(errnoOf(gone2), "ENOENT", "the dropped transaction's write is not committed");
      ctl.close();
      t.close();
    } finally {
      await cleanup(d, launcher);
    }
  },
});

Deno.test({
  name: "live update dx → dx with a file backend in group-commit mode: flushed, reopened, checked",
  ignore: !haveTools,
  sanitizeResources: false,
  fn: async () => {
    const { d, launcher } = await liveDaemon(["--backend", "file:{rundir}/state", "--sync", "group:5"]);
    try {
      const c = await WireClient.connect(d.socket);
      // A burst of pipelined writes right before the switch: their replies wait for group commit.
      const N = 200;
      for (let i = 0; i < N; i++) await c.send(XS.WRITE, `/gc/n${i}\0v${i}`);
      const lu = control(d.socket, "live-update", launcher);
      for (let i = 0; i < N; i++) {
        const r = await c.recv(30000);
        assert.equal(r.type, XS.WRITE, JSON.stringify(r));
      }
      const res = await lu;
      assert.equal(res.code, 0, `${res.stderr}\n${d.stderr}`);
      assert.ok(/\(the backend's, equal to the stream's\)/.test(d.stderr), d.stderr);
      await nothingPending(c, "group-commit client");
      assert.equal((await c.request(XS.READ, `/gc/n${N - 1}\0`)).payload, `v${N - 1}`);
      c.close();
    } finally {
      await cleanup(d, launcher);
    }
  },
});

Deno.test({
  name: "live update dx → dx: a new program that cannot read the state goes back to the old one",
  ignore: !haveTools,
  sanitizeResources: false,
  fn: async () => {
    const { d, launcher } = await liveDaemon();
    const dir = launcher.slice(0, launcher.lastIndexOf("/"));
    // A new program that finds a damaged dump (the old program's second name for it stays intact).
    const bad = `${dir}/dxenstored-bad`;
    Deno.writeTextFileSync(
      bad,
      `#!/bin/sh\ncase " $* " in *" -U "*) rm -f "$XENSTORED_RUNDIR/state_dump"; ` +
        `printf 'not a stream' > "$XENSTORED_RUNDIR/state_dump";; esac\n` +
        `exec "${Deno.execPath()}" run -A --quiet "${ROOT}src/cli/main.ts" "$@"\n`,
      { mode: 0o755 },
    );
    try {
      const w = await WireClient.connect(d.socket);
      const writer = await WireClient.connect(d.socket);
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/fb/a\0kept")), null);
      await w.request(XS.WATCH, "/fb\0tok\0");
      assert.equal((await w.recv()).type, XS.WATCH_EVENT);
      const before = await storeText(d.socket);
      const lu = await control(d.socket, "live-update", bad);
      assert.equal(lu.code, 3, lu.stderr);
      assert.ok(/live-update failed: migration stream: truncated/.test(lu.stderr), lu.stderr);
      assert.ok(/going back to the previous program/.test(d.stderr), d.stderr);
      assert.ok(/live update failed in the new program/.test(d.stderr), d.stderr);
      assert.ok(await d.alive(), "the same process serves on");
      assert.equal(await storeText(d.socket), before, "the store is the old program's");
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/fb/b\0after")), null);
      const ev = await w.recv(20000);
      assert.deepEqual(splitNul(ev.payload), ["/fb/b", "tok"], "the watch survived the way there and back");
      assert.ok(!exists(`${dir}/state_dump`) && !exists(`${dir}/state_dump.fallback`), "no dump left");
      // And a good switch afterwards: nothing of the failed one is left in the environment.
      const ok = await control(d.socket, "live-update", launcher);
      assert.equal(ok.code, 0, `${ok.stderr}\n${d.stderr}`);
      assert.equal(errnoOf(await writer.request(XS.WRITE, "/fb/c\0again")), null);
      assert.deepEqual(splitNul((await w.recv(20000)).payload), ["/fb/c", "tok"]);
      w.close();
      writer.close();
    } finally {
      await cleanup(d, launcher);
    }
  },
});
