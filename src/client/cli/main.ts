// dxenstore: a XenStore command-line client on the client library (src/client/mod.ts). `dxenstore
// --help`, `dxenstore help COMMAND`, docs/client.md. Exit codes: 0 success; a XenStore error exits with
// its Linux errno number (ENOENT 2, EACCES 13, EAGAIN 11, ...); 64 usage; 69 no daemon / connection
// lost; 70 internal error; 75 timeout; 76 protocol error.
import { type FlagSpec, parseFlags, UsageError } from "./args.ts";
import { type Command, COMMANDS, type Io } from "./commands.ts";
import { completionScript } from "./completion.ts";
import { TOP } from "./top.ts";
import { XenStore, type XenStoreOptions } from "../xenstore.ts";
import { ConnectionError, ERRNO_NUMBERS, ProtocolError, TimeoutError, XsError } from "../errors.ts";
import { defaultSocketPath } from "../socket.ts";

export const EXIT = { OK: 0, USAGE: 64, UNAVAILABLE: 69, SOFTWARE: 70, TEMPFAIL: 75, PROTOCOL: 76 } as const;

const ALL: readonly Command[] = [...COMMANDS, TOP];

const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: "socket", short: "s", value: true },
  { name: "sim", value: true },
  { name: "domid", value: true },
  { name: "timeout", value: true },
  { name: "help", short: "h" },
];

function usage(): string {
  const width = Math.max(...ALL.map((c) => c.synopsis.length));
  return `Usage: dxenstore [OPTIONS] COMMAND [ARGS...]

A XenStore client for dxenstored, cxenstored and oxenstored.

Commands:
${ALL.map((c) => `  ${c.synopsis.padEnd(width)}  ${c.help.split("\n")[0]}`).join("\n")}
  help [COMMAND]${" ".repeat(Math.max(1, width - 12))}  this text, or a command's
  completion bash|zsh${" ".repeat(Math.max(1, width - 17))}  print a shell completion script

Options (before the command):
  -s, --socket PATH   the daemon's socket (default: $XENSTORED_PATH, else
                      $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket;
                      now ${defaultSocketPath()})
  --sim DIR --domid N run as guest N of a simulated Xen, over its ring
  --timeout MS        reply timeout (default 30000; 0: none)
  -h, --help          this text (after a command: the command's help)

Exit status: 0 success; a XenStore error gives its errno number (ENOENT 2,
EACCES 13, EAGAIN 11, EINVAL 22, ENOSPC 28, E2BIG 7, ENOSYS 38 — also for a
feature the daemon lacks ...); 64 usage error; 69 cannot reach the daemon;
70 internal error; 75 timeout; 76 protocol error.`;
}

function commandHelp(c: Command): string {
  const flags = c.flags.map((f) =>
    `${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? " VALUE" : ""}`
  );
  return `Usage: dxenstore ${c.synopsis}\n\n${c.help}${
    flags.length ? `\n\nOptions:\n  ${flags.join("\n  ")}` : ""
  }`;
}

/** The exit code for an error (see the header). */
export function exitCode(e: unknown): number {
  if (e instanceof UsageError || e instanceof SyntaxError || e instanceof RangeError) return EXIT.USAGE;
  if (e instanceof XsError) return ERRNO_NUMBERS[e.errno];
  if (e instanceof TimeoutError) return EXIT.TEMPFAIL;
  if (e instanceof ProtocolError) return EXIT.PROTOCOL;
  if (e instanceof ConnectionError) return EXIT.UNAVAILABLE;
  return EXIT.SOFTWARE;
}

export interface MainEnv {
  readonly io: Io;
  /** How to connect (tests may substitute). */
  readonly open?: (opts: XenStoreOptions) => Promise<XenStore>;
}

