// DX_POLICY (src/live_update/dx_policy.ts, src/policy/state.ts): the policy plugins' state through a
// stream and into a new program's chain. In process: the Chinese Wall's history of a guest survives
// (a read the wall must refuse is refused by the new chain, and allowed by a chain that did not take
// the state); a chain that differs, a plugin that refuses its state (state_load) and variables over
// the budget are refused with nothing applied; corrupt and oversized records are refused whole; a
// state_save that fails or answers more than MAX_SAVED_STATE refuses the switch in the old program.
import fc from "fast-check";
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok, testCore } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { PolicyManager } from "../../src/policy/manager.ts";
import { MAX_SAVED_STATE, type PolicyState, PolicyStateError } from "../../src/policy/state.ts";
import { policyRecord, readPolicyRecord } from "../../src/live_update/dx_policy.ts";
import { readDxRecords } from "../../src/live_update/dx_records.ts";
import { DX_POLICY, DX_QUOTAS } from "../../src/migration/format.ts";
import { readStream } from "../../src/migration/reader.ts";
import { writeStream } from "../../src/migration/writer.ts";
import type { OpaqueRecord } from "../../src/migration/records.ts";
import type { HostState } from "../../src/migration/host_state.ts";
import { brokenPlugin } from "../policy/broken_plugins.ts";

/** The error's message says `s`. */
const has = (s: string) => (e: Error) => e.message.includes(s);

const SETS = "banks:a=/cw/bank-a banks:b=/cw/bank-b oil:x=/cw/oil-x";

async function manager(dir: string, name: string, text: string): Promise<PolicyManager> {
  const conf = `${dir}/${name}.conf`;
  await Deno.writeTextFile(conf, text);
  return await PolicyManager.start({ configFile: conf });
}

const wall = (sets = SETS, extra = "") =>
  `policy = legacy, chinese-wall\npolicy-config.chinese-wall.conflict-sets = ${sets}\n${extra}`;

/** A core over `m` with /cw readable by domain 5; returns a read as domain 5 would make it. */
function coreOver(m: PolicyManager) {
  const core = testCore({ policy: m });
  const d0 = dom0(core);
  ok(core, d0, T.WRITE, "/cw\0");
  ok(core, d0, T.SET_PERMS, "/cw\0n0\0r5\0");
  for (const p of ["/cw/bank-a/k", "/cw/bank-b/k", "/cw/oil-x/k"]) ok(core, d0, T.WRITE, `${p}\0v`);
  return { core, g5: guest(core, 5) };
}

/** The state as it goes: record → stream → reader → record reader. */
function through(s: PolicyState): PolicyState {
  const back = readStream(writeStream({ version: 1, records: [policyRecord(s)] })).records[0];
  assert.ok(back.type === "opaque" && back.code === DX_POLICY);
  return readPolicyRecord(back as OpaqueRecord);
}

