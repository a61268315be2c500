// Command-line parsing for dxenstore: global options before the command, the command's own options
// and operands after it. Flags may come anywhere among a command's operands, `--` ends them.

/** A usage error: exit code 64 (EX_USAGE) and the command's help. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface FlagSpec {
  /** Long name without dashes, e.g. "depth". */
  readonly name: string;
  /** One-letter alias. */
  readonly short?: string;
  /** Takes a value. */
  readonly value?: boolean;
}

export interface Parsed {
  readonly flags: Map<string, string | true>;
  readonly operands: string[];
}

/** Parse `argv` against `specs`; unknown flags are usage errors. */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], command?: string): Parsed {
  const flags = new Map<string, string | true>();
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-" || /^-[0-9]/.test(a)) {
      operands.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const key = a.startsWith("--") ? a.slice(2, eq < 0 ? undefined : eq) : a.slice(1, 2);
    const spec = specs.find((s) => (a.startsWith("--") ? s.name === key : s.short === key));
    if (spec === undefined) throw new UsageError(`unknown option ${a}`, command);
    if (!spec.value) {
      if (eq >= 0) throw new UsageError(`${a}: --${spec.name} takes no value`, command);
      if (!a.startsWith("--") && a.length > 2) throw new UsageError(`unknown option ${a}`, command);
      flags.set(spec.name, true);
      continue;
    }
    let v: string | undefined;
    if (eq >= 0) v = a.slice(eq + 1);
    else if (!a.startsWith("--") && a.length > 2) v = a.slice(2);
    else v = argv[++i];
    if (v === undefined) throw new UsageError(`${a} needs a value`, command);
    flags.set(spec.name, v);
  }
  return { flags, operands };
}

/** A non-negative integer option or operand, or a usage error naming it. */
export function intArg(s: string, what: string, max = Number.MAX_SAFE_INTEGER, command?: string): number {
  if (!/^[0-9]{1,15}$/.test(s) || Number(s) > max) throw new UsageError(`bad ${what} "${s}"`, command);
  return Number(s);
}

/** A domain id (0..65535). */
export function domidArg(s: string, command?: string): number {
  return intArg(s, "domid", 0xffff, command);
}
