// dxenstore-guest, as separate processes: the simulated hypervisor's controls and a guest talking
// to a daemon process over its ring.
import assert from "../helpers/assert.ts";
import { XS } from "../helpers/wire.ts";
import { startSimXen } from "./sim_harness.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

async function cli(dir: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}src/client/guest_cli.ts`, "--sim", dir, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

Deno.test("dxenstore-guest: create and introduce a domain, then read, write, list and watch as it", async () => {
  await using x = await startSimXen();
  const created = await cli(x.dir, ["sim", "create", "8"]);
  assert.equal(created.code, 0, created.err);
  assert.ok(/^8 \d+ 1\n$/.test(created.out), created.out);
  await x.toolstackNodes(8);
  const intro = await cli(x.dir, ["sim", "introduce", "8", x.daemon.socket]);
  assert.equal(intro.code, 0, intro.err);
  assert.equal(await x.ok(XS.IS_DOMAIN_INTRODUCED, "8\0"), "T\0");

  const w = await cli(x.dir, ["--domid", "8", "write", "data/a", "1", "data/b", "2"]);
  assert.equal(w.code, 0, w.err);
  assert.equal(await x.ok(XS.READ, "/local/domain/8/data/b\0"), "2");
  const r = await cli(x.dir, ["--domid", "8", "read", "name", "data/a"]);
  assert.deepEqual([r.code, r.out], [0, "guest8\n1\n"]);
  const ls = await cli(x.dir, ["--domid", "8", "ls", "data"]);
  assert.equal(ls.out, "a\nb\n");
  const denied = await cli(x.dir, ["--domid", "8", "read", "/local/domain/0"]);
  assert.deepEqual([denied.code, denied.err.trim()], [1, "dxenstore-guest: EACCES"]);

  // A watcher process: its registration event, then the event for dom0's write.
  const watcher = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}src/client/guest_cli.ts`,
      "--sim",
      x.dir,
      "--domid",
      "8",
      "watch",
      "data",
      "2",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  const reader = watcher.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  assert.equal(text, "data dxenstore-guest\n", "registration event");
  await x.ok(XS.WRITE, "/local/domain/8/data/c\0from dom0");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  const st = await watcher.status;
  await watcher.stderr.cancel();
  assert.equal(st.code, 0);
  assert.equal(text, "data dxenstore-guest\ndata/c dxenstore-guest\n");

  const crash = await cli(x.dir, ["sim", "crash", "8"]);
  assert.equal(crash.code, 0, crash.err);
  // The daemon handles VIRQ_DOM_EXC asynchronously: wait (bounded) for the release.
  let introduced = "T\0";
  for (let i = 0; i < 100 && introduced === "T\0"; i++) {
    introduced = await x.ok(XS.IS_DOMAIN_INTRODUCED, "8\0");
    if (introduced === "T\0") await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(introduced, "F\0");
  assert.equal((await cli(x.dir, ["sim", "list"])).out, "8\n", "crashed: dying until destroyed");
  assert.equal((await cli(x.dir, ["sim", "destroy", "8"])).code, 0);
  assert.equal((await cli(x.dir, ["sim", "list"])).out, "");
});
