// DIRECTORY size limit and DIRECTORY_PART paging, through Core.
import assert from "../helpers/assert.ts";
import { call, dom0, err, ok, type TestConn, testCore } from "../helpers/core.ts";
import type { Core } from "../../src/dispatch/core.ts";
import { MsgType as T, PAYLOAD_MAX } from "../../src/protocol/wire.ts";
import { lookup } from "../../src/store/tree.ts";

/** `n` distinct 12-character names, created in a shuffled order. */
function names(n: number): string[] {
  const out = Array.from({ length: n }, (_, i) => `c${String(i * 7919 % 100000).padStart(5, "0")}-abcde`);
  assert.ok(out.every((s) => s.length === 12));
  assert.equal(new Set(out).size, n);
  return out;
}

function populate(core: Core, c: TestConn, dir: string, children: string[]): void {
  for (const name of children) assert.equal(ok(core, c, T.WRITE, `${dir}/${name}\0`), "OK\0");
}

/**
 * Walk DIRECTORY_PART exactly as libxenstore's xs_directory_part() does (tools/libs/store/xs.c): ask
 * for offset 0, 1st part, ...; restart from 0 when a later part reports another generation; stop when
 * the accumulated list is at most one byte or ends with an empty name ("...\0\0").
 */
function directoryPart(
  core: Core,
  c: TestConn,
  path: string,
): { names: string[]; gens: string[]; parts: number } {
  let off = 0;
  let strings = "";
  let gen = "";
  const gens: string[] = [];
  for (let parts = 1; parts < 1000; parts++) {
    const reply = ok(core, c, T.DIRECTORY_PART, `${path}\0${off}\0`);
    assert.ok(reply.length <= PAYLOAD_MAX, `part ${parts} is ${reply.length} bytes`);
    const nul = reply.indexOf("\0");
    assert.ok(nul > 0 && /^[0-9]+$/.test(reply.slice(0, nul)), "reply starts with a decimal generation");
    const g = reply.slice(0, nul);
    gens.push(g);
    if (off !== 0 && g !== gen) {
      off = 0;
      strings = "";
      continue;
    }
    gen = g;
    const body = reply.slice(nul + 1);
    strings += body;
    off += body.length;
    if (off <= 1 || strings[off - 2] === "\0") {
      if (off > 1) strings = strings.slice(0, -1);
      // An empty list is the end marker alone ("\0"): no names. (libxenstore would count one empty name
      // there; it only pages lists DIRECTORY refused as too long, so it never meets an empty one.)
      return {
        names: strings === "" || strings === "\0" ? [] : strings.slice(0, -1).split("\0"),
        gens,
        parts,
      };
    }
    assert.ok(body.endsWith("\0"), "a part holds whole names");
  }
  throw new Error("DIRECTORY_PART did not terminate");
}

Deno.test("DIRECTORY whose reply would exceed 4096 bytes → E2BIG; DIRECTORY_PART still lists it", () => {
  const core = testCore();
  const c = dom0(core);
  const kids = names(400); // 400 × 13 bytes = 5200
  populate(core, c, "/big", kids);
  err(core, c, T.DIRECTORY, "/big\0", "E2BIG");
  assert.deepEqual(directoryPart(core, c, "/big").names, [...kids].sort());
  // Just under the limit: 315 × 13 = 4095 bytes is fine.
  const core2 = testCore();
  const c2 = dom0(core2);
  const fit = names(315);
  populate(core2, c2, "/fit", fit);
  const listing = ok(core2, c2, T.DIRECTORY, "/fit\0");
  assert.equal(listing.length, 4095);
  assert.deepEqual(listing.slice(0, -1).split("\0"), [...fit].sort());
  populate(core2, c2, "/fit", ["x"]); // + "x\0" = 4097
  err(core2, c2, T.DIRECTORY, "/fit\0", "E2BIG");
});

