// The sandbox: deliberately broken plugins. A call that traps, runs out of fuel (time), grabs memory,
// overflows the stack or answers nonsense is a deny (fail closed), counted by kind, and the instance
// is rebuilt; modules a plugin may not be are refused at load with a clear error; the daemon keeps
// serving through all of it.
import assert from "../helpers/assert.ts";
import { dom0, err, ok, testCore } from "../helpers/core.ts";
import { startDaemon } from "../helpers/daemon.ts";
import { errnoOf, WireClient, XS } from "../helpers/wire.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { PluginChain } from "../../src/policy/chain.ts";
import {
  compilePlugin,
  DEFAULT_LIMITS,
  type FailureKind,
  PluginInstance,
  PluginLoadError,
  VarStore,
} from "../../src/policy/plugin.ts";
import { Perms } from "../../src/store/perms.ts";
import { brokenPlugin, type Misbehaviour } from "./broken_plugins.ts";
import { chainOf } from "./helpers.ts";

const LIMITS = { ...DEFAULT_LIMITS, fuelPerCall: 200_000 };

function instance(wasm: Uint8Array, limits = LIMITS): PluginInstance {
  return new PluginInstance(compilePlugin("broken", wasm, limits), new Map(), new VarStore(1 << 16));
}

const dom0Subject = { domid: 0, target: null, privileged: true };
const cases: Array<[Misbehaviour, FailureKind]> = [
  ["trap", "trap"],
  ["spin", "time"],
  ["grab", "memory"],
  ["recurse", "stack"],
  ["no-output", "output"],
  ["rc", "error"],
];

for (const [how, kind] of cases) {
  Deno.test(`sandbox: a plugin that does "${how}" is a deny (EACCES), counted as ${kind}`, () => {
    const p = instance(brokenPlugin(how));
    const chain = new PluginChain([p]);
    for (let i = 1; i <= 3; i++) {
      assert.equal(chain.checkNode(dom0Subject, "read", "/x", Perms.of(0, 0)), "EACCES");
      assert.equal(p.stats.failures, i);
      assert.equal(p.stats.byKind[kind], i, JSON.stringify(p.stats));
    }
    assert.equal(p.stats.rebuilds, 2, "rebuilt before each call after a failure");
    assert.equal(chain.stats.failures, 3);
    // Failures are never cached.
    assert.equal(chain.stats.cacheHits, 0);
  });
}

Deno.test("sandbox: memory is capped, a grow beyond the cap just fails (-1)", () => {
  const p = instance(brokenPlugin("grow-once"));
  assert.equal(new PluginChain([p]).checkNode(dom0Subject, "read", "/x", Perms.of(0, 0)), undefined);
  assert.equal(p.stats.failures, 0);
  const mem = (p as unknown as { exports: { memory: WebAssembly.Memory } }).exports.memory;
  assert.ok(mem.buffer.byteLength <= LIMITS.memoryPages * 65536, `memory ${mem.buffer.byteLength}`);
});

Deno.test("sandbox: a spinning plugin stops within its fuel budget (more fuel, more work, still stops)", () => {
  for (const fuelPerCall of [1000, 100_000]) {
    const p = instance(brokenPlugin("spin"), { ...LIMITS, fuelPerCall });
    assert.equal(new PluginChain([p]).checkNode(dom0Subject, "read", "/x", Perms.of(0, 0)), "EACCES");
    assert.equal(p.stats.byKind.time, 1);
  }
});

