// The example storage module of docs/backends.md ("A module in 100 lines"): the copy in the doc is
// the file backends/example/memory_backend.c byte for byte, the doc's build line is the one
// `deno task backends` runs, and the doc's two commands, run as written, build the module and start a
// daemon on it that serves writes and reads.
import { gccCommand, MODULES } from "../../backends/build.ts";
import assert from "../helpers/assert.ts";
import { WireClient, XS } from "../helpers/wire.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const doc = Deno.readTextFileSync(`${ROOT}docs/backends.md`);
const section = doc.slice(doc.indexOf("### A module in 100 lines"));

/** The body of the first fenced block of `lang` in `text`. */
function block(text: string, lang: string): string {
  const open = "```" + lang + "\n";
  const start = text.indexOf(open);
  assert.ok(start >= 0, `a ${lang} block`);
  const end = text.indexOf("\n```\n", start + open.length);
  return text.slice(start + open.length, end + 1);
}

const commands = block(section, "sh").trim().split("\n");
const gccLine = commands.find((l) => l.startsWith("gcc "))!;
const loadLine = commands.find((l) => l.startsWith("bin/dxenstored "))!;

Deno.test("docs: the example module in backends.md is backends/example/memory_backend.c", () => {
  const file = Deno.readTextFileSync(`${ROOT}${MODULES.example.source}`);
  assert.ok(
    block(section, "c") === file,
    `docs/backends.md's copy differs from ${MODULES.example.source}: paste the file into the doc`,
  );
  assert.equal(gccLine, gccCommand(MODULES.example), "the doc's build line is what deno task backends runs");
  assert.ok(
    file.includes(` * ${gccLine}\n`) && file.includes(` * ${loadLine}\n`),
    "the file's header shows them",
  );
  const lines = file.split("\n").length;
  assert.ok(lines <= 130, `an example an operator reads whole (${lines} lines)`);
});

/** Start the doc's load line (a temporary socket for ./run/socket), run `fn` against it, stop it. */
async function withDocDaemon(fn: (c: WireClient) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dxs-example-" });
  const socket = `${dir}/socket`;
  const [cmd, ...args] = loadLine.split(" ").map((a) => a === "./run/socket" ? socket : a);
  assert.ok(args.includes(socket), "the doc names ./run/socket");
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  let log = "";
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
  })();
  try {
    let c: WireClient | null = null;
    for (let i = 0; i < 400 && c === null; i++) {
      c = await WireClient.connect(socket).catch(() => null);
      if (c === null) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(c !== null, `the daemon serves ${socket}:\n${log}`);
    try {
      await fn(c);
    } finally {
      c.close();
    }
  } finally {
    child.kill("SIGTERM");
    const st = await child.status;
    await drained;
    await Deno.remove(dir, { recursive: true });
    assert.equal(st.code, 0, log);
  }
}

Deno.test("docs: the example module's build and load commands work as written", async () => {
  // The build line, verbatim, from the repository's root.
  const build = await new Deno.Command("sh", { args: ["-c", gccLine], cwd: ROOT, stderr: "piped" }).output();
  assert.ok(build.success, `${gccLine}\n${new TextDecoder().decode(build.stderr)}`);
  await withDocDaemon(async (c) => {
    assert.equal((await c.request(XS.WRITE, "/example/key\0value")).type, XS.WRITE);
    assert.equal((await c.request(XS.READ, "/example/key\0")).payload, "value");
    assert.equal((await c.request(XS.RM, "/example\0")).type, XS.RM);
    assert.equal((await c.request(XS.WRITE, "/example/again\0v2")).type, XS.WRITE);
  });
  // In memory: the next start is empty (so the module served the store, not a persistent backend).
  await withDocDaemon(async (c) => {
    assert.equal((await c.request(XS.READ, "/example/again\0")).payload, "ENOENT\0");
  });
});
