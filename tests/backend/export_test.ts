// `dxenstored export|import`: the JSON-lines and xenstore-ls formats (round trips, the real
// xenstore-ls tool's output taken as input and compared with ours), migration between backends, and
// reading a running daemon (ours, and Debian's cxenstored when the anchors are here) over its socket.
import { type Backend, openState } from "../../src/backend/backend.ts";
import {
  buildExportedTree,
  fromJsonLines,
  fromLsText,
  ImportError,
  sanitiseValue,
  toJsonLines,
  toLsLines,
  treeNodes,
  unsanitiseValue,
  withoutInactiveEntries,
} from "../../src/backend/export.ts";
import { FileBackend } from "../../src/backend/file.ts";
import { flatten } from "../../src/backend/records.ts";
import { SqliteBackend } from "../../src/backend/sqlite.ts";
import { TdbBackend } from "../../src/backend/tdb.ts";
import { libtdbAvailable } from "../../src/backend/tdb_ffi.ts";
import { readHostStore, writeHostStore } from "../../src/cli/host_store.ts";
import { Perms } from "../../src/store/perms.ts";
import { anchorsAvailable, startAnchor } from "../helpers/anchor.ts";
import { runTool, withDaemon } from "../helpers/daemon.ts";
import { WireClient, XS } from "../helpers/wire.ts";
import assert from "../helpers/assert.ts";
import { assertSameTree, Harness } from "./harness.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const ALL_BYTES = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
const TRICKY = [
  ALL_BYTES,
  'quote " inside',
  'ends with a quote"',
  "looks like perms  (n0)",
  "trailing backslash\\",
  "literal \\... marker",
  "dots . . . and spaces   ",
  "",
];

/** A tree with tricky values, permissions and nesting, built through the real dispatcher. */
function sampleStore(b: Backend): Harness {
  const h = new Harness(b);
  TRICKY.forEach((v, i) => h.write(`/t/v${i}`, v));
  h.write("/local/domain/0/name", "Domain-0");
  h.write("/local/domain/7/device/vif/0/mac", "00:16:3e:00:00:07");
  h.setPerms("/local/domain/7", ["n7", "r0", "b3"]);
  h.write("/deep/a/b/c/d/e/f/g/h/i/j", "bottom");
  h.mkdir("/empty");
  return h;
}

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "dxs-export-" });
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

Deno.test("export: sanitise/unsanitise as xs_lib.c, every byte round-trips", () => {
  assert.equal(sanitiseValue("a\tb\n\r\\\x01\x7f\xff"), "a\\tb\\n\\r\\\\\\001\\x7f\\xff");
  assert.equal(unsanitiseValue(sanitiseValue(ALL_BYTES)), ALL_BYTES);
  assert.equal(unsanitiseValue("bad \\q"), null);
});

Deno.test(
  "export: JSON lines and xenstore-ls text round-trip values, permissions and (JSON) generations",
  withDir((dir) => {
    const h = sampleStore(new FileBackend(`${dir}/f`));
    const nodes = treeNodes(h.root);
    const json = [...toJsonLines({ nodes, gen: h.core.db.generation, domains: [] })].join("\n");
    const fromJson = buildExportedTree(fromJsonLines(json));
    assertSameTree(fromJson.root, h.root, "jsonl");
    assert.equal(fromJson.gen, h.core.db.generation);
    for (const full of [false, true]) {
      const text = [...toLsLines(nodes, full)].join("\n") + "\n";
      const back = buildExportedTree(fromLsText(text)).root;
      const want = new Map([...flatten(h.root)].map(([p, [v, perms]]) => [p, [v, perms]]));
      const got = new Map([...flatten(back)].map(([p, [v, perms]]) => [p, [v, perms]]));
      assert.deepEqual(got, want, full ? "ls -f -p" : "ls -p");
    }
    h.close();
  }),
);

Deno.test("export: inactive permission entries (spec PERM-10) — kept by JSON lines, shown plain by ls, left out over a socket", () => {
  const inactive = Perms.parseStored(["n0", "r5", "w9!"]);
  const root = buildExportedTree({
    nodes: [{ path: "/", value: "", perms: ["n0"] }, {
      path: "/p",
      value: "v",
      perms: inactive.storedStrings(),
    }],
    gen: 3,
    domains: [],
  }).root;
  const nodes = treeNodes(root);
  assert.deepEqual(nodes.find((n) => n.path === "/p")?.perms, ["n0", "r5", "w9!"]);
  // JSON lines: lossless, the mark included.
  const json = [...toJsonLines({ nodes, gen: 3, domains: [] })].join("\n");
  assert.ok(json.includes('"perms":["n0","r5","w9!"]'), json);
  assertSameTree(buildExportedTree(fromJsonLines(json)).root, root, "jsonl keeps inactive entries");
  // xenstore-ls text shows them as GET_PERMS (and xenstore-ls against cxenstored) does: no mark.
  const ls = [...toLsLines(nodes, true)].join("\n");
  assert.ok(ls.endsWith("(n0,r5,w9)"), ls);
  assert.equal(flatten(buildExportedTree(fromLsText(ls + "\n")).root).get("/p")?.[1], "n0\0r5\0w9\0");
  // Into a running daemon: SET_PERMS would decide them afresh, so they are left out, and counted.
  const sent = withoutInactiveEntries(nodes);
  assert.equal(sent.dropped, 1);
  assert.deepEqual(sent.nodes.find((n) => n.path === "/p")?.perms, ["n0", "r5"]);
  assert.equal(sent.nodes.find((n) => n.path === "/"), nodes.find((n) => n.path === "/"), "others untouched");
  // An older export (no mark) imports every entry active.
  const old = buildExportedTree(fromJsonLines('{"path":"/p","value":"v","perms":["n0","w9"]}')).root;
  assert.equal(flatten(old).get("/p")?.[1], "n0\0w9\0");
});

