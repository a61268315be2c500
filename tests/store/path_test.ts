// Path syntax and resolution: src/store/path.ts.
import assert from "../helpers/assert.ts";
import fc from "fast-check";
import { XsError } from "../../src/common/xs_error.ts";
import {
  components,
  domainPath,
  isAncestorOrSelf,
  joinPath,
  parentOf,
  resolvePath,
} from "../../src/store/path.ts";
import { ABS_PATH_MAX, REL_PATH_MAX } from "../../src/protocol/wire.ts";

const BASE = "/local/domain/7";

function einval(raw: string, allowSpecial = false, base = BASE): void {
  assert.throws(
    () => resolvePath(raw, base, allowSpecial),
    XsError,
    (e) => e.errno === "EINVAL",
    `resolvePath(${JSON.stringify(raw.length > 40 ? raw.slice(0, 40) + "…" : raw)})`,
  );
}

Deno.test("limits are Xen's", () => {
  assert.equal(ABS_PATH_MAX, 3072);
  assert.equal(REL_PATH_MAX, 2048);
  assert.equal(domainPath(0), "/local/domain/0");
  assert.equal(domainPath(65535), "/local/domain/65535");
});

Deno.test("resolvePath: absolute, relative, root", () => {
  assert.deepEqual(resolvePath("/", BASE, false), { abs: "/", special: false, relativeBase: null });
  assert.deepEqual(resolvePath("/a/b-c_D9", BASE, false), {
    abs: "/a/b-c_D9",
    special: false,
    relativeBase: null,
  });
  assert.deepEqual(resolvePath("device/vif", BASE, false), {
    abs: "/local/domain/7/device/vif",
    special: false,
    relativeBase: "/local/domain/7/",
  });
  // '@' inside a normal path is just a character.
  assert.deepEqual(resolvePath("/a@b", BASE, false).abs, "/a@b");
});

Deno.test("resolvePath: special paths only where allowed", () => {
  assert.deepEqual(resolvePath("@introduceDomain", BASE, true), {
    abs: "@introduceDomain",
    special: true,
    relativeBase: null,
  });
  einval("@introduceDomain", false);
  einval("@releaseDomain", false);
  einval("@", true);
});

Deno.test("resolvePath: malformed paths are EINVAL", () => {
  for (const raw of ["", "//", "/a//b", "//a", "a//b", "/a/", "a/", "/a/b/"]) einval(raw, true);
  for (const bad of [" ", ".", "..", "\0", "\xff", "é", "*", "\n", "\\", "+", ":", "~"]) {
    einval(`/a${bad}b`, true);
    einval(`a${bad}`, true);
  }
});

Deno.test("resolvePath: length limits (absolute 3072, relative 2048 and its absolute form)", () => {
  const abs = (n: number) => "/" + "a".repeat(n - 1);
  assert.equal(resolvePath(abs(ABS_PATH_MAX), BASE, false).abs.length, 3072);
  einval(abs(ABS_PATH_MAX + 1));
  const special = "@" + "x".repeat(ABS_PATH_MAX - 1);
  assert.equal(resolvePath(special, BASE, true).abs, special);
  einval(special + "x", true);
  const rel = "r".repeat(REL_PATH_MAX);
  assert.equal(resolvePath(rel, BASE, false).abs, `${BASE}/${rel}`);
  einval(rel + "r");
  // A short relative path whose absolute form exceeds 3072 (long base) is refused too.
  const longBase = "/" + "b".repeat(2000);
  einval("c".repeat(1100), false, longBase);
  assert.equal(resolvePath("c".repeat(1070), longBase, false).abs.length, 3072);
});

