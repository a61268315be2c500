// Xen's own test-xenstore (xen-utils-4.17, tools/tests/xenstore) against the daemon: every test it
// lists (`-l`), each run on its own (`-t NAME`) against a fresh daemon, then a few seconds of its random
// mode (`-r`). The "ta *" tests need transactions. Note: `-t` with an unknown name runs nothing and exits
// 0, so each test also checks the result line.
import assert from "../helpers/assert.ts";
import { dpkgFile, runTool, withDaemon } from "../helpers/daemon.ts";

const BIN = (await dpkgFile("xen-utils-4.17", "/bin/test-xenstore")) ?? "/usr/lib/xen-4.17/bin/test-xenstore";

/** Test names from `test-xenstore -l` ("%-10s: %s" per line). */
async function listTests(): Promise<string[]> {
  try {
    const out = await new Deno.Command(BIN, { args: ["-l"], stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout).split("\n")
      .map((l) => l.match(/^(.{1,10}?)\s*: /)?.[1])
      .filter((n): n is string => n !== undefined);
  } catch {
    return [];
  }
}

const TESTS = await listTests();

Deno.test("test-xenstore is installed and lists its tests", () => {
  assert.ok(TESTS.length >= 12, `expected at least 12 tests from ${BIN} -l, got ${JSON.stringify(TESTS)}`);
  for (const t of ["read 1", "write 2000", "dir", "rm dir", "ta empty", "ta rmw", "ta err"]) {
    assert.ok(TESTS.includes(t), `test "${t}" listed`);
  }
});

for (const name of TESTS) {
  Deno.test(`test-xenstore -t "${name}"`, async () => {
    await withDaemon(async (d) => {
      const r = await runTool(BIN, ["-t", name], d.socket, 30000);
      assert.equal(r.code, 0, `test-xenstore -t "${name}" failed:\n${r.stdout}${r.stderr}`);
      // A passing test prints "<name padded to 10>: <N> ns" (and nothing about failure).
      assert.ok(
        new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*: \\d+ ns$`, "m").test(r.stdout),
        r.stdout,
      );
      assert.ok(!/failed/.test(r.stdout + r.stderr), r.stdout + r.stderr);
      assert.ok(!/Exhaustive transaction retries/.test(r.stdout), r.stdout);
      // It worked under "xenstore-test" (relative: /local/domain/0/xenstore-test) and removed it after.
      const ls = await runTool("xenstore-ls", ["/local/domain/0"], d.socket);
      assert.equal(ls.code, 0, `the tests' parent /local/domain/0 exists: ${ls.stderr}`);
      assert.ok(!ls.stdout.includes("xenstore-test"), `test-xenstore left nodes behind:\n${ls.stdout}`);
    });
  });
}

Deno.test("test-xenstore: all tests in one run, then 3 s of random tests", async () => {
  await withDaemon(async (d) => {
    const all = await runTool(BIN, [], d.socket, 60000);
    assert.equal(all.code, 0, `test-xenstore failed:\n${all.stdout}${all.stderr}`);
    assert.equal(all.stdout.split("\n").filter((l) => / ns$/.test(l)).length, TESTS.length);
    const rnd = await runTool(BIN, ["-r", "3"], d.socket, 60000);
    assert.equal(rnd.code, 0, `test-xenstore -r 3 failed:\n${rnd.stdout}${rnd.stderr}`);
  });
});
