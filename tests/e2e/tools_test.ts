// Debian's xenstore-* tools (libxenstore) against the real daemon. xenstore-read/-write with one
// argument and xenstore-ls run without a transaction; -rm, -exists, -list, -chmod and multi-argument
// read/write wrap their work in a transaction.
import assert from "../helpers/assert.ts";
import { type Daemon, runTool, type ToolResult, withDaemon } from "../helpers/daemon.ts";
import { type LsNode, lsText, sanitise } from "../helpers/xs_ls.ts";

async function tool(d: Daemon, name: string, ...args: string[]): Promise<ToolResult> {
  return await runTool(name, args, d.socket);
}

/** Run a tool that must succeed; returns its stdout. */
async function must(d: Daemon, name: string, ...args: string[]): Promise<string> {
  const r = await tool(d, name, ...args);
  assert.equal(r.code, 0, `${name} ${args.join(" ")} failed (stderr: ${r.stderr.trim()})`);
  return r.stdout;
}

Deno.test("tools: xenstore-write / xenstore-read of one node (no transaction)", async () => {
  await withDaemon(async (d) => {
    assert.equal(await must(d, "xenstore-write", "/t/a", "hello world"), "");
    assert.equal(await must(d, "xenstore-read", "/t/a"), "hello world\n");
    assert.equal(await must(d, "xenstore-read", "/t"), "\n", "the parent was created empty");
    const miss = await tool(d, "xenstore-read", "/t/missing");
    assert.equal(miss.code, 1);
    assert.equal(miss.stdout, "");
    assert.ok(miss.stderr.includes("couldn't read path /t/missing"), miss.stderr);
    const bad = await tool(d, "xenstore-write", "/t/bad path", "x");
    assert.equal(bad.code, 1);
    assert.ok(bad.stderr.includes("could not write path /t/bad path"), bad.stderr);
  });
});

