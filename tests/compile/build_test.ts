// `deno task build` (compile/build.ts): the whole program in one JavaScript file that runs with only the
// deno binary from an empty folder (tests/compile/built.ts runs it the way the .deb's launcher does):
// every backend, every built-in policy, each --xen mode, export/import and the guest CLI, driven by
// Debian's xenstore-* tools and Xen's test-xenstore. And the build's guard against a bundle that would
// still read files beside its sources.
import assert from "../helpers/assert.ts";
import { dpkgFile, runTool } from "../helpers/daemon.ts";
import { bundleProblems } from "../../compile/build.ts";
import { embedAssetList } from "../../compile/assets.ts";
import { EXTISM_SDK } from "../../src/policy/sdk_check.ts";
import { BuiltDaemon, builtProgram, removeBuilt, runBuilt, spawnBuilt } from "./built.ts";
import { cmdlineOf, exists, readPid, stopPid, waitFor } from "../ops/helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TEST_XENSTORE = (await dpkgFile("xen-utils-4.17", "/bin/test-xenstore")) ??
  "/usr/lib/xen-4.17/bin/test-xenstore";
const HAS_TDB =
  (await new Deno.Command("bash", { args: ["-c", "ldconfig -p | grep -q 'libtdb\\.so\\.1 '"] }).output())
    .success;

async function emptyDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "dxs-empty-" });
}

