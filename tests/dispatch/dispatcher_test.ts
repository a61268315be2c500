// The dispatcher driven through Core with a fake ReplySink: node operations by the privileged client,
// path validation, RM/MKDIR semantics, reply framing.
import assert from "../helpers/assert.ts";
import { call, dom0, err, ok, testCore } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { lookup } from "../../src/store/tree.ts";

const OK = "OK\0";

Deno.test("WRITE / READ / MKDIR / DIRECTORY / GET_PERMS / SET_PERMS / RM happy paths", () => {
  const core = testCore();
  const c = dom0(core);
  assert.equal(ok(core, c, T.WRITE, "/a/b\0hello"), OK);
  assert.equal(ok(core, c, T.READ, "/a/b\0"), "hello", "READ returns the raw value, no terminator");
  assert.equal(ok(core, c, T.READ, "/a\0"), "", "WRITE created the parent with an empty value");
  assert.equal(ok(core, c, T.WRITE, "/a/bin\0\0\xff\x80"), OK);
  assert.equal(ok(core, c, T.READ, "/a/bin\0"), "\0\xff\x80");
  assert.equal(ok(core, c, T.WRITE, "/a/b\0"), OK);
  assert.equal(ok(core, c, T.READ, "/a/b\0"), "", "empty value");
  assert.equal(ok(core, c, T.MKDIR, "/a/dir/sub\0"), OK);
  assert.equal(ok(core, c, T.READ, "/a/dir/sub\0"), "");
  assert.equal(ok(core, c, T.DIRECTORY, "/a\0"), "b\0bin\0dir\0");
  assert.equal(ok(core, c, T.DIRECTORY, "/a/dir/sub\0"), "", "empty directory: empty payload");
  assert.equal(ok(core, c, T.DIRECTORY, "/\0"), "a\0tool\0");
  assert.equal(ok(core, c, T.GET_PERMS, "/a/b\0"), "n0\0");
  assert.equal(ok(core, c, T.SET_PERMS, "/a/b\0r5\0b6\0w7\0"), OK);
  assert.equal(ok(core, c, T.GET_PERMS, "/a/b\0"), "r5\0b6\0w7\0");
  assert.equal(ok(core, c, T.RM, "/a/dir\0"), OK);
  err(core, c, T.READ, "/a/dir/sub\0", "ENOENT");
  err(core, c, T.READ, "/a/dir\0", "ENOENT");
  assert.equal(ok(core, c, T.DIRECTORY, "/a\0"), "b\0bin\0");
});

Deno.test("relative paths resolve against the caller's domain path", () => {
  const core = testCore();
  const c = dom0(core);
  assert.equal(ok(core, c, T.WRITE, "rel/x\0v"), OK);
  assert.equal(ok(core, c, T.READ, "/local/domain/0/rel/x\0"), "v");
  assert.equal(ok(core, c, T.READ, "rel/x\0"), "v");
  assert.equal(ok(core, c, T.DIRECTORY, "/local/domain/0\0"), "rel\0");
});

Deno.test("GET_DOMAIN_PATH and IS_DOMAIN_INTRODUCED", () => {
  const core = testCore();
  const c = dom0(core);
  assert.equal(ok(core, c, T.GET_DOMAIN_PATH, "0\0"), "/local/domain/0\0");
  assert.equal(ok(core, c, T.GET_DOMAIN_PATH, "65535\0"), "/local/domain/65535\0");
  err(core, c, T.GET_DOMAIN_PATH, "12a\0", "EINVAL");
  assert.equal(ok(core, c, T.IS_DOMAIN_INTRODUCED, "0\0"), "T\0");
  assert.equal(ok(core, c, T.IS_DOMAIN_INTRODUCED, "42\0"), "F\0");
  err(core, c, T.IS_DOMAIN_INTRODUCED, "70000\0", "EINVAL");
});

