// compile/v8-flags, the V8 flags that are part of the program: the file's rules (compile/v8_flags.ts),
// the shell reading of the same rules (compile/v8-flags.sh, run by bin/dxenstored) agreeing with it,
// and the flags reaching every entry point's command line (bin/dxenstored here; the .deb's launcher in
// tests/ops/package_test.ts, `deno task compile` in compile_test.ts).
import assert from "../helpers/assert.ts";
import { parseV8Flags, readV8Flags, v8FlagsArgs, V8FlagsError } from "../../compile/v8_flags.ts";
import { alive, cmdlineOf, connectable, stopPid, waitFor } from "../ops/helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SH = `${ROOT}compile/v8-flags.sh`;
const dec = new TextDecoder();

/** compile/v8-flags.sh on `text`: its stdout, or null if it refused the file. */
async function shellFlags(text: string): Promise<string | null> {
  const f = await Deno.makeTempFile({ prefix: "v8flags-" });
  try {
    await Deno.writeTextFile(f, text);
    const o = await new Deno.Command(SH, { args: [f], stdout: "piped", stderr: "piped" }).output();
    return o.success ? dec.decode(o.stdout).trim() : null;
  } finally {
    await Deno.remove(f);
  }
}

const SAMPLES: Array<[string, string[] | "error"]> = [
  ["", []],
  ["# only a comment\n\n   \n", []],
  ["--max-semi-space-size=1\n", ["--max-semi-space-size=1"]],
  ["  --a=1   # why\n#--b\n--single-threaded-gc", ["--a=1", "--single-threaded-gc"]],
  ["--no-opt\r\n--x=2\r\n", ["--no-opt", "--x=2"]],
  ["--a --b\n", "error"], // two flags on one line
  ["--a=1,--b=2\n", "error"], // a comma would split it in Deno's list
  ["max-semi-space-size=1\n", "error"], // not a flag
];

Deno.test("v8 flags: one per line, '#' comments, blank lines; anything else is refused", () => {
  for (const [text, want] of SAMPLES) {
    if (want === "error") assert.throws(() => parseV8Flags(text), V8FlagsError);
    else assert.deepEqual(parseV8Flags(text), want, JSON.stringify(text));
  }
  assert.deepEqual(v8FlagsArgs([]), []);
  assert.deepEqual(v8FlagsArgs(["--a", "--b=1"]), ["--v8-flags=--a,--b=1"]);
});

Deno.test("v8 flags: compile/v8-flags.sh (bin/dxenstored's reading) agrees with compile/v8_flags.ts", async () => {
  for (const [text, want] of SAMPLES) {
    const sh = await shellFlags(text);
    if (want === "error") assert.equal(sh, null, `the shell refuses ${JSON.stringify(text)}`);
    else assert.equal(sh, v8FlagsArgs(want).join(""), JSON.stringify(text));
  }
  const file = Deno.readTextFileSync(`${ROOT}compile/v8-flags`);
  assert.equal(await shellFlags(file), v8FlagsArgs(readV8Flags()).join(""), "the committed file");
});

Deno.test("v8 flags: bin/dxenstored runs the daemon with compile/v8-flags' flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dxs-v8-" });
  const child = new Deno.Command(`${ROOT}bin/dxenstored`, {
    args: ["--socket", `${dir}/socket`, "--backend", "memory"],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor("the daemon to serve", () => connectable(`${dir}/socket`));
    const args = cmdlineOf(child.pid).split(" ");
    const want = v8FlagsArgs(readV8Flags());
    assert.deepEqual(args.filter((a) => a.startsWith("--v8-flags")), want, cmdlineOf(child.pid));
  } finally {
    await stopPid(child.pid);
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(!alive(child.pid));
});
