// compile/v8-flags: the V8 flags that are part of the program. One flag per line, '#' starts a
// comment, blank lines are ignored; a flag holds no whitespace and no comma (Deno's --v8-flags is a
// comma-separated list). bin/dxenstored parses the same file with sed; tests/compile/v8_flags_test.ts
// checks that both read it alike.
export const V8_FLAGS_FILE = new URL("./v8-flags", import.meta.url).pathname;

export class V8FlagsError extends Error {
  override name = "V8FlagsError";
}

/** The flags in `text` (the file's format). Throws V8FlagsError naming the line. */
export function parseV8Flags(text: string): string[] {
  const flags: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i].indexOf("#");
    const flag = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).trim();
    if (flag === "") continue;
    if (!/^--?[A-Za-z0-9_][A-Za-z0-9_=.+/:-]*$/.test(flag)) {
      throw new V8FlagsError(`${V8_FLAGS_FILE}:${i + 1}: not one V8 flag: "${flag.slice(0, 80)}"`);
    }
    flags.push(flag);
  }
  return flags;
}

/** The flags of compile/v8-flags. */
export function readV8Flags(file = V8_FLAGS_FILE): string[] {
  return parseV8Flags(Deno.readTextFileSync(file));
}

/** Deno's command-line form: `--v8-flags=a,b`, or nothing for no flags. */
export function v8FlagsArgs(flags: readonly string[]): string[] {
  return flags.length === 0 ? [] : [`--v8-flags=${flags.join(",")}`];
}
