// chinese-wall: conflict-of-interest classes. In-process with guest domains (the rules, watch-event
// filtering, history surviving a reload) and end to end through the daemon (socket clients are dom0,
// so the e2e test sets exempt-privileged = no), including a SIGHUP reload that keeps the history.
import type { Core } from "../../src/dispatch/core.ts";
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok, testCore } from "../helpers/core.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { errnoOf, WireClient, XS } from "../helpers/wire.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { PolicyManager } from "../../src/policy/manager.ts";
import { chainOf } from "./helpers.ts";
import { VarStore } from "../../src/policy/plugin.ts";
import { rig } from "../domains/harness.ts";
import type { GuestClient } from "../../src/client/guest.ts";

const SETS = "banks:a=/cw/bank-a,/cw/a-archive banks:b=/cw/bank-b oil:x=/cw/oil-x oil:y=/cw/oil-y";

/** /cw and everything below: dom0 owns, domains 5, 6 and 7 may read and write (inherited). */
function populate(core: Core) {
  const d0 = dom0(core);
  ok(core, d0, T.WRITE, "/cw\0");
  ok(core, d0, T.SET_PERMS, "/cw\0n0\0b5\0b6\0b7\0");
  for (
    const p of ["/cw/bank-a/k", "/cw/a-archive/k", "/cw/bank-b/k", "/cw/oil-x/k", "/cw/oil-y/k", "/cw/free"]
  ) {
    ok(core, d0, T.WRITE, `${p}\0${p}`);
  }
  return d0;
}

/** Send a request whose reply may be followed by other messages (WATCH's initial event). */
function send(core: Core, c: { client: Parameters<Core["message"]>[0] }, type: number, payload: string) {
  core.message(c.client, { type, reqId: 1, txId: 0, payload });
}

Deno.test("chinese-wall: the first class read in a set walls off the others of that set", () => {
  const core = testCore({
    policy: chainOf(["legacy", "chinese-wall"], { "chinese-wall": { "conflict-sets": SETS } }),
  });
  populate(core);
  const g5 = guest(core, 5);
  const g6 = guest(core, 6);
  assert.equal(ok(core, g5, T.READ, "/cw/bank-a/k\0"), "/cw/bank-a/k");
  assert.equal(ok(core, g5, T.READ, "/cw/a-archive/k\0"), "/cw/a-archive/k"); // same class
  err(core, g5, T.READ, "/cw/bank-b/k\0", "EACCES");
  err(core, g5, T.WRITE, "/cw/bank-b/k\0x", "EACCES");
  err(core, g5, T.DIRECTORY, "/cw/bank-b\0", "EACCES");
  // Another set is independent; a path in no class is free.
  ok(core, g5, T.READ, "/cw/oil-y/k\0");
  err(core, g5, T.READ, "/cw/oil-x/k\0", "EACCES");
  ok(core, g5, T.READ, "/cw/free\0");
  // Another domain has its own history: it chooses bank-b first.
  ok(core, g6, T.WRITE, "/cw/bank-b/k\0six");
  err(core, g6, T.READ, "/cw/bank-a/k\0", "EACCES");
  // The control domain is exempt by default.
  const d0 = dom0(core);
  ok(core, d0, T.READ, "/cw/bank-a/k\0");
  ok(core, d0, T.READ, "/cw/bank-b/k\0");
});

Deno.test("chinese-wall: refused-by-legacy accesses record nothing (plugin order: legacy first)", () => {
  const core = testCore({
    policy: chainOf(["legacy", "chinese-wall"], { "chinese-wall": { "conflict-sets": SETS } }),
  });
  const d0 = populate(core);
  ok(core, d0, T.SET_PERMS, "/cw/bank-a/k\0n0\0"); // 7 may not read bank-a
  const g7 = guest(core, 7);
  err(core, g7, T.READ, "/cw/bank-a/k\0", "EACCES"); // legacy refuses: no history
  ok(core, g7, T.READ, "/cw/bank-b/k\0"); // so bank-b is still open to it
});

Deno.test("chinese-wall: watch events from a walled-off class are not delivered and record nothing", () => {
  const core = testCore({
    policy: chainOf(["legacy", "chinese-wall"], { "chinese-wall": { "conflict-sets": SETS } }),
  });
  const d0 = populate(core);
  const g5 = guest(core, 5);
  send(core, g5, T.WATCH, "/cw\0tok\0");
  g5.sink.sent.length = 0;
  // Before any access: events from both banks arrive, and receiving them does not take a side.
  ok(core, d0, T.WRITE, "/cw/bank-a/k\x001");
  ok(core, d0, T.WRITE, "/cw/bank-b/k\x001");
  const paths = () =>
    g5.sink.sent.filter((m) => m.type === T.WATCH_EVENT).map((m) => m.payload.split("\0")[0]);
  assert.deepEqual(paths(), ["/cw/bank-a/k", "/cw/bank-b/k"]);
  ok(core, g5, T.READ, "/cw/bank-b/k\0"); // takes bank-b's side
  g5.sink.sent.length = 0;
  ok(core, d0, T.WRITE, "/cw/bank-a/k\x002");
  ok(core, d0, T.WRITE, "/cw/bank-b/k\x002");
  assert.deepEqual(paths(), ["/cw/bank-b/k"]);
});

