// A dxenstored on the simulated Xen for the guest benchmarks (bench/guests.ts, bench/ring_probe.ts):
// started from the sources with the program's V8 flags, memory backend; returned once its socket
// exists (after 10 s the caller's first request says what is wrong).
import { readV8Flags, v8FlagsArgs } from "../compile/v8_flags.ts";

const ROOT = new URL("..", import.meta.url).pathname;

export interface SimDaemon {
  readonly child: Deno.ChildProcess;
  readonly socket: string;
  /** The simulated Xen's control folder (`--xen sim:<xenDir>`). */
  readonly xenDir: string;
}

export async function startSimDaemon(
  dir: string,
  opts: { readonly denoFlags?: readonly string[]; readonly stdout?: "inherit" | "null" } = {},
): Promise<SimDaemon> {
  const socket = `${dir}/socket`;
  const xenDir = `${dir}/xen`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...v8FlagsArgs(readV8Flags()),
      ...(opts.denoFlags ?? []),
      `${ROOT}src/cli/main.ts`,
      ...["--socket", socket, "--xen", `sim:${xenDir}`, "--backend", "memory", "--log-level", "warn"],
    ],
    stdin: "null",
    stdout: opts.stdout ?? "null",
    stderr: "inherit",
  }).spawn();
  for (let i = 0; i < 400; i++) {
    try {
      Deno.statSync(socket);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  return { child, socket, xenDir };
}