Deno.test("components / parentOf / joinPath", () => {
  assert.deepEqual(components("/"), []);
  assert.deepEqual(components("/a"), ["a"]);
  assert.deepEqual(components("/local/domain/1"), ["local", "domain", "1"]);
  assert.equal(parentOf("/a"), "/");
  assert.equal(parentOf("/a/b/c"), "/a/b");
  assert.equal(parentOf("/"), "/");
  assert.equal(joinPath("/", "a"), "/a");
  assert.equal(joinPath("/a/b", "c"), "/a/b/c");
  for (const p of ["/a", "/a/b", "/x/y/z/w"]) assert.equal(joinPath(parentOf(p), components(p).at(-1)!), p);
});

// components() keeps recently split paths (issue 20): a hit must give what a split gives, for paths
// seen again after being evicted, and no caller may change the shared array.
Deno.test("components: cached splits stay exact and cannot be changed", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.stringMatching(/^[a-z0-9]{1,3}$/), { minLength: 1, maxLength: 5 }), {
        minLength: 1,
        maxLength: 300,
      }),
      (paths) => {
        // Each path twice, the second time after up to 300 others (past the cache's bound).
        for (const round of [0, 1]) {
          for (const parts of paths) {
            const p = "/" + parts.join("/");
            assert.deepEqual([...components(p)], parts, `round ${round}: ${p}`);
          }
        }
      },
    ),
    { numRuns: 50 },
  );
  const comps = components("/local/domain/1");
  assert.ok(Object.isFrozen(comps));
  assert.throws(() => (comps as string[]).push("x"), TypeError);
  assert.throws(() => ((comps as string[])[0] = "x"), TypeError);
  assert.deepEqual(components("/local/domain/1"), ["local", "domain", "1"]);
  // The same path built as a different string object (a slice of a request's payload) hits as well.
  const payload = "/local/domain/1\0value";
  assert.deepEqual(components(payload.slice(0, payload.indexOf("\0"))), ["local", "domain", "1"]);
});

Deno.test("isAncestorOrSelf", () => {
  assert.ok(isAncestorOrSelf("/", "/"));
  assert.ok(isAncestorOrSelf("/", "/a/b"));
  assert.ok(isAncestorOrSelf("/a", "/a"));
  assert.ok(isAncestorOrSelf("/a", "/a/b"));
  assert.ok(!isAncestorOrSelf("/a", "/ab"), "/a is no ancestor of /ab");
  assert.ok(!isAncestorOrSelf("/a/b", "/a"));
  assert.ok(!isAncestorOrSelf("/", "@releaseDomain"));
  assert.ok(isAncestorOrSelf("@releaseDomain", "@releaseDomain"));
});

Deno.test("resolvePath: accepts exactly the paths of Xen's syntax (against its regular expressions)", () => {
  // The definition the scan in resolvePath implements: Xen's characters, no "//", no trailing "/".
  const valid = (raw: string) =>
    /^[A-Za-z0-9\-/_@]+$/.test(raw) && !raw.includes("//") && !(raw.length > 1 && raw.endsWith("/"));
  const alphabet = [
    "a",
    "Z",
    "0",
    "9",
    "-",
    "_",
    "@",
    "/",
    "/",
    ".",
    " ",
    "\0",
    "\xff",
    "`",
    "{",
    "[",
    ":",
    "é",
  ];
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let k = 0; k < 5000; k++) {
    let raw = "";
    for (let n = 1 + rand(8); n > 0; n--) raw += alphabet[rand(alphabet.length)];
    let ok = true;
    try {
      resolvePath(raw, BASE, true);
    } catch {
      ok = false;
    }
    assert.equal(ok, valid(raw) && raw !== "@", `resolvePath(${JSON.stringify(raw)})`);
  }
  // Every character code: only Xen's are accepted.
  for (let ch = 0; ch < 256; ch++) {
    const c = String.fromCharCode(ch);
    let ok = true;
    try {
      resolvePath(`/a${c}b`, BASE, false);
    } catch {
      ok = false;
    }
    assert.equal(ok, /^[A-Za-z0-9\-/_@]$/.test(c), `character ${ch}`);
  }
});