async function ok(tool: string, args: string[], socket: string): Promise<string> {
  const r = await runTool(tool, args, socket);
  assert.equal(r.code, 0, `${tool} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

Deno.test("build: the guard refuses a bundle that would read beside its sources, and passes the real one", async () => {
  const bad: Array<[string, string]> = [
    ["// src/x.ts\nconst u = new URL('./a.wasm', import.meta.url);", "import.meta outside the asset module"],
    ["// src/x.ts\nconst p = import.meta.dirname + '/a';", "import.meta.dirname"],
    ['// src/y.ts\nconst m = await import("npm:foo@1.0.0");', "an npm import left to run time"],
    ['import x from "./local.js";', "a relative static import"],
    ['export * from "https://example.invalid/mod.ts";', "a remote re-export"],
    ["// src/z.ts\nconst m = await import(spec);", "a dynamic import of a variable"],
  ];
  for (const [text, why] of bad) assert.ok(bundleProblems(text).length > 0, why);
  const good = [
    "// src/common/assets.ts\nconst file = new URL(`../../${path}`, import.meta.url);",
    'import { readFile } from "node:fs/promises";',
    "// src/backend/sqlite.ts\nvar { DatabaseSync } = await import(SQLITE_MODULE);",
    'var WORKER_URL = new URL("data:text/javascript;base64,AAAA");',
    "  dxenstored import (--backend SPEC | --socket PATH) [FILE]",
  ];
  for (const text of good) assert.deepEqual(bundleProblems(text), [], text);

  const b = await builtProgram();
  assert.deepEqual(bundleProblems(b.text), []);
  for (const path of Object.keys(embedAssetList())) {
    assert.ok(b.text.includes(JSON.stringify(path)), `${path} embedded`);
  }
  // The Extism SDK is imported by a literal specifier (so the bundle holds it), mapped to the pinned one.
  const sdkCheck = Deno.readTextFileSync(`${ROOT}src/policy/sdk_check.ts`);
  assert.ok(sdkCheck.includes(`import("@extism/extism")`), "sdk_check.ts imports the SDK literally");
  assert.equal(JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).imports["@extism/extism"], EXTISM_SDK);
  assert.ok(b.text.includes("createPlugin"), "the Extism SDK is in the bundle");
  assert.ok(!b.text.includes("npm:@extism"), "…and not left as an npm: import");
});

Deno.test("build: every backend, from an empty folder, with only deno; a persistent store survives SIGTERM", async () => {
  const backends = ["memory", "file:./store", "sqlite:./store.db", ...(HAS_TDB ? ["tdb:./store.tdb"] : [])];
  for (const backend of backends) {
    const cwd = await emptyDir();
    try {
      let d = await BuiltDaemon.start(cwd, ["--backend", backend]);
      await ok("xenstore-write", ["/built/a", "1", "/built/b/c", "two words"], d.socket);
      await ok("xenstore-chmod", ["/built/a", "n0", "r5"], d.socket);
      await ok("xenstore-rm", ["/built/b/c"], d.socket);
      assert.equal(await ok("xenstore-read", ["/built/a"], d.socket), "1\n", backend);
      const ls = await ok("xenstore-ls", ["-p", "/built"], d.socket);
      assert.ok(/^a = "1" [ .]*\(n0,r5\)$/m.test(ls), ls);
      assert.equal(await d.stop(), 0, `${backend}: clean stop\n${d.log}`);
      assert.ok(!exists(d.socket), `${backend}: socket removed`);
      if (backend === "memory") continue;
      d = await BuiltDaemon.start(cwd, ["--backend", backend]);
      assert.equal(
        await ok("xenstore-read", ["/built/a"], d.socket),
        "1\n",
        `${backend}: kept across a restart`,
      );
      assert.equal(await ok("xenstore-ls", ["/built/b"], d.socket), "", `${backend}: the removal too`);
      assert.equal(await d.stop(), 0, d.log);
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  }
});

Deno.test("build: every built-in policy plugin is embedded and loads (Extism SDK check included)", async () => {
  const cwd = await emptyDir();
  try {
    const chain = "legacy,chinese-wall,strict-protocol,maintenance";
    const d = await BuiltDaemon.start(cwd, ["--policy", chain]);
    await ok("xenstore-write", ["/p", "x"], d.socket);
    assert.equal(await d.stop(), 0, d.log);
    assert.ok(d.log.includes(`(policy ${chain},`), d.log);
    const unknown = await runBuilt("dxenstored", ["--socket", `${cwd}/s2`, "--policy", "nosuch"], { cwd });
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.ok(unknown.stderr.includes("unknown policy"), unknown.stderr);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("build: Xen's test-xenstore passes against the built program", async () => {
  const cwd = await emptyDir();
  try {
    const d = await BuiltDaemon.start(cwd, []);
    const r = await runTool(TEST_XENSTORE, [], d.socket, 60_000);
    assert.equal(r.code, 0, `test-xenstore:\n${r.stdout}${r.stderr}`);
    assert.ok(r.stdout.split("\n").filter((l) => / ns$/.test(l)).length >= 12, r.stdout);
    assert.equal(await d.stop(), 0, d.log);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("build: --xen=sim with the guest CLI of the same file; --xen=real says what is missing here", async () => {
  const cwd = await emptyDir();
  try {
    const sim = `${cwd}/xen`;
    await Deno.mkdir(sim);
    const d = await BuiltDaemon.start(cwd, [`--xen=sim:${sim}`]);
    const guest = (args: string[]) => runBuilt("dxenstore-guest", ["--sim", sim, ...args], { cwd });
    const created = await guest(["sim", "create", "7"]);
    assert.equal(created.code, 0, created.stderr);
    // The toolstack's part: the domain's home, readable by it, and its writable data folder.
    await ok("xenstore-write", ["/local/domain/7", ""], d.socket);
    await ok("xenstore-chmod", ["/local/domain/7", "n0", "r7"], d.socket);
    await ok("xenstore-write", ["/local/domain/7/name", "guest7", "/local/domain/7/data", ""], d.socket);
    await ok("xenstore-chmod", ["/local/domain/7/data", "n7"], d.socket);
    const intro = await guest(["sim", "introduce", "7", d.socket]);
    assert.equal(intro.code, 0, intro.stderr);
    const w = await guest(["--domid", "7", "write", "data/x", "over the ring"]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(await ok("xenstore-read", ["/local/domain/7/data/x"], d.socket), "over the ring\n");
    const r = await guest(["--domid", "7", "read", "name"]);
    assert.deepEqual([r.code, r.stdout], [0, "guest7\n"], r.stderr);
    // A guest's watch over the ring: its registration event, then the event for dom0's write.
    const watcher = await spawnBuilt(
      "dxenstore-guest",
      ["--sim", sim, "--domid", "7", "watch", "data", "2"],
      cwd,
    );
    const reader = watcher.stdout.getReader();
    let events = "";
    while (!events.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      events += new TextDecoder().decode(value);
    }
    await ok("xenstore-write", ["/local/domain/7/data/y", "from dom0"], d.socket);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      events += new TextDecoder().decode(value);
    }
    assert.equal((await watcher.status).code, 0);
    assert.equal(events, "data dxenstore-guest\ndata/y dxenstore-guest\n");
    assert.equal(await d.stop(), 0, d.log);

    // No Xen on this machine: the real platform is in the program and refuses to start, saying why.
    const real = await runBuilt("dxenstored", ["--socket", `${cwd}/s3`, "--xen=real"], { cwd });
    assert.equal(real.code, 1, real.stderr);
    assert.ok(
      /cannot attach to Xen \(--xen real\) \/dev\/xen: ENOENT .*\/dev\/xen\/evtchn/.test(real.stderr),
      real.stderr,
    );
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("build: export and import subcommands of the built program move a store; its dxenstore reads it", async () => {
  const cwd = await emptyDir();
  try {
    const a = await BuiltDaemon.start(cwd, ["--backend", "file:./a"]);
    await ok("xenstore-write", ["/m/one", "1", "/m/two", "2"], a.socket);
    const exp = await runBuilt("dxenstored", ["export", "--socket", a.socket, "--output", `${cwd}/dump`], {
      cwd,
    });
    assert.equal(exp.code, 0, exp.stderr);
    assert.equal(await a.stop(), 0, a.log);
    const imp = await runBuilt("dxenstored", ["import", "--backend", "file:./b", `${cwd}/dump`], { cwd });
    assert.equal(imp.code, 0, imp.stderr);
    const b = await BuiltDaemon.start(cwd, ["--backend", "file:./b"]);
    assert.equal(await ok("xenstore-read", ["/m/two"], b.socket), "2\n");
    // The client of the same file (argv[0] dxenstore) reads it too.
    const client = await runBuilt("dxenstore", ["-s", b.socket, "read", "/m/one"], { cwd });
    assert.deepEqual([client.code, client.stdout], [0, "1\n"], client.stderr);
    assert.equal(await b.stop(), 0, b.log);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("build: forking as Debian's init script starts it, the daemon is `dxenstored` with the same flags", async () => {
  const cwd = await emptyDir();
  let pid: number | null = null;
  try {
    const env = {
      XENSTORED_PATH: `${cwd}/socket`,
      XENSTORED_RUNDIR: `${cwd}/run`,
      XENSTORED_ROOTDIR: `${cwd}/lib`,
    };
    const r = await runBuilt("dxenstored", ["--pid-file", `${cwd}/pid`, "-P", "--log-file", `${cwd}/log`], {
      cwd,
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    pid = readPid(`${cwd}/pid`);
    assert.ok(pid !== null && r.stdout.trim() === String(pid), r.stdout);
    const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    assert.equal(cmd[0], "dxenstored", "argv[0] (pidof)");
    assert.equal(Deno.readTextFileSync(`/proc/${pid}/comm`).trim(), "dxenstored", "comm (pgrep)");
    const b = await builtProgram();
    assert.ok(cmd.includes(b.program), `the daemon runs the same program: ${cmd.join(" ")}`);
    await ok("xenstore-write", ["/forked", "yes"], `${cwd}/socket`);
    await stopPid(pid, "dxenstored.js");
    await waitFor("socket removal", () => !exists(`${cwd}/socket`));
    pid = null;
  } finally {
    if (pid !== null && cmdlineOf(pid).includes("dxenstored.js")) Deno.kill(pid, "SIGKILL");
    await Deno.remove(cwd, { recursive: true });
    await removeBuilt();
  }
});
