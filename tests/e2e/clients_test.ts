// Debian's real clients against the running daemon: the xenstore-* tools (libxenstore over the socket,
// most of them wrapping their work in a transaction) and Xen's own test-xenstore suite.
import { dpkgFile, runTool, startDaemon } from "../helpers/daemon.ts";
import { equal, ok } from "../helpers/assert.ts";

async function tool(name: string, args: string[], socket: string): Promise<string> {
  const r = await runTool(name, args, socket);
  equal(r.code, 0, `${name} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

Deno.test("xenstore-write/-read/-ls -p/-list/-exists/-chmod/-rm against dxenstored", async () => {
  await using d = await startDaemon();
  const s = d.socket;
  await tool("xenstore-write", ["/vm/b", "hello", "/vm/a/x", "with space", "/vm/c", ""], s);
  equal(await tool("xenstore-read", ["/vm/b"], s), "hello\n");
  equal(await tool("xenstore-read", ["/vm/a/x"], s), "with space\n");
  equal(await tool("xenstore-list", ["/vm"], s), "a\nb\nc\n");
  equal((await runTool("xenstore-exists", ["/vm/nope"], s)).code, 1);
  await tool("xenstore-exists", ["/vm/a"], s);
  await tool("xenstore-chmod", ["/vm/b", "r5", "b7"], s);
  // xenstore-ls -p pads each line with dots to a fixed column; compare names, values and perms.
  const lines = (await tool("xenstore-ls", ["-p", "/vm"], s)).trimEnd().split("\n")
    .map((l) => l.replace(/\s*[. ]*\s*\(/, " (").replace(/\s+$/, ""));
  equal(
    lines.join("\n"),
    ['a = "" (n0)', ' x = "with space" (n0)', 'b = "hello" (r5,b7)', 'c = "" (n0)'].join("\n"),
  );
  await tool("xenstore-rm", ["/vm/a"], s);
  equal(await tool("xenstore-list", ["/vm"], s), "b\nc\n");
  const missing = await runTool("xenstore-read", ["/vm/a/x"], s);
  ok(missing.code !== 0, "reading a removed node must fail");
  await tool("xenstore-rm", ["/vm"], s);
  equal(await tool("xenstore-list", ["/"], s), "tool\n");
});

Deno.test("Xen's test-xenstore passes every test against dxenstored", async () => {
  const bin = await dpkgFile("xen-utils-4.17", "/test-xenstore");
  ok(bin !== null, "test-xenstore not installed (apt-get install xen-utils-4.17)");
  await using d = await startDaemon();
  const r = await runTool(bin, [], d.socket, 60000);
  equal(r.code, 0, `test-xenstore failed:\n${r.stdout}\n${r.stderr}`);
  // It prints one timing line per test it ran; all twelve must be there.
  for (
    const name of [
      "read 1",
      "read 2000",
      "write 1",
      "write 2000",
      "dir",
      "rm node",
      "rm dir",
      "ta empty",
      "ta rmw",
      "ta err",
    ]
  ) {
    ok(r.stdout.includes(name), `test ${name} did not run:\n${r.stdout}`);
  }
  equal(r.stdout.trim().split("\n").length, 12, r.stdout);
});
