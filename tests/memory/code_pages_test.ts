// Unmapping unused code pages (src/memory/code_pages.ts): which mappings and pages qualify, and a
// real trim of a Deno process that then keeps running code it had unmapped.
import assert from "../helpers/assert.ts";
import { fileRuns, trimmableMappings } from "../../src/memory/code_pages.ts";

Deno.test("code pages: only private, read-only mappings of regular files qualify", () => {
  const maps = [
    "55d0a0000000-55d0a2000000 r--p 00000000 08:01 1234   /usr/bin/deno",
    "55d0a2000000-55d0a8000000 r-xp 02000000 08:01 1234   /usr/bin/deno",
    "55d0a8000000-55d0a8100000 rw-p 08000000 08:01 1234   /usr/bin/deno",
    "7f0000000000-7f0000001000 r--s 00000000 08:01 99     /tmp/cache.db",
    "7f0000001000-7f0000002000 r--p 00000000 00:05 7      /dev/xen/privcmd",
    "7f0000002000-7f0000003000 r--p 00000000 00:00 0      ",
    "7f0000003000-7f0000004000 r-xp 00000000 00:00 0      [vdso]",
    "7f0000004000-7f0000006000 r-xp 00000000 08:01 55     /usr/lib/x86_64-linux-gnu/libc.so.6",
    "7f0000006000-7f0000007000 r--p 00000000 00:1a 3      /proc/xen/xsd_kva",
  ].join("\n");
  assert.deepEqual(trimmableMappings(maps).map((m) => m.start.toString(16)), [
    "55d0a0000000",
    "55d0a2000000",
    "7f0000004000",
  ]);
});

Deno.test("code pages: a page goes only if present and still the file's own (never a written copy)", () => {
  const P = 1n << 63n;
  const F = 1n << 61n;
  // present file page, present copy (relocated data), absent, present file page x2, swapped copy
  const e = new BigUint64Array([P | F | 5n, P | 9n, 0n, P | F, P | F, 1n << 62n]);
  assert.deepEqual(fileRuns(e, 100n), [[100n, 101n], [103n, 105n]]);
  assert.deepEqual(fileRuns(new BigUint64Array([F, P]), 0n), [], "not present, or not the file's");
});

Deno.test("code pages: a trimmed Deno process drops its file pages and still runs everything", async () => {
  const script = `
    import { trimCodePages } from ${
    JSON.stringify(new URL("../../src/memory/code_pages.ts", import.meta.url).href)
  };
    const file = () => Number(/RssFile:\\s+(\\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))[1]);
    const before = file();
    const t = trimCodePages();
    const after = file();
    // Code and relocated data the trim could have broken: the compiler, the regex engine, wasm, crypto.
    const wasm = new WebAssembly.Module(new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,127,3,2,1,0,7,5,1,1,102,0,0,10,6,1,4,0,65,42,11]));
    const f = new WebAssembly.Instance(wasm).exports.f;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("x")));
    const json = JSON.parse(JSON.stringify({ a: [1, 2, { b: "c".repeat(100) }] }));
    const ok = f() === 42 && digest[0] === 0x2d && /c{100}/.test(json.a[2].b) && new Intl.NumberFormat("en").format(1234) === "1,234";
    console.log(JSON.stringify({ before, after, pages: t.pages, ok }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `the trimmed process died: ${err}`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.ok(r.ok, "code run after the trim gave wrong results");
  assert.ok(r.pages > 1000, `only ${r.pages} pages unmapped`);
  // Some pages come back at once (the code that runs next), but most stay out.
  assert.ok(r.after < r.before - 4096, `RssFile ${r.before} kB -> ${r.after} kB`);
});