Deno.test("export: xenstore-ls text that cannot be imported faithfully is refused", () => {
  const refused = (text: string, re: RegExp) =>
    assert.throws(() => fromLsText(text), ImportError, (e) => re.test(e.message));
  refused(`a = "${"x".repeat(60)}\\..."  (n0)\n`, /cut short/);
  const line = (path: string, value: string) => [...toLsLines([{ path, value, perms: ["n0"] }])][0];
  refused(`${line("/a", "x")}\n  deep = "y"  (n0)\n`, /indented 2/);
  refused("a:\n", /could not read/);
  refused(line("/a", "x").replace('"x"', '"x" junk'), /unexpected text/);
  refused('a b = "x"\n', /invalid node name/);
  // Without -p: created nodes take their parent's permissions.
  const s = buildExportedTree(fromLsText('a = "1"\n b = "2"\n'));
  assert.deepEqual(flatten(s.root).get("/a/b")?.slice(0, 2), ["2", "n0\0"]);
  // A value that ends in an escaped backslash before "..." is not a cut.
  assert.equal(fromLsText(line("/a", "x\\...")).nodes[1].value, "x\\...");
});

Deno.test("export: JSON lines that would build a bad store are refused", () => {
  const bad = (lines: string[], re: RegExp) =>
    assert.throws(
      () => buildExportedTree(fromJsonLines(lines.join("\n"))),
      ImportError,
      (e) => re.test(e.message),
    );
  bad(['{"path":"/a/b","value":"x","perms":["n0"]}'], /parent missing/);
  bad(['{"path":"/a","value":"\u0100","perms":["n0"]}'], /beyond U\+00FF/);
  bad(['{"path":"/a//b","value":"","perms":["n0"]}'], /invalid path/);
  bad(['{"path":"/a","value":"","perms":["q0"]}'], /bad permission/);
  bad(['{"path":"/a","value":"","perms":["n0"]}', '{"path":"/a","value":"","perms":["n0"]}'], /twice/);
  bad(['{"domain":{"domid":70000,"ringGfn":1,"eventChannel":1}}'], /bad domid/);
  bad(["{not json"], /line 1/);
});

Deno.test(
  "export: migration file → JSON lines → sqlite → xenstore-ls → tdb keeps the tree (CLI)",
  withDir(async (dir) => {
    const h = sampleStore(new FileBackend(`${dir}/f`));
    const root = h.root;
    const domains = [{ domid: 3, ringGfn: 77, eventChannel: 5 }];
    h.backend.persistDomains!(domains);
    h.close();
    const cli = async (args: string[], stdin?: string) => {
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
      return {
        code: o.code,
        out: new TextDecoder().decode(o.stdout),
        err: new TextDecoder().decode(o.stderr),
      };
    };
    const jsonl = await cli(["export", "--backend", `file:${dir}/f`]);
    assert.equal(jsonl.code, 0, jsonl.err);
    const imp = await cli(["import", "--backend", `sqlite:${dir}/s.db`], jsonl.out);
    assert.equal(imp.code, 0, imp.err);
    const sb = new SqliteBackend(`${dir}/s.db`);
    let s = openState(sb);
    assertSameTree(s.db.root, root, "file → sqlite, generations included");
    assert.deepEqual(s.domains, domains);
    sb.close();
    const ls = await cli([
      "export",
      "--backend",
      `sqlite:${dir}/s.db`,
      "--format",
      "ls",
      "--output",
      `${dir}/ls.txt`,
    ]);
    assert.equal(ls.code, 0, ls.err);
    // The last hop goes to tdb where libtdb is installed (Debian: libtdb1), else to a file store.
    const tdb = libtdbAvailable();
    const last = tdb ? `tdb:${dir}/t.tdb` : `file:${dir}/f2`;
    const imp2 = await cli(["import", "--backend", last, `${dir}/ls.txt`]);
    assert.equal(imp2.code, 0, imp2.err);
    const tb = tdb ? new TdbBackend(`${dir}/t.tdb`) : new FileBackend(`${dir}/f2`);
    s = openState(tb);
    const want = new Map([...flatten(root)].map(([p, [v, perms]]) => [p, [v, perms]]));
    assert.deepEqual(new Map([...flatten(s.db.root)].map(([p, [v, perms]]) => [p, [v, perms]])), want);
    tb.close();
    const again = await cli(["import", "--backend", last, `${dir}/ls.txt`]);
    assert.equal(again.code, 1);
    assert.ok(/already holds a store/.test(again.err), again.err);
    const usage = await cli(["export", "--format", "ls"]);
    assert.equal(usage.code, 2);
  }),
);