Deno.test("DX_POLICY: a guest's Chinese Wall history survives into a new chain", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-dxp-" });
  try {
    const old = await manager(dir, "old", wall());
    const a = coreOver(old);
    ok(a.core, a.g5, T.READ, "/cw/bank-a/k\0");
    err(a.core, a.g5, T.READ, "/cw/bank-b/k\0", "EACCES");
    const saved = old.saveState();
    assert.deepEqual(saved.plugins.map((p) => p.name), ["legacy", "chinese-wall"]);
    assert.ok(saved.plugins[1].saved !== null && saved.plugins[0].saved === null, "only the wall saves");
    const state = through(saved);
    // The new program's chain takes it: the wall stands for domain 5.
    const next = await manager(dir, "new", wall());
    next.loadState(state);
    const b = coreOver(next);
    err(b.core, b.g5, T.READ, "/cw/bank-b/k\0", "EACCES");
    ok(b.core, b.g5, T.READ, "/cw/bank-a/k\0");
    ok(b.core, b.g5, T.READ, "/cw/oil-x/k\0");
    // Without the state the same read is allowed: what the carrying prevents.
    const fresh = coreOver(await manager(dir, "fresh", wall()));
    ok(fresh.core, fresh.g5, T.READ, "/cw/bank-b/k\0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DX_POLICY: a different chain, a refusing plugin or an oversized state is refused, nothing applied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-dxp-" });
  try {
    const old = await manager(dir, "old", wall());
    const a = coreOver(old);
    ok(a.core, a.g5, T.READ, "/cw/bank-a/k\0");
    const state = through(old.saveState());
    const refused = async (text: string, why: RegExp) => {
      const m = await manager(dir, "x", text);
      const e = assert.throws(() => m.loadState(state), PolicyStateError, undefined, text);
      assert.ok(why.test(e.message), e.message);
      // Nothing of it applied: no variables, and domain 5 is free (no history).
      for (const p of m.current.plugins) assert.equal(p.vars.vars.size, 0, p.name);
      const c = coreOver(m);
      // (With a 4-byte budget no history can be written: every wall question fails closed.)
      if (m.current.plugins.some((p) => p.name === "chinese-wall") && !text.includes("var-bytes")) {
        ok(c.core, c.g5, T.READ, "/cw/bank-b/k\0");
      }
    };
    await refused(
      "policy = legacy\n",
      /chain differs: the previous program ran legacy,chinese-wall, this one legacy/,
    );
    await refused(
      "policy = chinese-wall, legacy\npolicy-config.chinese-wall.conflict-sets = " + SETS + "\n",
      /chain differs/,
    );
    // The class banks:a of the history is not configured any more: state_load refuses.
    await refused(
      wall("banks:b=/cw/bank-b oil:x=/cw/oil-x"),
      /chinese-wall cannot take its state: .*names the class banks:a, which conflict-sets no longer has/,
    );
    // A variable budget the history does not fit in.
    await refused(wall(SETS, "policy-var-bytes = 4\n"), /larger than policy-var-bytes \(4\)/);
    // A state saved by a plugin of another format.
    const alien: PolicyState = {
      plugins: state.plugins.map((p) =>
        p.saved === null ? p : { ...p, saved: new TextEncoder().encode("chinese-wall history 9\n") }
      ),
    };
    const m = await manager(dir, "alien", wall());
    assert.throws(
      () => m.loadState(alien),
      PolicyStateError,
      has("not in the format chinese-wall history 1"),
    );
    // A plugin that saved state, and a successor without state_load.
    const legacyWithState: PolicyState = {
      plugins: [{ ...state.plugins[0], saved: new Uint8Array([1]) }, state.plugins[1]],
    };
    assert.throws(() => m.loadState(legacyWithState), PolicyStateError, has("has no state_load export"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DX_POLICY: corrupt, truncated and oversized records are refused whole", () => {
  const enc = new TextEncoder();
  const state: PolicyState = {
    plugins: [
      { name: "legacy", vars: new Map(), saved: null },
      {
        name: "chinese-wall",
        vars: new Map([["d5", enc.encode("banks:a\n")], ["d7", enc.encode("oil:x\n")]]),
        saved: enc.encode("chinese-wall history 1\nbanks:a\n"),
      },
    ],
  };
  const body = policyRecord(state).body;
  assert.deepEqual(readPolicyRecord({ type: "opaque", code: DX_POLICY, body }), state);
  const rec = (b: Uint8Array): OpaqueRecord => ({ type: "opaque", code: DX_POLICY, body: b });
  // Every truncation (padding aside) is refused.
  const used = body.length - (body.length - body.findLastIndex((x) => x !== 0) - 1);
  for (let n = 0; n < used; n++) {
    assert.throws(() => readPolicyRecord(rec(body.slice(0, n))), Error, undefined, `${n}`);
  }
  const at = (b: Uint8Array, off: number, v: number) => {
    const c = b.slice();
    new DataView(c.buffer).setUint32(off, v, true);
    return c;
  };
  assert.throws(() => readPolicyRecord(rec(at(body, 0, 2))), Error, has("format 2"));
  assert.throws(() => readPolicyRecord(rec(at(body, 4, 1000))), Error, has("1000 plugins"));
  assert.throws(() => readPolicyRecord(rec(at(body, 8, 0xffffffff))), Error, has("runs past the record"));
  const extra = new Uint8Array(body.length + 8);
  extra.set(body);
  extra[body.length] = 1;
  assert.throws(() => readPolicyRecord(rec(extra)), Error, has("after the last plugin"));
  // A saved state larger than a plugin may save.
  const big: PolicyState = {
    plugins: [{ name: "chinese-wall", vars: new Map(), saved: new Uint8Array(MAX_SAVED_STATE + 1) }],
  };
  assert.throws(() => readPolicyRecord(policyRecord(big)), Error, has("saved state of 262145 bytes"));
  // The writer refuses a state larger than a stream record may be, clearly.
  assert.throws(() => policyRecord(state, 64), PolicyStateError, has("more than 64 bytes"));
  // Any damage is refused or read whole; never a crash of another kind.
  fc.assert(fc.property(fc.nat(body.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
    const c = body.slice();
    c[i] ^= x;
    try {
      const s = readPolicyRecord(rec(c));
      assert.ok(s.plugins.length <= 64);
    } catch (e) {
      assert.ok(e instanceof Error && e.message.startsWith("DX_POLICY"), String(e));
    }
  }));
});

Deno.test("dx records: a stream with a bad DX_POLICY is refused whole, with its good records", () => {
  const quotas: OpaqueRecord = {
    type: "opaque",
    code: DX_QUOTAS,
    body: new TextEncoder().encode('{"global":{"nodes":5},"domains":{}}    '),
  };
  const host = (opaque: OpaqueRecord[]) => ({ opaque } as unknown as HostState);
  assert.equal(readDxRecords(host([quotas])).quotas?.global.nodes, 5);
  const bad: OpaqueRecord = { type: "opaque", code: DX_POLICY, body: new Uint8Array(8).fill(7) };
  assert.throws(() => readDxRecords(host([quotas, bad])), Error, has("DX_POLICY"));
  assert.throws(() => readDxRecords(host([quotas, quotas])), Error, has("appears twice"));
});

Deno.test("DX_POLICY: a state_save that fails or answers more than 256 KiB refuses the switch, clearly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-dxp-" });
  try {
    const plugin = async (name: string, stateSave: "trap" | number) => {
      await Deno.writeFile(`${dir}/${name}.wasm`, brokenPlugin("allow", { stateSave }));
      return await manager(
        dir,
        name,
        `policy = legacy,${name}\npolicy-plugin.${name} = ${dir}/${name}.wasm\n`,
      );
    };
    const big = await plugin("big", MAX_SAVED_STATE + 8);
    assert.throws(
      () => big.saveState(),
      PolicyStateError,
      has(`policy plugin big: state_save failed (output): ${MAX_SAVED_STATE + 8} bytes of output, at most`),
    );
    const trap = await plugin("trapper", "trap");
    assert.throws(
      () => trap.saveState(),
      PolicyStateError,
      has("policy plugin trapper: state_save failed (trap)"),
    );
    // Exactly the limit is fine, and a successor that cannot load it is refused.
    const full = await plugin("full", MAX_SAVED_STATE);
    const s = through(full.saveState());
    assert.equal(s.plugins[1].saved?.length, MAX_SAVED_STATE);
    const again = await plugin("full", MAX_SAVED_STATE);
    assert.throws(
      () => again.loadState(s),
      PolicyStateError,
      has("policy plugin full cannot take its state"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