Deno.test("DIRECTORY_PART reassembles 600 children (12-char names), sorted, with the node's generation", () => {
  const core = testCore();
  const c = dom0(core);
  const kids = names(600);
  populate(core, c, "/many", kids);
  const r = directoryPart(core, c, "/many");
  assert.deepEqual(r.names, [...kids].sort());
  assert.ok(r.parts >= 2, `600 × 13 bytes needs several parts, got ${r.parts}`);
  const gen = String(lookup(core.db.root, ["many"])!.gen);
  assert.ok(r.gens.every((g) => g === gen), `every part reports generation ${gen}: ${r.gens}`);
  assert.ok(/^[0-9]+$/.test(gen));

  // The generation changes when the child set changes, not when a child's value or a grandchild does.
  assert.equal(ok(core, c, T.WRITE, `/many/${kids[0]}\0newvalue`), "OK\0");
  assert.equal(ok(core, c, T.WRITE, `/many/${kids[1]}/grandchild\0`), "OK\0");
  assert.equal(directoryPart(core, c, "/many").gens[0], gen);
  assert.equal(ok(core, c, T.WRITE, "/many/zzz-new\0"), "OK\0");
  const after = directoryPart(core, c, "/many");
  assert.notEqual(after.gens[0], gen);
  assert.deepEqual(after.names, [...kids, "zzz-new"].sort());
  assert.equal(ok(core, c, T.RM, "/many/zzz-new\0"), "OK\0");
  const removed = directoryPart(core, c, "/many");
  assert.ok(removed.gens[0] !== after.gens[0] && removed.gens[0] !== gen, "removal bumps it again");
});

Deno.test("DIRECTORY_PART: small and empty directories, bad offsets, missing node", () => {
  const core = testCore();
  const c = dom0(core);
  populate(core, c, "/s", ["b", "a", "c"]);
  const gen = lookup(core.db.root, ["s"])!.gen;
  assert.equal(ok(core, c, T.DIRECTORY_PART, "/s\x000\0"), `${gen}\0a\0b\0c\0\0`);
  assert.equal(ok(core, c, T.DIRECTORY_PART, "/s\x002\0"), `${gen}\0b\0c\0\0`, "offset counts bytes");
  assert.deepEqual(directoryPart(core, c, "/s/a"), {
    names: [],
    gens: [String(lookup(core.db.root, ["s", "a"])!.gen)],
    parts: 1,
  });
  // No children: the end marker alone, as for an offset past the end (docs/spec/operations.md NODE-8).
  const leafGen = lookup(core.db.root, ["s", "a"])!.gen;
  assert.equal(ok(core, c, T.DIRECTORY_PART, "/s/a\x000\0"), `${leafGen}\0\0`);
  err(core, c, T.DIRECTORY_PART, "/missing\x000\0", "ENOENT");
  err(core, c, T.DIRECTORY_PART, "/s\0", "EINVAL");
  err(core, c, T.DIRECTORY_PART, "/s\x00x\0", "EINVAL");
  // A normal reply echoes the type.
  assert.equal(call(core, c, T.DIRECTORY_PART, "/s\x000\0").type, T.DIRECTORY_PART);
});

// cxenstored (xenstored_core.c send_directory_part): "Offset behind list: just return a list with an
// empty string" — i.e. "<gen>\0\0". libxenstore's xs_directory_part relies
// on it: it sends the next offset, THEN compares the generation and restarts from 0 if it changed. If the
// directory shrank in between, the old offset may lie past the new end; an error there makes
// xs_directory() fail instead of restarting.
Deno.test("DIRECTORY_PART at or past the end of the list answers an empty list (cxenstored), not EINVAL", () => {
  const core = testCore();
  const c = dom0(core);
  populate(core, c, "/s", ["abc"]);
  const gen = lookup(core.db.root, ["s"])!.gen;
  for (const off of [4, 5, 100000, 4294967295]) {
    const r = call(core, c, T.DIRECTORY_PART, `/s\0${off}\0`);
    assert.deepEqual([r.type, r.payload], [T.DIRECTORY_PART, `${gen}\0\0`], `offset ${off}`);
  }
});

Deno.test("DIRECTORY_PART: a directory shrinking between parts makes the client restart, not fail", () => {
  const core = testCore();
  const c = dom0(core);
  const kids = names(600);
  populate(core, c, "/shrink", kids);
  const first = ok(core, c, T.DIRECTORY_PART, "/shrink\x000\0");
  const gen = first.slice(0, first.indexOf("\0"));
  const offset = first.length - gen.length - 1;
  assert.ok(offset > 1000, "the first part is a large one");
  for (const k of kids.slice(10)) assert.equal(ok(core, c, T.RM, `/shrink/${k}\0`), "OK\0");
  // libxenstore now asks for `offset` (past the new end) and expects a reply whose generation differs.
  const r = call(core, c, T.DIRECTORY_PART, `/shrink\0${offset}\0`);
  assert.equal(r.type, T.DIRECTORY_PART, `expected a reply, got ERROR ${JSON.stringify(r.payload)}`);
  assert.notEqual(
    r.payload.slice(0, r.payload.indexOf("\0")),
    gen,
    "the new generation tells the client to restart",
  );
  assert.deepEqual(directoryPart(core, c, "/shrink").names, [...kids.slice(0, 10)].sort());
});