Deno.test("chinese-wall: the history survives a policy reload (same plugin name)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-cw-" });
  try {
    const conf = `${dir}/policy.conf`;
    await Deno.writeTextFile(
      conf,
      `policy = legacy, chinese-wall\npolicy-config.chinese-wall.conflict-sets = ${SETS}\n`,
    );
    const m = await PolicyManager.start({ configFile: conf });
    const core = testCore({ policy: m });
    populate(core);
    const g5 = guest(core, 5);
    ok(core, g5, T.READ, "/cw/bank-a/k\0");
    const before = m.current;
    const r = m.reload();
    assert.ok(r.startsWith("OK:"), r);
    assert.ok(m.current !== before && core.dispatcher.policy === m.current, "a new chain was swapped in");
    err(core, g5, T.READ, "/cw/bank-b/k\0", "EACCES");
    ok(core, g5, T.READ, "/cw/bank-a/k\0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chinese-wall: a domain's history goes with the domain; a new domain with its domid starts free", async () => {
  const r = rig({}, null, chainOf(["legacy", "chinese-wall"], { "chinese-wall": { "conflict-sets": SETS } }));
  populate(r.core);
  const read = async (g: GuestClient, path: string) => {
    const m = await g.request(T.READ, `${path}\0`);
    return m.type === T.ERROR ? m.payload.replace(/\0$/, "") : "ok";
  };
  const g = r.guest(5);
  assert.equal(await read(g, "/cw/bank-a/k"), "ok");
  assert.equal(await read(g, "/cw/bank-b/k"), "EACCES", "walled off after bank-a");
  // Domain 5 dies; Xen later creates a new domain 5, which the toolstack grants /cw again.
  r.xen.destroy(5);
  r.turn();
  for (const sub of ["", "/bank-a", "/bank-a/k", "/bank-b", "/bank-b/k", "/free"]) {
    ok(r.core, r.dom0, T.SET_PERMS, `/cw${sub}\0n0\0b5\0`);
  }
  const again = r.guest(5);
  assert.equal(await read(again, "/cw/bank-b/k"), "ok", "the new domain 5 inherits no history");
  assert.equal(await read(again, "/cw/bank-a/k"), "EACCES", "and builds its own");
});

Deno.test("plugin state: a domain's variables are d<domid> and d<domid>.*, and only those go", () => {
  const v = new VarStore(1000);
  const b = (s: string) => new TextEncoder().encode(s);
  for (const k of ["d5", "d5.hist", "d55", "d5x", "global"]) assert.ok(v.set(k, b("xyz")));
  const before = v.bytes;
  assert.equal(v.dropDomain(5), 2);
  assert.deepEqual([...v.vars.keys()].sort(), ["d55", "d5x", "global"]);
  assert.equal(v.bytes, before - (2 + 3) - (7 + 3), "their bytes are given back to the budget");
  assert.equal(v.dropDomain(5), 0);
});

Deno.test("chinese-wall end to end: daemon with a policy config; SIGHUP reload keeps the wall", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-cw-" });
  const conf = `${dir}/policy.conf`;
  await Deno.writeTextFile(
    conf,
    `policy = legacy,chinese-wall\npolicy-config.chinese-wall.conflict-sets = ${SETS}\n` +
      "policy-config.chinese-wall.exempt-privileged = no\n",
  );
  try {
    await using d = await startDaemon({ args: ["--policy-config", conf] });
    const c = await WireClient.connect(d.socket);
    try {
      assert.equal(errnoOf(await c.request(XS.WRITE, "/cw/bank-a/k\0a")), null);
      assert.equal(errnoOf(await c.request(XS.WRITE, "/cw/bank-b/k\0b")), "EACCES");
      assert.equal(errnoOf(await c.request(XS.READ, "/cw/bank-b/k\0")), "EACCES");
      Deno.kill(d.pid, "SIGHUP");
      // The reload is logged; wait for it, then the wall must still stand.
      for (let i = 0; i < 100 && !/SIGHUP: .*OK: policy chain/.test(d.stderr); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(/SIGHUP: .*OK: policy chain/.test(d.stderr), `no reload logged: ${d.stderr}`);
      assert.equal(errnoOf(await c.request(XS.READ, "/cw/bank-b/k\0")), "EACCES");
      assert.equal((await c.request(XS.READ, "/cw/bank-a/k\0")).payload, "a");
    } finally {
      c.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
