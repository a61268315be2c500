// DIRECTORY size limit and DIRECTORY_PART paging, through Core.
import assert from "../helpers/assert.ts";
import { call, dom0, err, newCore, ok, type TestClient } from "../helpers/core.ts";
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

function populate(core: Core, c: TestClient, dir: string, children: string[]): void {
  for (const name of children) assert.equal(ok(core, c, T.WRITE, `${dir}/${name}\0`), "OK\0");
}

/** Walk DIRECTORY_PART as libxenstore does; returns the names and every generation seen. */
function directoryPart(
  core: Core,
  c: TestClient,
  path: string,
): { names: string[]; gens: string[]; parts: number } {
  let offset = 0;
  let acc = "";
  const gens: string[] = [];
  for (let parts = 1; parts < 1000; parts++) {
    const reply = ok(core, c, T.DIRECTORY_PART, `${path}\0${offset}\0`);
    assert.ok(reply.length <= PAYLOAD_MAX, `part ${parts} is ${reply.length} bytes`);
    const nul = reply.indexOf("\0");
    assert.ok(nul > 0, "reply starts with the generation");
    gens.push(reply.slice(0, nul));
    const body = reply.slice(nul + 1);
    if (body === "" || body.endsWith("\0\0")) {
      // Final part: an extra NUL ends the list (an empty directory's reply is the generation alone).
      acc += body.slice(0, -1);
      return { names: acc === "" ? [] : acc.slice(0, -1).split("\0"), gens, parts };
    }
    assert.ok(body.endsWith("\0"), "a part holds whole names");
    acc += body;
    offset += body.length;
  }
  throw new Error("DIRECTORY_PART did not terminate");
}

Deno.test("DIRECTORY whose reply would exceed 4096 bytes → E2BIG; DIRECTORY_PART still lists it", () => {
  const core = newCore();
  const c = dom0(core);
  const kids = names(400); // 400 × 13 bytes = 5200
  populate(core, c, "/big", kids);
  err(core, c, T.DIRECTORY, "/big\0", "E2BIG");
  assert.deepEqual(directoryPart(core, c, "/big").names, [...kids].sort());
  // Just under the limit: 315 × 13 = 4095 bytes is fine.
  const core2 = newCore();
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
  const core = newCore();
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
  const core = newCore();
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
  err(core, c, T.DIRECTORY_PART, "/s\x00100000\0", "EINVAL");
  err(core, c, T.DIRECTORY_PART, "/missing\x000\0", "ENOENT");
  err(core, c, T.DIRECTORY_PART, "/s\0", "EINVAL");
  err(core, c, T.DIRECTORY_PART, "/s\x00x\0", "EINVAL");
  // A normal reply echoes the type.
  assert.equal(call(core, c, T.DIRECTORY_PART, "/s\x000\0").type, T.DIRECTORY_PART);
});
