// Chain lists, the policy config file, resolving plugin files, and loading every built-in plugin
// through the same path as the daemon (meter, compile, instantiate, policy_info, Extism SDK check).
import assert from "../helpers/assert.ts";
import {
  BUILTIN_PLUGINS,
  loadPlugins,
  parseChainList,
  parsePolicyFile,
  resolveSpec,
} from "../../src/policy/loader.ts";
import { sdkCheck } from "../../src/policy/sdk_check.ts";
import { PluginLoadError } from "../../src/policy/plugin.ts";
import { chainOf, specOf } from "./helpers.ts";

Deno.test("parseChainList: names in order; refuses empty, bad, duplicate and overlong lists", () => {
  assert.deepEqual(parseChainList("legacy, chinese-wall"), ["legacy", "chinese-wall"]);
  assert.equal(typeof parseChainList(""), "string");
  assert.equal(typeof parseChainList("legacy,../x"), "string");
  assert.equal(typeof parseChainList("legacy,legacy"), "string");
  assert.equal(typeof parseChainList(Array.from({ length: 17 }, (_, i) => `p${i}`).join(",")), "string");
});

Deno.test("parsePolicyFile: policy keys; other keys ignored; errors name the line", () => {
  const s = parsePolicyFile(
    "# comment\nquota-maxentity = 1000\npolicy = legacy, maintenance\n" +
      "policy-config.maintenance.writers = 0,5\npolicy-plugin.mine = /x/mine.wasm\npolicy-fuel = 5000\n" +
      "policy-memory-pages = 8\nsome-other-key\n",
  );
  assert.ok(typeof s !== "string", String(s));
  assert.deepEqual(s.chain, ["legacy", "maintenance"]);
  assert.equal(s.config.get("maintenance")?.get("writers"), "0,5");
  assert.equal(s.files.get("mine"), "/x/mine.wasm");
  assert.equal(s.limits.fuelPerCall, 5000);
  assert.equal(s.limits.memoryPages, 8);
  assert.equal(parsePolicyFile("\n\npolicy-fuel = -1\n"), "line 3: policy-fuel needs a positive integer");
  assert.equal(parsePolicyFile("policy-config.x = 1"), "line 1: expected policy-config.NAME.KEY");
  assert.equal(parsePolicyFile("policy-bogus = 1"), 'line 1: unknown policy key "policy-bogus"');
  assert.equal(parsePolicyFile("policy"), "line 1: expected key = value");
});

Deno.test("resolveSpec: --policy overrides the file; default chain is legacy; unreadable file errors", () => {
  assert.deepEqual(resolveSpec({}).chain, ["legacy"]);
  const dir = Deno.makeTempDirSync({ prefix: "dxs-loader-" });
  try {
    Deno.writeTextFileSync(`${dir}/p.conf`, "policy = legacy,strict-protocol\n");
    assert.deepEqual(resolveSpec({ configFile: `${dir}/p.conf` }).chain, ["legacy", "strict-protocol"]);
    assert.deepEqual(resolveSpec({ configFile: `${dir}/p.conf`, chain: ["legacy"] }).chain, ["legacy"]);
    assert.throws(
      () => resolveSpec({ configFile: `${dir}/missing.conf` }),
      Error,
      (e) => /missing\.conf/.test(e.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("unknown or unreadable plugins are refused with a clear error", () => {
  assert.throws(
    () => loadPlugins(specOf(["nope"])),
    PluginLoadError,
    (e) => /nope: unknown policy/.test(e.message),
  );
  assert.throws(
    () => loadPlugins(specOf(["mine"], {}, { mine: "/nonexistent/mine.wasm" })),
    PluginLoadError,
    (e) => /cannot read \/nonexistent\/mine.wasm/.test(e.message),
  );
});

Deno.test("every built-in plugin loads, answers policy_info, and passes the Extism SDK check", async () => {
  const config = { "chinese-wall": { "conflict-sets": "s:a=/a s:b=/b" }, maintenance: { writers: "0" } };
  const chain = chainOf([...BUILTIN_PLUGINS], config);
  assert.deepEqual(chain.plugins.map((p) => p.name), [...BUILTIN_PLUGINS]);
  for (const p of chain.plugins) assert.ok(p.interests !== 0, `${p.name} answers some question kind`);
  for (const p of loadPlugins(specOf([...BUILTIN_PLUGINS], config))) await sdkCheck(p);
});
