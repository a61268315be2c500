// Payload parsing of every message type: src/protocol/request.ts (syntax only, no store).
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { XsError } from "../../src/common/xs_error.ts";
import { parseDecimal, parseRequest, type Request, splitArgs } from "../../src/protocol/request.ts";
import { MsgType } from "../../src/protocol/wire.ts";

function parse(type: number, payload: string): Request {
  return parseRequest({ type, reqId: 1, txId: 0, payload });
}

function errnoOf(type: number, payload: string): string {
  const e = assert.throws(
    () => parse(type, payload),
    XsError,
    undefined,
    `type ${type} payload ${JSON.stringify(payload)}`,
  );
  return e.errno;
}

function einval(type: number, payload: string): void {
  assert.equal(errnoOf(type, payload), "EINVAL", `type ${type} payload ${JSON.stringify(payload)}`);
}

const BAD_DOMIDS = ["12a", "70000", "65536", "-1", "", " 1", "1 ", "0x1", "+1", "1e3", "12345678901"];

Deno.test("xs_wire.h numbering", () => {
  assert.deepEqual(
    [
      MsgType.CONTROL,
      MsgType.DIRECTORY,
      MsgType.READ,
      MsgType.WATCH_EVENT,
      MsgType.ERROR,
      MsgType.DIRECTORY_PART,
    ],
    [0, 1, 2, 15, 16, 22],
  );
  assert.deepEqual([MsgType.SET_QUOTA, MsgType.INVALID], [26, 0xffff]);
});

Deno.test("splitArgs", () => {
  assert.deepEqual(splitArgs(""), []);
  assert.deepEqual(splitArgs("\0"), [""]);
  assert.deepEqual(splitArgs("a\0b\0"), ["a", "b"]);
  assert.deepEqual(splitArgs("a\0\0"), ["a", ""]);
  assert.throws(() => splitArgs("a"), XsError, (e) => e.errno === "EINVAL");
  assert.throws(() => splitArgs("a\0b"), XsError, (e) => e.errno === "EINVAL");
});

Deno.test("parseDecimal", () => {
  assert.equal(parseDecimal("0", 10, "x"), 0);
  assert.equal(parseDecimal("00", 10, "x"), 0);
  assert.equal(parseDecimal("4294967295", 0xffffffff, "x"), 0xffffffff);
  for (const s of ["4294967296", "99999999999", "", "-0", "1.5", "١"]) {
    assert.throws(() => parseDecimal(s, 0xffffffff, "x"), XsError, (e) => e.errno === "EINVAL", s);
  }
});

Deno.test("single-path requests: READ GET_PERMS DIRECTORY MKDIR RM", () => {
  for (const t of [MsgType.READ, MsgType.GET_PERMS, MsgType.DIRECTORY, MsgType.MKDIR, MsgType.RM]) {
    assert.deepEqual(parse(t, "/local/domain/1\0"), { op: t, path: "/local/domain/1" });
    assert.deepEqual(parse(t, "rel\0"), { op: t, path: "rel" });
    // The empty path is syntactically one argument; the dispatcher rejects it.
    assert.deepEqual(parse(t, "\0"), { op: t, path: "" });
    einval(t, "/a"); // missing NUL
    einval(t, ""); // no argument
    einval(t, "/a\0/b\0"); // two arguments
    einval(t, "/a\0\0");
  }
});

