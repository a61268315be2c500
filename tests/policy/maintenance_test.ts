// The C plugin (policies/c/maintenance.c, built with clang-14/lld): read-only maintenance mode, in a
// chain after `legacy`, through the core; and its acceptance by the Extism SDK.
import assert from "../helpers/assert.ts";
import { dom0, err, guest, ok } from "../helpers/core.ts";
import { MsgType as T } from "../../src/protocol/wire.ts";
import { coreWith, specOf } from "./helpers.ts";
import { loadPlugins } from "../../src/policy/loader.ts";
import { sdkCheck } from "../../src/policy/sdk_check.ts";
import { PluginLoadError } from "../../src/policy/plugin.ts";

function setup(writers?: string) {
  const core = coreWith(["legacy", "maintenance"], writers === undefined ? {} : { maintenance: { writers } });
  const d0 = dom0(core);
  ok(core, d0, T.WRITE, "/local/domain/5/data\0v");
  ok(core, d0, T.SET_PERMS, "/local/domain/5\0n5\0");
  ok(core, d0, T.SET_PERMS, "/local/domain/5/data\0n5\0");
  return { core, d0, g5: guest(core, 5) };
}

Deno.test("maintenance (C): guests read but every change is EROFS; dom0 still writes", () => {
  const { core, d0, g5 } = setup();
  assert.equal(ok(core, g5, T.READ, "/local/domain/5/data\0"), "v");
  assert.equal(ok(core, g5, T.DIRECTORY, "/local/domain/5\0"), "data\0");
  err(core, g5, T.WRITE, "/local/domain/5/data\0w", "EROFS");
  err(core, g5, T.MKDIR, "/local/domain/5/new\0", "EROFS");
  err(core, g5, T.RM, "/local/domain/5/data\0", "EROFS");
  err(core, g5, T.SET_PERMS, "/local/domain/5/data\0n5\0r0\0", "EROFS");
  ok(core, d0, T.WRITE, "/local/domain/5/data\0w");
  assert.equal(ok(core, g5, T.READ, "/local/domain/5/data\0"), "w");
});

Deno.test("maintenance (C): legacy still decides first (EACCES before EROFS)", () => {
  const { core, d0, g5 } = setup();
  ok(core, d0, T.WRITE, "/secret\0s");
  err(core, g5, T.WRITE, "/secret\0x", "EACCES");
  err(core, g5, T.READ, "/secret\0", "EACCES");
});

Deno.test("maintenance (C): config `writers` lets listed domains write", () => {
  const { core, g5 } = setup("0, 5");
  ok(core, g5, T.WRITE, "/local/domain/5/data\0w");
  ok(core, dom0(core), T.WRITE, "/local/domain/6\0");
  ok(core, dom0(core), T.SET_PERMS, "/local/domain/6\0n6\0");
  const g6 = guest(core, 6);
  err(core, g6, T.WRITE, "/local/domain/6/x\0w", "EROFS");
});

Deno.test("maintenance (C): a bad `writers` value refuses the plugin with its own message", () => {
  assert.throws(
    () => coreWith(["maintenance"], { maintenance: { writers: "0,x" } }),
    PluginLoadError,
    (e) => /maintenance: instantiation|writers: expected domids like/.test(e.message),
  );
});

Deno.test("maintenance (C) and legacy (AssemblyScript) pass the Extism SDK check", async () => {
  for (const p of loadPlugins(specOf(["legacy", "maintenance"], { maintenance: { writers: "0,7" } }))) {
    await sdkCheck(p);
  }
});