Deno.test("sandbox: modules a plugin may not be are refused at load, saying why", () => {
  const refused = (wasm: Uint8Array, why: RegExp) =>
    assert.throws(() => instance(wasm), PluginLoadError, (e) => why.test(e.message), why.source);
  refused(brokenPlugin("allow", { extraImports: [["wasi_snapshot_preview1", "fd_write"]] }), /no WASI/);
  refused(brokenPlugin("allow", { extraImports: [["extism:host/env", "http_request"]] }), /no network/);
  refused(brokenPlugin("allow", { extraImports: [["env", "abort"]] }), /may not use/);
  refused(brokenPlugin("allow", { memoryMin: 100 }), /100 memory pages at start/);
  refused(brokenPlugin("allow", { rawDecide: [0xfd, 0x0c] }), /unsupported instruction 0xfd/);
  refused(new Uint8Array([0, 97, 115, 109, 2, 0, 0, 0]), /not a WebAssembly 1.0 module/);
  refused(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 200]), /unexpected end/);
  // Limits that contradict each other (max below min) make an invalid module.
  assert.throws(() => instance(brokenPlugin("allow", { memoryMin: 2, memoryMax: 1 })), PluginLoadError);
});

Deno.test("sandbox: through the core, a broken plugin after legacy refuses requests; others still run", () => {
  const wasm = brokenPlugin("trap", { onlyMessageType: T.RM });
  const dir = Deno.makeTempDirSync({ prefix: "dxs-sandbox-" });
  try {
    Deno.writeFileSync(`${dir}/trap.wasm`, wasm);
    const core = testCore({ policy: chainOf(["legacy", "trap"], {}, { trap: `${dir}/trap.wasm` }) });
    const d0 = dom0(core);
    ok(core, d0, T.WRITE, "/a\0v");
    err(core, d0, T.RM, "/a\0", "EACCES");
    assert.equal(ok(core, d0, T.READ, "/a\0"), "v");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("sandbox end to end: trap, spin and memory grab plugins never take the daemon down", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-sandbox-" });
  try {
    // Each misbehaves only on its own message type, so the load-time probes pass.
    await Deno.writeFile(`${dir}/trap.wasm`, brokenPlugin("trap", { onlyMessageType: XS.RM }));
    await Deno.writeFile(`${dir}/spin.wasm`, brokenPlugin("spin", { onlyMessageType: XS.MKDIR }));
    await Deno.writeFile(`${dir}/grab.wasm`, brokenPlugin("grab", { onlyMessageType: XS.DIRECTORY }));
    await Deno.writeTextFile(
      `${dir}/policy.conf`,
      ["trap", "spin", "grab"].map((n) => `policy-plugin.${n} = ${dir}/${n}.wasm`).join("\n") +
        "\npolicy = legacy,trap,spin,grab\n",
    );
    await using d = await startDaemon({ args: ["--policy-config", `${dir}/policy.conf`] });
    const c = await WireClient.connect(d.socket);
    try {
      assert.equal(errnoOf(await c.request(XS.WRITE, "/s/a\0v")), null);
      for (let i = 0; i < 3; i++) {
        assert.equal(errnoOf(await c.request(XS.RM, "/s/a\0")), "EACCES");
        assert.equal(errnoOf(await c.request(XS.MKDIR, "/s/b\0")), "EACCES");
        assert.equal(errnoOf(await c.request(XS.DIRECTORY, "/s\0")), "EACCES");
        assert.equal((await c.request(XS.READ, "/s/a\0")).payload, "v");
      }
      assert.ok(await d.alive());
    } finally {
      c.close();
    }
    assert.ok(/policy plugin spin: decision failed \(time\)/.test(d.stderr), d.stderr);
    assert.ok(/policy plugin grab: decision failed \(memory\)/.test(d.stderr), d.stderr);
    assert.ok(/policy plugin trap: decision failed \(trap\)/.test(d.stderr), d.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sandbox: a plugin that fails its load-time probes cannot become the daemon's policy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-sandbox-" });
  try {
    await Deno.writeFile(`${dir}/spin.wasm`, brokenPlugin("spin"));
    await Deno.writeTextFile(
      `${dir}/policy.conf`,
      `policy = legacy,spin\npolicy-plugin.spin = ${dir}/spin.wasm\n`,
    );
    const { PolicyManager } = await import("../../src/policy/manager.ts");
    await assert.rejects(
      PolicyManager.start({ configFile: `${dir}/policy.conf` }),
      PluginLoadError,
      (e) => /spin: Extism SDK check: probe of kind 1 failed: fuel/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