Deno.test("a reply echoes type, req_id and tx_id (also for errors and extreme ids)", () => {
  const core = testCore();
  const c = dom0(core);
  for (const reqId of [0, 1, 0x7fffffff, 0xffffffff]) {
    core.message(c.client, { type: T.READ, reqId, txId: 0, payload: "/tool/xenstored\0" });
    core.message(c.client, { type: T.READ, reqId, txId: 0, payload: "/missing\0" });
    core.message(c.client, { type: 99, reqId, txId: 0, payload: "" });
  }
  assert.equal(c.sink.sent.length, 12);
  for (let i = 0; i < 12; i += 3) {
    const [good, missing, unknown] = c.sink.sent.slice(i, i + 3);
    const reqId = [0, 1, 0x7fffffff, 0xffffffff][i / 3];
    assert.deepEqual(good, { type: T.READ, reqId, txId: 0, payload: "" });
    assert.deepEqual(missing, { type: T.ERROR, reqId, txId: 0, payload: "ENOENT\0" });
    assert.deepEqual(unknown, { type: T.ERROR, reqId, txId: 0, payload: "ENOSYS\0" });
  }
  // A node operation in a transaction that does not exist: ENOENT, tx_id echoed.
  const r = call(core, c, T.READ, "/tool\0", 77);
  assert.deepEqual([r.type, r.txId, r.payload], [T.ERROR, 77, "ENOENT\0"]);
});

Deno.test("unknown and client-forbidden message types → ENOSYS", () => {
  const core = testCore();
  const c = dom0(core);
  for (const t of [T.WATCH_EVENT, T.ERROR, T.RESTRICT, 27, 28, 255, 0xffff, 0xffffffff]) {
    err(core, c, t, "", "ENOSYS");
  }
  err(core, c, 27, "/a\0", "ENOSYS");
});

const BAD_PATHS: Array<[string, string]> = [
  ["", "empty"],
  ["//", "double slash"],
  ["/a//b", "double slash inside"],
  ["/a/", "trailing slash"],
  ["rel/", "relative trailing slash"],
  ["/a b", "space"],
  ["/a.b", "dot"],
  ["/a\xffb", "high byte"],
  ["/a\x01", "control char"],
  ["/" + "x".repeat(3072), "absolute 3073 bytes"],
  ["y".repeat(2049), "relative 2049 bytes"],
];

Deno.test("EINVAL for malformed paths, for every path-taking operation", () => {
  const core = testCore();
  const c = dom0(core);
  for (const [p, what] of BAD_PATHS) {
    for (const t of [T.READ, T.MKDIR, T.RM, T.DIRECTORY, T.GET_PERMS]) err(core, c, t, `${p}\0`, "EINVAL");
    err(core, c, T.WRITE, `${p}\0v`, "EINVAL");
    err(core, c, T.SET_PERMS, `${p}\0b0\0`, "EINVAL");
    err(core, c, T.DIRECTORY_PART, `${p}\x000\0`, "EINVAL");
    assert.equal(lookup(core.db.root, ["a"]), undefined, `nothing created by ${what}`);
  }
  // The longest legal paths work. dom0 is bound by path-max (2048) like cxenstored 4.17: a dom0 path
  // of 2049 bytes outside a domain's home is EINVAL; the 3072-byte limit needs a larger -M.
  const abs = "/" + "x".repeat(2047);
  assert.equal(ok(core, c, T.WRITE, `${abs}\0v`), OK);
  assert.equal(ok(core, c, T.READ, `${abs}\0`), "v");
  err(core, c, T.WRITE, `${abs}x\0v`, "EINVAL");
  const rel = "y".repeat(2048);
  assert.equal(ok(core, c, T.WRITE, `${rel}\0w`), OK);
  assert.equal(ok(core, c, T.READ, `/local/domain/0/${rel}\0`), "w");
});

Deno.test("special '@' paths are EINVAL outside GET/SET_PERMS", () => {
  const core = testCore();
  const c = dom0(core);
  for (const p of ["@introduceDomain", "@releaseDomain", "@other"]) {
    for (const t of [T.READ, T.MKDIR, T.RM, T.DIRECTORY]) err(core, c, t, `${p}\0`, "EINVAL");
    err(core, c, T.WRITE, `${p}\0v`, "EINVAL");
    err(core, c, T.DIRECTORY_PART, `${p}\x000\0`, "EINVAL");
  }
});

Deno.test("RM: '/' is EINVAL; missing node OK if its parent exists, else ENOENT", () => {
  const core = testCore();
  const c = dom0(core);
  err(core, c, T.RM, "/\0", "EINVAL");
  assert.equal(ok(core, c, T.READ, "/tool/xenstored\0"), "");
  assert.equal(ok(core, c, T.RM, "/tool/missing\0"), OK);
  err(core, c, T.RM, "/nope/missing\0", "ENOENT");
  err(core, c, T.RM, "/tool/xenstored/a/b\0", "ENOENT");
  assert.equal(ok(core, c, T.WRITE, "/t/a/b/c\0v"), OK);
  assert.equal(ok(core, c, T.RM, "/t/a\0"), OK);
  assert.equal(ok(core, c, T.DIRECTORY, "/t\0"), "");
  err(core, c, T.READ, "/t/a/b/c\0", "ENOENT");
});

