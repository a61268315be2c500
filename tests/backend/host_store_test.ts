// `dxenstored export|import --socket` against live daemons (src/cli/host_store.ts): a store larger
// than dom0's transaction limit, a snapshot while another client keeps changing the store (each
// daemon, each snapshot method), oxenstored's oversized DIRECTORY replies, import in transactions, and
// the CLI's progress line (a terminal only) and summary. Scale (100 000 nodes) is in the benchmark
// (bench/migrate.ts), not here.
import type { ExportNode } from "../../src/backend/export.ts";
import { DEFAULT_CONNECTION_LIMITS } from "../../src/quota/limits.ts";
import { EventLoop } from "../../src/transport/loop.ts";
import { SocketServer } from "../../src/transport/socket_server.ts";
import { testCore } from "../helpers/core.ts";
import { readHostStore, type SnapshotMethod, writeHostStore } from "../../src/cli/host_store.ts";
import { Progress } from "../../src/cli/progress.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { withDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

/** `groups` directories of `per` leaves each under /fill, parents first. */
function fillNodes(groups: number, per: number): ExportNode[] {
  const nodes: ExportNode[] = [{ path: "/fill", value: "", perms: ["n0"] }];
  for (let g = 0; g < groups; g++) {
    const gp = `/fill/g${g}`;
    nodes.push({ path: gp, value: `group ${g}`, perms: ["n0", "r3"] });
    for (let n = 0; n < per; n++) {
      nodes.push({ path: `${gp}/n${n}`, value: `v${g}.${n}`, perms: ["n0", "b2"] });
    }
  }
  return nodes;
}

function assertHas(got: readonly ExportNode[], want: readonly ExportNode[]): void {
  const byPath = new Map(got.map((n) => [n.path, n]));
  for (const n of want) {
    const g = byPath.get(n.path);
    assert.ok(g !== undefined, `${n.path} missing`);
    assert.equal(g.value, n.value, n.path);
    assert.deepEqual(g.perms, n.perms, n.path);
  }
}