Deno.test("tools: values are bytes (escapes in, escapes out, -R raw)", async () => {
  await withDaemon(async (d) => {
    // xenstore-write unescapes \xNN, \NNN, \t, \\; xenstore-read escapes non-printables again.
    await must(d, "xenstore-write", "/bin", "a\\x01\\xff\\t\\\\z\\x7f");
    const value = "a\x01\xff\t\\z\x7f";
    assert.equal(await must(d, "xenstore-read", "/bin"), sanitise(value) + "\n");
    assert.equal(sanitise(value), "a\\001\\xff\\t\\\\z\\x7f");
    const raw = await new Deno.Command("xenstore-read", {
      args: ["-R", "/bin"],
      env: { XENSTORED_PATH: d.socket },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(raw.code, 0);
    assert.deepEqual(Array.from(raw.stdout), Array.from(value, (c) => c.charCodeAt(0)));
  });
});

Deno.test("tools: xenstore-ls -p prints the expected tree", async () => {
  await withDaemon(async (d) => {
    // Created out of order: the daemon lists children sorted.
    await must(d, "xenstore-write", "/ls/zeta", "last");
    await must(d, "xenstore-write", "/ls/alpha/one", "1");
    await must(d, "xenstore-write", "/ls/alpha/two", "a value with spaces");
    await must(d, "xenstore-write", "/ls/mid", "tab\\there");
    await must(d, "xenstore-write", "/ls/long", "x".repeat(100));
    await must(d, "xenstore-write", "/ls/" + "n".repeat(60), "v");
    const children: LsNode[] = [
      {
        name: "alpha",
        value: "",
        perms: ["n0"],
        children: [
          { name: "one", value: "1", perms: ["n0"] },
          { name: "two", value: "a value with spaces", perms: ["n0"] },
        ],
      },
      { name: "long", value: "x".repeat(100), perms: ["n0"] },
      { name: "mid", value: "tab\there", perms: ["n0"] },
      { name: "n".repeat(60), value: "v", perms: ["n0"] },
      { name: "zeta", value: "last", perms: ["n0"] },
    ];
    const expected = lsText(children, true);
    assert.equal(await must(d, "xenstore-ls", "-p", "/ls"), expected);
    // Spot-check the formatter itself against a line written out by hand.
    // "zeta = \"last\"" is 13 columns; one space, then " ." up to column 60, then the permissions.
    assert.ok(expected.includes(`zeta = "last" ${" .".repeat(23)}  (n0)\n`), "padding");
    // A value that does not fit in 80 columns is cut to 80 - 8 - width("long") = 68 characters.
    assert.ok(expected.includes(`long = "${"x".repeat(68)}\\..."  (n0)\n`), "truncation");
    // Without -p: no padding, no permissions.
    assert.equal(
      await must(d, "xenstore-ls", "/ls/alpha"),
      lsText([{ name: "one", value: "1", perms: [] }, {
        name: "two",
        value: "a value with spaces",
        perms: [],
      }], false),
    );
    assert.equal(await must(d, "xenstore-ls", "/ls/alpha"), 'one = "1"\ntwo = "a value with spaces"\n');
    // The whole store, from "/": the same nodes one level deeper (padding depends on the depth).
    assert.equal(
      await must(d, "xenstore-ls", "-p", "/"),
      lsText([
        { name: "ls", value: "", perms: ["n0"], children },
        {
          name: "tool",
          value: "",
          perms: ["n0"],
          children: [{ name: "xenstored", value: "", perms: ["n0"] }],
        },
      ], true),
    );
  });
});

Deno.test("tools: xenstore-exists / xenstore-list (transactions)", async () => {
  await withDaemon(async (d) => {
    await must(d, "xenstore-write", "/l/b", "2");
    await must(d, "xenstore-write", "/l/a", "1");
    await must(d, "xenstore-write", "/l/c/d", "3");
    assert.equal((await tool(d, "xenstore-exists", "/l/a")).code, 0);
    assert.equal((await tool(d, "xenstore-exists", "/l/c/d")).code, 0);
    assert.equal((await tool(d, "xenstore-exists", "/l/zz")).code, 1);
    assert.equal((await tool(d, "xenstore-exists", "/nope/zz")).code, 1);
    assert.equal(await must(d, "xenstore-list", "/l"), "a\nb\nc\n");
    assert.equal(await must(d, "xenstore-list", "-p", "/l"), "/l/a\n/l/b\n/l/c\n");
    assert.equal(await must(d, "xenstore-list", "/l/a"), "");
    const miss = await tool(d, "xenstore-list", "/l/zz");
    assert.equal(miss.code, 1);
    assert.ok(miss.stderr.includes("could not list path /l/zz"), miss.stderr);
  });
});

Deno.test("tools: multi-argument xenstore-write / xenstore-read (transactions)", async () => {
  await withDaemon(async (d) => {
    await must(d, "xenstore-write", "/m/a", "1", "/m/b", "2", "/m/c/d", "3");
    assert.equal(await must(d, "xenstore-read", "/m/a", "/m/b", "/m/c/d"), "1\n2\n3\n");
    assert.equal(await must(d, "xenstore-read", "-p", "/m/a", "/m/b"), "/m/a: 1\n/m/b: 2\n");
    const miss = await tool(d, "xenstore-read", "/m/a", "/m/zz");
    assert.equal(miss.code, 1);
    // The tool still prints what it read before the failure (it ends the transaction, then prints).
    assert.equal(miss.stdout, "1\n");
    assert.ok(miss.stderr.includes("couldn't read path /m/zz"), miss.stderr);
  });
});

Deno.test("tools: xenstore-rm, -t (tidy) (transactions)", async () => {
  await withDaemon(async (d) => {
    await must(d, "xenstore-write", "/r/x/y/z", "deep");
    await must(d, "xenstore-write", "/r/keep", "k");
    await must(d, "xenstore-rm", "/r/x/y");
    assert.equal(await must(d, "xenstore-list", "/r/x"), "");
    assert.equal((await tool(d, "xenstore-exists", "/r/x/y/z")).code, 1);
    await must(d, "xenstore-rm", "/r/x/missing"); // a missing node under an existing parent: OK
    const r = await tool(d, "xenstore-rm", "/r/nope/missing");
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes("could not remove path /r/nope/missing"), r.stderr);
    // -t removes empty, valueless parents too, up to the first that is not.
    await must(d, "xenstore-write", "/r/t1/t2/t3", "v");
    await must(d, "xenstore-rm", "-t", "/r/t1/t2/t3");
    assert.equal(await must(d, "xenstore-list", "/r"), "keep\nx\n");
    assert.equal(await must(d, "xenstore-read", "/r/keep"), "k\n");
  });
});

Deno.test("tools: xenstore-chmod, -r and -u (transactions)", async () => {
  await withDaemon(async (d) => {
    await must(d, "xenstore-write", "/p/a/b", "v");
    await must(d, "xenstore-write", "/p/a/c", "w");
    // Owners are dom0: the daemon runs without Xen (--xen=none), where no other domain exists.
    await must(d, "xenstore-chmod", "/p/a/b", "r0", "b6");
    assert.equal(
      await must(d, "xenstore-ls", "-p", "/p"),
      lsText([{
        name: "a",
        value: "",
        perms: ["n0"],
        children: [{ name: "b", value: "v", perms: ["r0", "b6"] }, { name: "c", value: "w", perms: ["n0"] }],
      }], true),
    );
    await must(d, "xenstore-chmod", "-r", "/p/a", "w0", "r3");
    assert.equal(
      await must(d, "xenstore-ls", "-p", "/p"),
      lsText([{
        name: "a",
        value: "",
        perms: ["w0", "r3"],
        children: [{ name: "b", value: "v", perms: ["w0", "r3"] }, {
          name: "c",
          value: "w",
          perms: ["w0", "r3"],
        }],
      }], true),
    );
    await must(d, "xenstore-chmod", "-u", "/p/a/c", "b0", "r1");
    assert.equal(
      await must(d, "xenstore-ls", "-p", "/p"),
      lsText([{
        name: "a",
        value: "",
        perms: ["b0", "r1"],
        children: [{ name: "b", value: "v", perms: ["w0", "r3"] }, {
          name: "c",
          value: "w",
          perms: ["b0", "r1"],
        }],
      }], true),
    );
    const miss = await tool(d, "xenstore-chmod", "/p/missing", "b0");
    assert.equal(miss.code, 1);
    assert.ok(miss.stderr.includes("Error occurred setting permissions on '/p/missing'"), miss.stderr);
    // An owner that is no existing domain: refused (ENOENT, as cxenstored), nothing changed.
    const noOwner = await tool(d, "xenstore-chmod", "/p/a", "b7");
    assert.equal(noOwner.code, 1);
    assert.ok(noOwner.stderr.includes("No such file or directory"), noOwner.stderr);
    assert.equal(await must(d, "xenstore-ls", "-p", "/p/a/b"), "");
    const bad = await tool(d, "xenstore-chmod", "/p/a", "q7");
    assert.notEqual(bad.code, 0, "an invalid permission letter is refused");
  });
});

Deno.test("tools: xenstore-list of a directory over 4096 bytes (libxenstore falls back to DIRECTORY_PART)", async () => {
  await withDaemon(async (d) => {
    const kids = Array.from({ length: 600 }, (_, i) => `child-${String((i * 7919) % 1000).padStart(5, "0")}`);
    await must(d, "xenstore-write", ...kids.flatMap((k) => [`/big/${k}`, "v"]));
    assert.equal(await must(d, "xenstore-list", "/big"), [...kids].sort().map((k) => k + "\n").join(""));
    assert.equal((await must(d, "xenstore-ls", "/big")).split("\n").filter((l) => l !== "").length, 600);
  });
});