Deno.test("MKDIR of an existing node is OK and changes nothing", () => {
  const core = testCore();
  const c = dom0(core);
  assert.equal(ok(core, c, T.WRITE, "/m\0keep"), OK);
  assert.equal(ok(core, c, T.SET_PERMS, "/m\0r3\0"), OK);
  const root = core.db.root;
  const commits: number[] = [];
  core.db.onCommit(() => commits.push(1));
  assert.equal(ok(core, c, T.MKDIR, "/m\0"), OK);
  assert.equal(core.db.root, root, "no new root");
  assert.equal(commits.length, 0, "no commit");
  assert.equal(ok(core, c, T.READ, "/m\0"), "keep");
  assert.equal(ok(core, c, T.GET_PERMS, "/m\0"), "r3\0");
  assert.equal(ok(core, c, T.MKDIR, "/\0"), OK);
});

Deno.test("SET_PERMS: bad permission strings EINVAL, missing node ENOENT", () => {
  const core = testCore();
  const c = dom0(core);
  for (const perms of ["x0\0", "r\0", "r70000\0", "r-1\0", "r1a\0"]) {
    err(core, c, T.SET_PERMS, `/tool\0${perms}`, "EINVAL");
  }
  err(core, c, T.SET_PERMS, "/tool\0", "EINVAL");
  err(core, c, T.SET_PERMS, "/missing\0b0\0", "ENOENT");
  assert.equal(ok(core, c, T.GET_PERMS, "/tool\0"), "n0\0", "unchanged after refusals");
  err(core, c, T.GET_PERMS, "/missing\0", "ENOENT");
});

Deno.test("GET/SET_PERMS on special paths", () => {
  const core = testCore();
  const c = dom0(core);
  assert.equal(ok(core, c, T.GET_PERMS, "@introduceDomain\0"), "n0\0");
  assert.equal(ok(core, c, T.GET_PERMS, "@releaseDomain\0"), "n0\0");
  // Only the two special nodes have permissions (spec PERM-13).
  err(core, c, T.GET_PERMS, "@unknownSpecial\0", "ENOENT");
  err(core, c, T.SET_PERMS, "@unknownSpecial\0n0\0", "ENOENT");
  assert.equal(ok(core, c, T.SET_PERMS, "@introduceDomain\0n0\0r5\0"), OK);
  assert.equal(ok(core, c, T.GET_PERMS, "@introduceDomain\0"), "n0\0r5\0");
  assert.equal(ok(core, c, T.GET_PERMS, "@releaseDomain\0"), "n0\0", "the other special is unaffected");
});

Deno.test("a node operation never leaves more than one reply, and errors never change the store", () => {
  const core = testCore();
  const c = dom0(core);
  const root = core.db.root;
  for (const [p] of BAD_PATHS) call(core, c, T.WRITE, `${p}\0v`);
  call(core, c, T.RM, "/\0");
  call(core, c, T.RM, "/nope/x\0");
  call(core, c, T.SET_PERMS, "/missing\0b0\0");
  assert.equal(core.db.root, root);
});

Deno.test("a tx_id naming no transaction: ENOENT before the payload is looked at, but for WATCH/UNWATCH", () => {
  const core = testCore();
  const c = dom0(core);
  for (
    const [type, payload] of [
      [T.WRITE, "/a"], // malformed (no NUL): the transaction is judged first, as cxenstored
      [T.READ, "/a\0"],
      [T.GET_DOMAIN_PATH, "0\0"],
      [T.TRANSACTION_START, "\0"],
      [T.RESET_WATCHES, ""],
      [T.SET_PERMS, "//bad\0x1\0"],
    ] as const
  ) {
    err(core, c, type, payload, "ENOENT", 77);
  }
  core.message(c.client, { type: T.WATCH, reqId: 1, txId: 77, payload: "/w\0tok\0" });
  assert.deepEqual(c.sink.sent.slice(-2).map((m) => m.type), [T.WATCH, T.WATCH_EVENT]);
  ok(core, c, T.UNWATCH, "/w\0tok\0", 77);
  err(core, c, T.WRITE, "/a", "EINVAL"); // without a transaction: the payload's error
});