Deno.test("host store: dxenstored reads more nodes than dom0's transaction limit in one transaction", async () => {
  // The daemon's own limits, made small: before snapshotOnOverflow, READ number 257 got ENOSPC.
  const limits = {
    ...DEFAULT_CONNECTION_LIMITS,
    txPrivileged: { ...DEFAULT_CONNECTION_LIMITS.txPrivileged, maxTouched: 256, maxOps: 1024 },
  };
  const dir = Deno.makeTempDirSync({ prefix: "dxs-host-" });
  const loop = new EventLoop();
  const server = new SocketServer(loop, testCore({ limits }), { path: `${dir}/sock` });
  server.listen();
  const running = loop.run();
  try {
    const nodes = fillNodes(10, 100);
    await writeHostStore(`${dir}/sock`, nodes);
    // No CONTROL handler in this bare core (the daemon is not recognised): ask for the transaction.
    const r = await readHostStore(`${dir}/sock`, { snapshot: "transaction" });
    assert.equal(r.method, "transaction");
    assert.equal(r.fallback, null);
    assertHas(r.nodes, nodes);
  } finally {
    loop.stop();
    await running;
    server.close();
    loop.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * Export while another connection keeps changing the store in transactions that each keep an
 * invariant: /t/a and /t/deep/.../b hold the same number k, and /t/new holds one subtree, k/x/y = k.
 * A smear (a read before a change and b after it) breaks it; a snapshot cannot.
 */
async function exportWhileChanging(socket: string, snapshot: "auto" | SnapshotMethod) {
  const B = "/t/deep/d1/d2/d3/b";
  const c = await WireClient.connect(socket);
  const fill = fillNodes(20, 100);
  try {
    await writeHostStore(socket, fill);
    for (const [p, v] of [["/t/a", "0"], [B, "0"], ["/t/new/0/x/y", "0"]]) {
      assert.equal((await c.request(XS.WRITE, `${p}\0${v}`)).type, XS.WRITE);
    }
    let stop = false;
    let k = 0;
    const writer = (async () => {
      while (!stop) {
        const t = (await c.request(XS.TRANSACTION_START, "\0")).payload.replace(/\0$/, "");
        const tx = Number(t);
        k++;
        await c.request(XS.WRITE, `/t/a\0${k}`, { txId: tx });
        await c.request(XS.WRITE, `${B}\0${k}`, { txId: tx });
        await c.request(XS.WRITE, `/t/new/${k}/x/y\0${k}`, { txId: tx });
        await c.request(XS.RM, `/t/new/${k - 1}\0`, { txId: tx });
        const end = await c.request(XS.TRANSACTION_END, "T\0", { txId: tx });
        if (end.type !== XS.TRANSACTION_END) k--; // EAGAIN: not applied
      }
    })();
    let r;
    try {
      // The writer stops once the first pass has seen most of the store: the watch method then
      // needs further passes, and ends.
      r = await readHostStore(socket, {
        snapshot,
        onProgress: (n) => {
          if (n > fill.length * 0.9) stop = true;
        },
      });
    } finally {
      stop = true;
      await writer;
    }
    const byPath = new Map(r.nodes.map((n) => [n.path, n]));
    const a = byPath.get("/t/a")!.value;
    assert.equal(byPath.get(B)?.value, a, "a and b from one instant");
    const news = r.nodes.filter((n) => n.path.startsWith("/t/new/")).map((n) => n.path);
    assert.deepEqual(news, [`/t/new/${a}`, `/t/new/${a}/x`, `/t/new/${a}/x/y`]);
    assert.equal(byPath.get(`/t/new/${a}/x/y`)?.value, a);
    assertHas(r.nodes, fill);
    assert.ok(k > 0, "the writer changed the store during the export");
    return r;
  } finally {
    c.close();
  }
}

for (const snapshot of ["auto", "watch"] as const) {
  Deno.test(`host store: a snapshot of dxenstored while it changes (${snapshot})`, () =>
    withDaemon(async (d) => {
      const r = await exportWhileChanging(d.socket, snapshot);
      assert.equal(r.daemon, "dxenstored");
      assert.equal(r.method, snapshot === "auto" ? "transaction" : "watch");
      if (r.method === "watch") assert.ok(r.passes >= 2 && r.changes > 0, `passes ${r.passes}`);
    }));
}

for (const kind of ["cxenstored", "oxenstored"] as const) {
  Deno.test({
    name: `host store: a snapshot of ${kind} while it changes; import into it in transactions`,
    ignore: !anchorsAvailable(),
    fn: async () => {
      const ref = await startAnchor(kind);
      try {
        const r = await exportWhileChanging(ref.socket, "auto");
        assert.equal(r.daemon, kind);
        assert.equal(r.method, kind === "cxenstored" ? "watch" : "transaction");
        if (r.method === "watch") assert.ok(r.passes >= 2 && r.changes > 0, `passes ${r.passes}`);
        // oxenstored lists its special watch paths under "/": they are not nodes.
        assert.ok(!r.nodes.some((n) => n.path.startsWith("/@")), "no /@introduceDomain");
      } finally {
        await ref.stop();
      }
    },
  });
}

Deno.test({
  name: "host store: oxenstored's DIRECTORY replies beyond 4096 bytes are read",
  ignore: !anchorsAvailable(),
  fn: async () => {
    const ref = await startAnchor("oxenstored");
    try {
      // 1 000 children of 12 characters: a 13 000-byte DIRECTORY reply from oxenstored.
      const nodes: ExportNode[] = [{ path: "/wide", value: "", perms: ["n0"] }];
      for (let i = 0; i < 1000; i++) {
        nodes.push({ path: `/wide/child-${1000 + i}`, value: `${i}`, perms: ["n0"] });
      }
      await writeHostStore(ref.socket, nodes);
      const r = await readHostStore(ref.socket);
      assertHas(r.nodes, nodes);
    } finally {
      await ref.stop();
    }
  },
});

Deno.test("host store: the progress line is drawn on a terminal only, throttled, and erased", () => {
  let now = 0;
  const drawn: string[] = [];
  const tty = new Progress("exporting", null, { isTerminal: true, write: (t) => drawn.push(t) }, () => now);
  tty.update(10);
  now = 50;
  tty.update(20); // within 100 ms: not drawn
  now = 1000;
  tty.update(5000);
  tty.done();
  assert.equal(drawn.length, 3);
  assert.ok(drawn[0].startsWith("\r\x1b[Kexporting: 10 nodes"), JSON.stringify(drawn[0]));
  assert.ok(drawn[1].includes("5000 nodes, 5000 nodes/s"), JSON.stringify(drawn[1]));
  assert.equal(drawn[2], "\r\x1b[K");
  const pipe: string[] = [];
  const quiet = new Progress("importing", 10, { isTerminal: false, write: (t) => pipe.push(t) }, () => now);
  quiet.update(5);
  quiet.done();
  assert.deepEqual(pipe, []);
});

async function cli(args: string[], stdin?: string) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const o = await p.output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout), err: new TextDecoder().decode(o.stderr) };
}