Deno.test({
  name: "export: our xenstore-ls text equals what Debian's xenstore-ls prints, and imports back",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/xenstore-ls").isFile;
    } catch {
      return false;
    }
  })(),
  fn: () =>
    withDaemon(async (d) => {
      const c = await WireClient.connect(d.socket);
      const short = ["plain", "tab\there", 'q"uote', "back\\slash", "", "\x01\x02"];
      try {
        for (const [i, v] of short.entries()) {
          assert.equal((await c.request(XS.WRITE, `/s/n${i}\0${v}`)).type, XS.WRITE);
        }
        assert.equal((await c.request(XS.WRITE, `/long/v\0${"L".repeat(300)}`)).type, XS.WRITE);
        // Owner dom0: without Xen no other domain exists to own a node; other entries are kept.
        assert.equal((await c.request(XS.SET_PERMS, "/s/n1\0r0\0w9\0b4\0")).type, XS.SET_PERMS);
      } finally {
        c.close();
      }
      const { nodes } = await readHostStore(d.socket);
      // -f never cuts: equal line for line, for every value.
      const full = await runTool("xenstore-ls", ["-f", "-p", "/"], d.socket);
      assert.equal(full.code, 0, full.stderr);
      assert.equal(full.stdout, [...toLsLines(nodes, true)].join("\n") + "\n");
      // Without -f (stdout is a pipe: 80 columns), lines that fit are equal; the long value is cut.
      const ls = await runTool("xenstore-ls", ["-p", "/"], d.socket);
      assert.equal(ls.code, 0, ls.stderr);
      const ours = [...toLsLines(nodes)];
      const theirs = ls.stdout.trimEnd().split("\n");
      assert.equal(theirs.length, ours.length);
      for (let i = 0; i < ours.length; i++) {
        if (ours[i].length <= 80) assert.equal(theirs[i], ours[i]);
        else assert.ok(theirs[i].includes('\\..."'), `line ${i} cut by xenstore-ls: ${theirs[i]}`);
      }
      assert.throws(() => fromLsText(ls.stdout), ImportError, (e) => /cut short/.test(e.message));
      const back = buildExportedTree(fromLsText(full.stdout)).root;
      assert.equal(flatten(back).get("/s/n2")?.[0], 'q"uote');
      assert.equal(flatten(back).get("/s/n1")?.[1], "r0\0w9\0b4\0");
      assert.equal(flatten(back).get("/long/v")?.[0], "L".repeat(300));
    }),
});

Deno.test({
  name: "export: a running cxenstored is read over its socket, and imported into dxenstored over ours",
  ignore: !anchorsAvailable(),
  fn: async () => {
    const ref = await startAnchor("cxenstored");
    let nodes;
    try {
      const c = await WireClient.connect(ref.socket);
      try {
        await c.request(XS.WRITE, "/vm/uuid-1/name\0guest one");
        await c.request(XS.WRITE, `/bin\0${ALL_BYTES}`);
        for (let i = 0; i < 300; i++) await c.request(XS.WRITE, `/big/child-with-a-long-name-${i}\0${i}`);
        await c.request(XS.SET_PERMS, "/vm\0n0\0r0\0");
      } finally {
        c.close();
      }
      ({ nodes } = await readHostStore(ref.socket)); // /big needs DIRECTORY_PART (> 4096 bytes)
    } finally {
      await ref.stop();
    }
    const byPath = new Map(nodes.map((n) => [n.path, n]));
    assert.equal(byPath.get("/bin")?.value, ALL_BYTES);
    assert.deepEqual(byPath.get("/vm")?.perms, ["n0", "r0"]);
    assert.equal(nodes.filter((n) => n.path.startsWith("/big/")).length, 300);
    await withDaemon(async (d) => {
      await writeHostStore(d.socket, nodes);
      const again = new Map((await readHostStore(d.socket)).nodes.map((n) => [n.path, n]));
      for (const n of nodes) assert.deepEqual(again.get(n.path), n, n.path);
    });
  },
});

Deno.test("export: the root's value and permissions come along in JSON lines", () => {
  const s = fromJsonLines('{"path":"/","value":"r","perms":["r0","w5"]}\n');
  const t = buildExportedTree(s);
  assert.equal(t.root.value, "r");
  assert.equal(t.root.perms, Perms.parse(["r0", "w5"]));
});
