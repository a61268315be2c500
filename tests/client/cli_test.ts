// The dxenstore CLI: verbs, JSON trees both ways, txn scripts, exit codes per error, help and
// completion; `top` driven in tmux against a daemon under load (guests over the simulated Xen too).
import assert from "../helpers/assert.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { main } from "../../src/client/cli/main.ts";
import { XenStore } from "../../src/client/mod.ts";
import { TARGETS } from "./targets.ts";
import { startSimXen } from "../xen/sim_harness.ts";

const BIN = new URL("../../bin/dxenstore", import.meta.url).pathname;

async function cli(
  socket: string,
  args: string[],
  stdin = "",
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["--socket", socket, ...args], {
    io: {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      readStdin: () => Promise.resolve(stdin),
      readFile: (p) => Deno.readTextFile(p),
    },
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

for (const t of TARGETS) {
  Deno.test({
    name: `dxenstore (${t.kind}): verbs, trees as JSON and back, txn scripts, exit codes`,
    ignore: !t.available,
    fn: () =>
      t.with(async (s) => {
        assert.equal((await cli(s, ["write", "/a/b", "hello", "/a/c", "ü"])).code, 0);
        assert.equal((await cli(s, ["read", "-p", "/a/b", "/a/c"])).out, "/a/b: hello\n/a/c: ü");
        const missing = await cli(s, ["read", "/none"]);
        assert.equal(missing.code, 2, "ENOENT exits 2");
        assert.ok(missing.err.includes("ENOENT"), missing.err);
        assert.equal((await cli(s, ["exists", "/a/b"])).code, 0);
        assert.equal((await cli(s, ["exists", "/a/x"])).code, 2);
        assert.equal((await cli(s, ["write", "/a/b"])).code, 64, "usage");
        assert.equal((await cli(s, ["write", "bad//p", "v"])).code, 22, "EINVAL");
        assert.equal((await cli(s, ["list", "/a"])).out, "b\nc");
        assert.equal((await cli(s, ["chmod", "/a/b", "n0", "r3"])).code, 0);
        assert.equal((await cli(s, ["perms", "/a/b"])).out, "n0 r3");
        const tree = await cli(s, ["tree", "get", "/a"]);
        assert.equal(tree.code, 0, tree.err);
        assert.equal((await cli(s, ["tree", "put", "/copy"], tree.out)).code, 0);
        assert.equal((await cli(s, ["tree", "get", "/copy"])).out, tree.out, "the copy is the same tree");
        assert.equal((await cli(s, ["tree", "put", "/x"], '{"value": 3}')).code, 64, "bad tree JSON");
        const txn = await cli(s, ["txn"], 'read /a/b\nwrite /a/d "two\\nlines"\nls /a\n# done\n');
        assert.equal(txn.code, 0, txn.err);
        assert.equal(txn.out, "hello\nb\nc\nd");
        assert.equal((await cli(s, ["read", "/a/d"])).out, "two\nlines");
        const failed = await cli(s, ["txn"], "write /t/1 x\nread /t/none\n");
        assert.equal(failed.code, 2);
        assert.ok(failed.err.includes("line 2"), failed.err);
        assert.equal((await cli(s, ["exists", "/t/1"])).code, 2, "a failed script commits nothing");
        assert.equal((await cli(s, ["rm", "-t", "/copy/b"])).code, 0);
        const watch = await cli(s, ["watch", "-n", "1", "--json", "/a"]);
        assert.deepEqual(JSON.parse(watch.out).path, "/a");
        const depth = await cli(s, ["watch", "--depth", "1", "-n", "1", "/a"]);
        assert.equal(depth.code, t.kind === "dxenstored" ? 0 : 38, "ENOSYS where there is no watch depth");
        const f = JSON.parse((await cli(s, ["features", "--json"])).out);
        assert.equal(f.daemon, t.kind);
        const q = await cli(s, ["quota", "0"]);
        assert.equal(q.code, 0, q.err);
        assert.equal((await cli(s, ["quota"])).code, t.kind === "oxenstored" ? 38 : 0);
        assert.ok(/^nodes\s+\d+/m.test(q.out), q.out);
        assert.equal((await cli(s, ["stats"])).code, t.kind === "dxenstored" ? 0 : 38);
        assert.equal((await cli(s, ["policy"])).code, t.kind === "dxenstored" ? 0 : 38);
        assert.equal((await cli(s, ["top", "--iterations", "1"])).code, t.kind === "dxenstored" ? 0 : 38);
      }),
  });
}

Deno.test("dxenstore: help for each command, completion, a daemon that is not there", async () => {
  const none = `/tmp/dxs-none-${crypto.randomUUID()}`;
  const help = await cli(none, ["--help"]);
  for (const c of ["read", "watch", "txn", "quota", "features", "tree", "policy", "stats", "top"]) {
    assert.ok(help.out.includes(`\n  ${c}`), `--help lists ${c}`);
    const h = await cli(none, [c, "--help"]);
    assert.equal(h.code, 0);
    assert.ok(h.out.startsWith(`Usage: dxenstore ${c}`), h.out);
  }
  const comp = await cli(none, ["completion", "bash"]);
  assert.ok(comp.out.includes("complete -F _dxenstore dxenstore") && comp.out.includes("--depth"));
  const bash = await new Deno.Command("bash", {
    args: ["-n"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = bash.stdin.getWriter();
  await w.write(new TextEncoder().encode(comp.out));
  await w.close();
  assert.equal((await bash.status).code, 0, "the completion script is valid bash");
  assert.equal((await cli(none, ["read", "/x"])).code, 69, "no daemon: 69");
  assert.equal((await cli(none, ["frobnicate"])).code, 64);
});

Deno.test("dxenstore: bin/dxenstore runs, honours XENSTORED_PATH, completes store paths", async () => {
  await using d = await startDaemon();
  const run = async (args: string[]) => {
    const o = await new Deno.Command(BIN, {
      args,
      env: { XENSTORED_PATH: d.socket },
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    return { code: o.code, out: new TextDecoder().decode(o.stdout) };
  };
  assert.equal((await run(["write", "/local/domain/1/name", "g"])).code, 0);
  assert.equal((await run(["read", "/local/domain/1/name"])).out, "g\n");
  assert.equal((await run(["__complete", "/local/domain/"])).out, "/local/domain/1\n");
  assert.equal((await run(["read", "/missing"])).code, 2);
});

async function tmux(...args: string[]): Promise<string> {
  const o = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  return new TextDecoder().decode(o.stdout);
}

const haveTmux = (await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).output()
  .catch(() => ({ success: false }))).success;

Deno.test({
  name: "dxenstore top: a live view in tmux of a daemon under load (guests, refusals, transactions)",
  ignore: !haveTmux,
  fn: async () => {
    await using x = await startSimXen();
    const g5 = await x.introduce(5);
    const session = `dxtop-${Deno.pid}`;
    using xs = await XenStore.open({ socket: x.daemon.socket });
    await xs.quota.set("nodes", 40, 5);
    let running = true;
    // Load: dom0 reads and commits transactions; guest 5 writes, until its node quota refuses it.
    const load = (async () => {
      let i = 0;
      while (running) {
        await Promise.all(Array.from({ length: 50 }, () => xs.read("/local/domain/5/name")));
        await xs.transaction(async (tx) => await tx.write("/load/n", String(i++)));
        await g5.write(`data/n${i % 100}`, "x").catch(() => {});
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const env = `XENSTORED_PATH=${x.daemon.socket}`;
    try {
      await tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "50", `env ${env} ${BIN} top`);
      let screen = "";
      const deadline = Date.now() + 30_000;
      // Two screens at least (rates need two reads), with the guest's quota refusal on it.
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        screen = await tmux("capture-pane", "-p", "-t", session);
        if (/READ\s+[0-9.]+/.test(screen) && screen.includes("last: refused domid=5")) break;
      }
      assert.ok(screen.includes("dxenstore top"), screen);
      assert.ok(/requests\/s [1-9]/.test(screen), `a request rate:\n${screen}`);
      assert.ok(/READ\s+[1-9][0-9.]*/.test(screen), `READs per second:\n${screen}`);
      assert.ok(/dom 5 /.test(screen), `requests by domain:\n${screen}`);
      assert.ok(/^5\s+\d+ \/ 1000/m.test(screen), `domain 5's nodes next to the limit:\n${screen}`);
      assert.ok(screen.includes("last: refused domid=5") && screen.includes("quota=nodes"), screen);
      assert.ok(/RSS [1-9][0-9.]* MiB/.test(screen) && /store \d+ nodes/.test(screen), screen);
      assert.ok(/SLOWEST REQUESTS[\s\S]*ms\s+[A-Z_]+/.test(screen), screen);
      assert.ok(/commits\/s [1-9]/.test(screen), screen);
      await tmux("send-keys", "-t", session, "q");
      let gone = false;
      for (let i = 0; i < 40 && !gone; i++) {
        await new Promise((r) => setTimeout(r, 250));
        gone = !(await tmux("list-sessions").catch(() => "")).includes(session);
      }
      assert.ok(gone, "q quits top");
    } finally {
      running = false;
      await load;
      await tmux("kill-session", "-t", session).catch(() => {});
    }
  },
});
