// `deno task compile` (compile/compile.ts): the same bundle, permissions and V8 flags as the built
// program's launchers, packed into one executable by `deno compile`. Deno's runtime (denort) cannot be
// downloaded on the development machine, so the executable itself is not run here (docs/operations.md
// has the steps). What is checked: the command the task runs, and what `deno compile` packs for it,
// read back from the output's payload (its metadata JSON: V8 flags, permissions, entry point; and the
// bundle itself), with the full deno binary standing in for denort (DENORT_BIN), which packs the same
// payload.
import assert from "../helpers/assert.ts";
import { compileArgs, denortUrl, denoVersion } from "../../compile/compile.ts";
import { BUNDLE, DENO_RUN_FLAGS, EXECUTABLE } from "../../compile/program.ts";
import { readV8Flags, v8FlagsArgs } from "../../compile/v8_flags.ts";
import { builtProgram, removeBuilt } from "./built.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dec = new TextDecoder();

Deno.test("compile: the task compiles build/dxenstored.js with the program's run flags and compile/v8-flags", async () => {
  const o = await new Deno.Command(`${ROOT}bin/deno`, {
    args: ["task", "--quiet", "compile", "--print"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(o.success, dec.decode(o.stderr));
  const printed = dec.decode(o.stdout).trim().split(" ");
  const want = compileArgs(`${ROOT}${BUNDLE}`, `${ROOT}${EXECUTABLE}`, readV8Flags());
  assert.deepEqual(printed.slice(1), want);
  for (const f of DENO_RUN_FLAGS) assert.ok(want.includes(f), f);
  assert.deepEqual(want.filter((a) => a.startsWith("--v8-flags")), v8FlagsArgs(readV8Flags()));
  assert.equal(
    denortUrl(denoVersion()),
    `https://dl.deno.land/release/v${denoVersion()}/denort-x86_64-unknown-linux-gnu.zip`,
  );
});

/** The metadata JSON and the rest of a `deno compile` payload (section "d3n0l4nd": magic, u64 length, JSON). */
function payload(exe: Uint8Array): { meta: Record<string, unknown>; rest: Uint8Array } {
  const magic = new TextEncoder().encode("d3n0l4ndd3n0l4nd");
  let at = -1;
  outer: for (let i = exe.length - magic.length; i >= 0; i--) {
    for (let j = 0; j < magic.length; j++) if (exe[i + j] !== magic[j]) continue outer;
    at = i;
    break;
  }
  assert.ok(at >= 0, "a deno compile payload");
  const len = Number(new DataView(exe.buffer, exe.byteOffset + at + 16, 8).getBigUint64(0, true));
  const start = at + 24;
  return { meta: JSON.parse(dec.decode(exe.subarray(start, start + len))), rest: exe.subarray(start + len) };
}

Deno.test("compile: deno compile packs the bundle, every permission and the V8 flags", async () => {
  const b = await builtProgram();
  const out = `${b.dir}/exe/dxenstored`;
  const flags = ["--max-semi-space-size=1", "--single-threaded-gc"];
  try {
    const o = await new Deno.Command(b.deno, {
      args: compileArgs(b.program, out, flags),
      cwd: b.dir,
      env: { DENORT_BIN: b.deno, DENO_DIR: b.cache, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(o.success, dec.decode(o.stderr));
    const { meta, rest } = payload(Deno.readFileSync(out));
    const v8 = meta.v8_flags as string[];
    for (const f of flags) assert.ok(v8.includes(f), `${f} in ${JSON.stringify(v8)}`);
    const perms = meta.permissions as Record<string, unknown>;
    for (
      const k of [
        "allow_read",
        "allow_write",
        "allow_ffi",
        "allow_env",
        "allow_run",
        "allow_sys",
        "allow_net",
      ]
    ) {
      assert.deepEqual(perms[k], [], `${k}: everything allowed`);
    }
    assert.equal(meta.entrypoint_key, "dxenstored.js");
    assert.equal(meta.node_modules, null, "no node_modules packed");
    // The bundle is in the payload byte for byte.
    const text = dec.decode(rest);
    assert.ok(
      text.includes(b.text.slice(0, 4000)) && text.includes(b.text.slice(-4000)),
      "the bundle is packed",
    );
  } finally {
    await Deno.remove(`${b.dir}/exe`, { recursive: true }).catch(() => {});
    await removeBuilt();
  }
});