// The single-path requests take a shortcut (issue 20): it must accept and refuse exactly what the
// general argument splitter does.
Deno.test("single-path requests: the shortcut agrees with splitArgs on any payload", () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom("a", "/", "\0"), { maxLength: 6 }).map((cs) => cs.join("")),
      (payload) => {
        let expected: string | null;
        try {
          const a = splitArgs(payload);
          expected = a.length === 1 ? a[0] : null;
        } catch {
          expected = null;
        }
        let got: string | null;
        try {
          got = (parseRequest({ type: MsgType.READ, reqId: 0, txId: 0, payload }) as { path: string }).path;
        } catch (e) {
          assert.ok(e instanceof XsError && e.errno === "EINVAL", String(e));
          got = null;
        }
        assert.equal(got, expected, JSON.stringify(payload));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("WRITE: path NUL value (value is raw, may hold NULs, no terminator)", () => {
  assert.deepEqual(parse(MsgType.WRITE, "/a\0hello"), { op: MsgType.WRITE, path: "/a", value: "hello" });
  assert.deepEqual(parse(MsgType.WRITE, "/a\0"), { op: MsgType.WRITE, path: "/a", value: "" });
  assert.deepEqual(parse(MsgType.WRITE, "/a\0x\0y\0"), { op: MsgType.WRITE, path: "/a", value: "x\0y\0" });
  assert.deepEqual(parse(MsgType.WRITE, "/a\0\xff\x80"), {
    op: MsgType.WRITE,
    path: "/a",
    value: "\xff\x80",
  });
  einval(MsgType.WRITE, "/a");
  einval(MsgType.WRITE, "");
});

Deno.test("DIRECTORY_PART: path and decimal offset", () => {
  assert.deepEqual(parse(MsgType.DIRECTORY_PART, "/a\x000\0"), {
    op: MsgType.DIRECTORY_PART,
    path: "/a",
    offset: 0,
  });
  assert.deepEqual(parse(MsgType.DIRECTORY_PART, "/a\x004294967295\0"), {
    op: MsgType.DIRECTORY_PART,
    path: "/a",
    offset: 4294967295,
  });
  for (
    const p of ["/a\0", "/a\x000", "/a\x00x\0", "/a\x00-1\0", "/a\x004294967296\0", "/a\x001\x002\0", ""]
  ) {
    einval(MsgType.DIRECTORY_PART, p);
  }
});

Deno.test("SET_PERMS: path and at least one permission", () => {
  assert.deepEqual(parse(MsgType.SET_PERMS, "/a\0b0\0"), {
    op: MsgType.SET_PERMS,
    path: "/a",
    perms: ["b0"],
  });
  assert.deepEqual(parse(MsgType.SET_PERMS, "@introduceDomain\0n0\0r5\0"), {
    op: MsgType.SET_PERMS,
    path: "@introduceDomain",
    perms: ["n0", "r5"],
  });
  einval(MsgType.SET_PERMS, "/a\0");
  einval(MsgType.SET_PERMS, "/a\0b0");
  einval(MsgType.SET_PERMS, "");
});

Deno.test("WATCH: path token [depth]", () => {
  assert.deepEqual(parse(MsgType.WATCH, "/a\0tok\0"), {
    op: MsgType.WATCH,
    path: "/a",
    token: "tok",
    depth: undefined,
  });
  assert.deepEqual(parse(MsgType.WATCH, "/a\0tok\x003\0"), {
    op: MsgType.WATCH,
    path: "/a",
    token: "tok",
    depth: 3,
  });
  for (const p of ["/a\0", "/a\0tok", "/a\0tok\x00x\0", "/a\0tok\x00-1\0", "/a\0t\x001\x002\0", ""]) {
    einval(MsgType.WATCH, p);
  }
});

Deno.test("UNWATCH: path token, tolerating one empty reserved argument", () => {
  assert.deepEqual(parse(MsgType.UNWATCH, "/a\0tok\0"), { op: MsgType.UNWATCH, path: "/a", token: "tok" });
  assert.deepEqual(parse(MsgType.UNWATCH, "/a\0tok\0\0"), { op: MsgType.UNWATCH, path: "/a", token: "tok" });
  for (const p of ["/a\0", "/a\0tok\0x\0", "/a\0tok", ""]) einval(MsgType.UNWATCH, p);
});

Deno.test("TRANSACTION_START / TRANSACTION_END", () => {
  assert.deepEqual(parse(MsgType.TRANSACTION_START, ""), { op: MsgType.TRANSACTION_START });
  assert.deepEqual(parse(MsgType.TRANSACTION_START, "\0"), { op: MsgType.TRANSACTION_START });
  einval(MsgType.TRANSACTION_START, "x\0");
  einval(MsgType.TRANSACTION_START, "\0\0");
  assert.deepEqual(parse(MsgType.TRANSACTION_END, "T\0"), { op: MsgType.TRANSACTION_END, commit: true });
  assert.deepEqual(parse(MsgType.TRANSACTION_END, "F\0"), { op: MsgType.TRANSACTION_END, commit: false });
  for (const p of ["t\0", "f\0", "T", "TF\0", "T\0F\0", "\0", "", "1\0"]) einval(MsgType.TRANSACTION_END, p);
});

Deno.test("INTRODUCE: domid gfn port [extra]", () => {
  assert.deepEqual(parse(MsgType.INTRODUCE, "5\x00123\x004\0"), {
    op: MsgType.INTRODUCE,
    domid: 5,
    gfn: 123,
    port: 4,
  });
  assert.deepEqual(parse(MsgType.INTRODUCE, "5\x00123\x004\x000\0"), {
    op: MsgType.INTRODUCE,
    domid: 5,
    gfn: 123,
    port: 4,
  });
  einval(MsgType.INTRODUCE, "5\x00123\0");
  einval(MsgType.INTRODUCE, "5\x00123\x004\x000\x000\0");
  einval(MsgType.INTRODUCE, "5\x00x\x004\0");
  for (const d of BAD_DOMIDS) einval(MsgType.INTRODUCE, `${d}\x00123\x004\0`);
});

Deno.test("domid-only requests: RELEASE RESUME IS_DOMAIN_INTRODUCED GET_DOMAIN_PATH", () => {
  for (const t of [MsgType.RELEASE, MsgType.RESUME, MsgType.IS_DOMAIN_INTRODUCED, MsgType.GET_DOMAIN_PATH]) {
    assert.deepEqual(parse(t, "0\0"), { op: t, domid: 0 });
    assert.deepEqual(parse(t, "65535\0"), { op: t, domid: 65535 });
    for (const d of BAD_DOMIDS) einval(t, `${d}\0`);
    einval(t, "5");
    einval(t, "5\x006\0");
    einval(t, "");
  }
});

Deno.test("SET_TARGET: two domids", () => {
  assert.deepEqual(parse(MsgType.SET_TARGET, "3\x004\0"), { op: MsgType.SET_TARGET, domid: 3, target: 4 });
  einval(MsgType.SET_TARGET, "3\0");
  for (const d of BAD_DOMIDS) {
    einval(MsgType.SET_TARGET, `${d}\x004\0`);
    einval(MsgType.SET_TARGET, `3\0${d}\0`);
  }
});

Deno.test("RESET_WATCHES and CONTROL", () => {
  assert.deepEqual(parse(MsgType.RESET_WATCHES, ""), { op: MsgType.RESET_WATCHES });
  assert.deepEqual(parse(MsgType.RESET_WATCHES, "\0"), { op: MsgType.RESET_WATCHES });
  einval(MsgType.RESET_WATCHES, "x\0");
  assert.deepEqual(parse(MsgType.CONTROL, "log\0on\0"), { op: MsgType.CONTROL, args: ["log", "on"] });
  assert.deepEqual(parse(MsgType.CONTROL, "quota\0"), { op: MsgType.CONTROL, args: ["quota"] });
  einval(MsgType.CONTROL, "");
  einval(MsgType.CONTROL, "\0");
  einval(MsgType.CONTROL, "log");
});

Deno.test("GET_FEATURE / SET_FEATURE", () => {
  assert.deepEqual(parse(MsgType.GET_FEATURE, ""), { op: MsgType.GET_FEATURE, domid: undefined });
  assert.deepEqual(parse(MsgType.GET_FEATURE, "7\0"), { op: MsgType.GET_FEATURE, domid: 7 });
  einval(MsgType.GET_FEATURE, "7\x008\0");
  for (const d of BAD_DOMIDS) einval(MsgType.GET_FEATURE, `${d}\0`);
  assert.deepEqual(parse(MsgType.SET_FEATURE, "7\x001\0"), {
    op: MsgType.SET_FEATURE,
    domid: 7,
    features: 1,
  });
  einval(MsgType.SET_FEATURE, "7\0");
  einval(MsgType.SET_FEATURE, "7\x00x\0");
  for (const d of BAD_DOMIDS) einval(MsgType.SET_FEATURE, `${d}\x001\0`);
});

Deno.test("GET_QUOTA / SET_QUOTA", () => {
  assert.deepEqual(parse(MsgType.GET_QUOTA, ""), {
    op: MsgType.GET_QUOTA,
    domid: undefined,
    name: undefined,
  });
  assert.deepEqual(parse(MsgType.GET_QUOTA, "nodes\0"), {
    op: MsgType.GET_QUOTA,
    domid: undefined,
    name: "nodes",
  });
  assert.deepEqual(parse(MsgType.GET_QUOTA, "3\0nodes\0"), {
    op: MsgType.GET_QUOTA,
    domid: 3,
    name: "nodes",
  });
  einval(MsgType.GET_QUOTA, "3\0nodes\0x\0");
  einval(MsgType.GET_QUOTA, "12a\0nodes\0");
  assert.deepEqual(parse(MsgType.SET_QUOTA, "nodes\x0010\0"), {
    op: MsgType.SET_QUOTA,
    domid: undefined,
    name: "nodes",
    value: 10,
  });
  assert.deepEqual(parse(MsgType.SET_QUOTA, "3\0nodes\x0010\0"), {
    op: MsgType.SET_QUOTA,
    domid: 3,
    name: "nodes",
    value: 10,
  });
  einval(MsgType.SET_QUOTA, "nodes\0");
  einval(MsgType.SET_QUOTA, "nodes\0x\0");
  einval(MsgType.SET_QUOTA, "70000\0nodes\x0010\0");
  einval(MsgType.SET_QUOTA, "3\0nodes\x0010\0x\0");
});

Deno.test("types a client may not send, and unknown types → ENOSYS", () => {
  for (
    const t of [
      MsgType.WATCH_EVENT,
      MsgType.ERROR,
      MsgType.RESTRICT,
      27,
      28,
      100,
      MsgType.INVALID,
      0xffffffff,
    ]
  ) {
    assert.equal(errnoOf(t, ""), "ENOSYS", `type ${t}`);
    assert.equal(errnoOf(t, "/a\0tok\0"), "ENOSYS", `type ${t} with payload`);
  }
});