Deno.test("host store: export and import --socket print a summary line, and no progress through a pipe", () =>
  withDaemon(async (d) => {
    const jsonl = fillNodes(3, 10).map((n) => JSON.stringify(n)).join("\n") + "\n";
    const imp = await cli(["import", "--socket", d.socket], jsonl);
    assert.equal(imp.code, 0, imp.err);
    assert.ok(
      /^imported 34 nodes into dxenstored at \S+ in [0-9.]+ s \([0-9]+ nodes\/s\); 1 transaction\(s\), 0 retried after a conflict\n$/
        .test(imp.err),
      imp.err,
    );
    const exp = await cli(["export", "--socket", d.socket]);
    assert.equal(exp.code, 0, exp.err);
    assert.ok(
      /^exported \d+ nodes from dxenstored at \S+; snapshot: one transaction in [0-9.]+ s \([0-9]+ nodes\/s\)\n$/
        .test(exp.err),
      exp.err,
    );
    assert.ok(exp.out.includes('"path":"/fill/g2/n9"'));
    const watch = await cli(["export", "--socket", d.socket, "--snapshot", "watch", "--format", "ls"]);
    assert.equal(watch.code, 0, watch.err);
    assert.ok(/snapshot: a watch on \/, 1 pass\(es\), 0 change\(s\) re-read/.test(watch.err), watch.err);
    const bad = await cli(["export", "--socket", d.socket, "--snapshot", "sometimes"]);
    assert.equal(bad.code, 2);
  }));

Deno.test({
  name: "host store: on a terminal, export --socket draws a progress line on stderr",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/script").isFile;
    } catch {
      return false;
    }
  })(),
  fn: () =>
    withDaemon(async (d) => {
      await writeHostStore(d.socket, fillNodes(2, 10));
      // script(1) runs the command on a pseudo-terminal; stdout goes to a file, stderr stays on it.
      const out = `${d.dir}/out.jsonl`;
      const cmd = `${Deno.execPath()} run -A ${MAIN} export --socket ${d.socket} --output ${out}`;
      const o = await new Deno.Command("script", { args: ["-qfec", cmd, "/dev/null"], stdin: "null" })
        .output();
      const tty = new TextDecoder().decode(o.stdout);
      assert.equal(o.code, 0, tty);
      assert.ok(tty.includes("\r\x1b[Kexporting from "), JSON.stringify(tty));
      assert.ok(/exported \d+ nodes from dxenstored/.test(tty), tty);
      assert.ok(Deno.readTextFileSync(out).includes('"path":"/fill/g1/n9"'));
    }),
});
