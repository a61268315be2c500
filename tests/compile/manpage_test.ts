// dxenstored(8) (compile/manpage.ts): generated from the option table and the configuration keys, so it
// lists every option --help lists and every key; and it renders with man(1) without a groff warning.
import assert from "../helpers/assert.ts";
import { manPage, roff } from "../../compile/manpage.ts";
import { OPTIONS } from "../../src/cli/options.ts";
import { CONFIG_KEYS } from "../../src/cli/config.ts";

const HAS_MAN =
  (await new Deno.Command("bash", { args: ["-c", "command -v man && command -v groff"], stdout: "null" })
    .output()).success;
const dec = new TextDecoder();

/** man's output without grotty's overstrikes (bold "x\bx", underline "_\bx"). */
function plain(s: string): string {
  let out = "";
  for (const ch of s) out = ch === "\b" ? out.slice(0, -1) : out + ch;
  return out;
}

Deno.test("man page: every option and configuration key, roff-escaped", () => {
  const page = manPage();
  for (const o of OPTIONS) {
    if (o.long) assert.ok(page.includes(`\\-\\-${roff(o.long)}`), `--${o.long}`);
    if (o.short && !o.hidden) assert.ok(page.includes(`\\fB\\-${o.short}\\fR`), `-${o.short}`);
  }
  for (const k of CONFIG_KEYS) assert.ok(page.includes(`\\fB${roff(k.key)}\\fR`), k.key);
  assert.ok(page.startsWith(".TH DXENSTORED 8 "), page.slice(0, 80));
  // No line may start a roff request by accident (a help text beginning with "." or "'").
  for (const line of page.split("\n")) {
    if (/^[.']/.test(line)) assert.ok(/^\.(TH|SH|SS|TP|PP|B|I|BR|RI|IR|br)( |$)/.test(line), line);
  }
  assert.equal(roff(".hidden"), "\\&.hidden");
  assert.equal(roff("a-b\\c"), "a\\-b\\ec");
});

Deno.test({
  name: "man page: `man -l` renders it without warnings",
  ignore: !HAS_MAN,
  fn: async () => {
    const file = await Deno.makeTempFile({ suffix: ".8" });
    try {
      await Deno.writeTextFile(file, manPage());
      const o = await new Deno.Command("man", {
        args: ["--warnings", "-l", file],
        env: { MANWIDTH: "80", MAN_KEEP_FORMATTING: "0", PAGER: "cat" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = plain(dec.decode(o.stdout));
      assert.equal(dec.decode(o.stderr), "", "no groff warnings");
      assert.ok(o.success);
      assert.ok(/^NAME\n\s+dxenstored - XenStore daemon/m.test(out), out.slice(0, 400));
      assert.ok(out.includes("--pid-file FILE"), "options rendered");
    } finally {
      await Deno.remove(file);
    }
  },
});