export async function main(argv: readonly string[], env: MainEnv): Promise<number> {
  const { io } = env;
  // Global options end at the first operand (the command).
  let i = 0;
  while (i < argv.length && argv[i].startsWith("-")) {
    const spec = GLOBAL_FLAGS.find((f) => argv[i] === `--${f.name}` || argv[i] === `-${f.short}`);
    i += spec?.value && !argv[i].includes("=") ? 2 : 1;
  }
  let global;
  try {
    global = parseFlags(argv.slice(0, i), GLOBAL_FLAGS);
  } catch (e) {
    io.err(`dxenstore: ${(e as Error).message}\n\n${usage()}`);
    return EXIT.USAGE;
  }
  const [name, ...rest] = argv.slice(i);
  if (global.flags.has("help") || name === undefined) {
    (name === undefined && !global.flags.has("help") ? io.err : io.out)(usage());
    return name === undefined && !global.flags.has("help") ? EXIT.USAGE : EXIT.OK;
  }
  if (name === "help") {
    const c = ALL.find((x) => x.name === rest[0]);
    if (rest[0] !== undefined && c === undefined) {
      io.err(`dxenstore: no command "${rest[0]}"`);
      return EXIT.USAGE;
    }
    io.out(c === undefined ? usage() : commandHelp(c));
    return EXIT.OK;
  }
  if (name === "completion") {
    const shell = rest[0] ?? "bash";
    if (shell !== "bash" && shell !== "zsh") {
      io.err("dxenstore: completion bash|zsh");
      return EXIT.USAGE;
    }
    io.out(completionScript(shell, ALL));
    return EXIT.OK;
  }
  const cmd = ALL.find((c) => c.name === name) ?? (name === "__complete" ? COMPLETE : undefined);
  if (cmd === undefined) {
    io.err(`dxenstore: unknown command "${name}" (dxenstore --help lists them)`);
    return EXIT.USAGE;
  }
  let xs: XenStore | null = null;
  try {
    const p = parseFlags(rest, [...cmd.flags, { name: "help", short: "h" }], cmd.name);
    if (p.flags.has("help")) {
      io.out(commandHelp(cmd));
      return EXIT.OK;
    }
    if (p.operands.length < cmd.operands[0] || p.operands.length > cmd.operands[1]) {
      throw new UsageError(`wrong number of arguments`, cmd.name);
    }
    const timeout = global.flags.get("timeout");
    const opts: XenStoreOptions = {
      socket: global.flags.get("socket") as string | undefined,
      timeoutMs: timeout === undefined ? 30_000 : Number(timeout),
      // A one-shot command fails at once if the daemon goes; streams (watch, top) ride restarts out.
      reconnect: cmd.name === "watch" || cmd.name === "top",
    };
    if (!(opts.timeoutMs! >= 0)) throw new UsageError(`bad --timeout "${timeout}"`);
    xs = await (env.open ?? openStore)(withGuest(opts, global.flags));
    await cmd.run(xs, p, io);
    return EXIT.OK;
  } catch (e) {
    const code = exitCode(e);
    if (e instanceof UsageError) {
      const c = ALL.find((x) => x.name === e.command);
      io.err(`dxenstore: ${e.message}${c ? `\n\n${commandHelp(c)}` : ""}`);
    } else if (e instanceof XsError) io.err(`dxenstore: ${e.message}`);
    else if (code === EXIT.SOFTWARE) io.err(`dxenstore: internal error: ${(e as Error)?.stack ?? e}`);
    else io.err(`dxenstore: ${(e as Error).message}`);
    return code;
  } finally {
    xs?.close();
  }
}

/** Guest mode (--sim DIR --domid N): the options for a ring of the simulated Xen. */
function withGuest(opts: XenStoreOptions, flags: Map<string, string | true>): XenStoreOptions {
  const sim = flags.get("sim");
  const domid = flags.get("domid");
  if (sim === undefined && domid === undefined) return opts;
  if (typeof sim !== "string" || typeof domid !== "string") {
    throw new UsageError("--sim DIR and --domid N go together");
  }
  return { ...opts, guest: { sim, domid: Number(domid) } } as XenStoreOptions;
}

async function openStore(
  opts: XenStoreOptions & { guest?: { sim: string; domid: number } },
): Promise<XenStore> {
  if (opts.guest === undefined) return await XenStore.open(opts);
  // Only guest mode needs the simulated Xen (Deno FFI): loaded on demand.
  const { SimGuest } = await import("../../xen/sim/guest.ts");
  return await XenStore.open({
    ...opts,
    ring: new SimGuest(opts.guest.sim, opts.guest.domid),
    resetRing: true,
  });
}

/** Shell completion's helper: the children of the path being typed. */
const COMPLETE: Command = {
  name: "__complete",
  synopsis: "",
  help: "",
  flags: [],
  operands: [0, 1],
  async run(xs, p, io) {
    const word = p.operands[0] ?? "/";
    const dir = word.endsWith("/") ? word.replace(/\/$/, "") || "/" : word.replace(/\/[^/]*$/, "") || "/";
    const base = dir === "/" ? "" : dir;
    for (const n of await xs.ls(dir).catch(() => [])) io.out(`${base}/${n}`);
  },
};

export function denoIo(): Io {
  const enc = new TextEncoder();
  const write = (b: Uint8Array) => {
    try {
      for (let off = 0; off < b.length;) off += Deno.stdout.writeSync(b.subarray(off));
    } catch (e) {
      // The reader went away (`dxenstore watch ... | head`): stop as a SIGPIPE would.
      if (e instanceof Deno.errors.BrokenPipe) Deno.exit(141);
      throw e;
    }
  };
  return {
    out: (l) => write(enc.encode(l + "\n")),
    err: (l) => Deno.stderr.writeSync(enc.encode(l + "\n")),
    readStdin: async () => await new Response(Deno.stdin.readable).text(),
    readFile: (p) => Deno.readTextFile(p),
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args, { io: denoIo() }));
