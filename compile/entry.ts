// The built program's entry (compile/build.ts bundles it with the embedded assets): one program for
// the daemon with its export/import subcommands, the XenStore client `dxenstore` and the guest-side
// debugging CLI, chosen by argv[0] the way a multi-call binary is (the launchers exec it as
// `dxenstored`, `dxenstore` or `dxenstore-guest`; a `deno compile` executable is named so, or linked
// under the other names).
import { main as daemonMain } from "../src/cli/main.ts";
import { main as guestMain } from "../src/client/guest_cli.ts";
import { denoIo, main as clientMain } from "../src/client/cli/main.ts";
import { CLIENT_CLI_NAME, GUEST_CLI_NAME } from "../src/cli/process_name.ts";

/** argv[0] of this process as the kernel has it (what `exec -a NAME` set). */
export function argv0(): string {
  try {
    const cmdline = Deno.readTextFileSync("/proc/self/cmdline");
    const end = cmdline.indexOf("\0");
    return end < 0 ? cmdline : cmdline.slice(0, end);
  } catch {
    return Deno.execPath();
  }
}

/** Runs the program named by argv[0]; its exit status. */
export async function run(): Promise<number> {
  const name = argv0();
  const base = name.slice(name.lastIndexOf("/") + 1);
  if (base === GUEST_CLI_NAME) return await guestMain(Deno.args);
  if (base === CLIENT_CLI_NAME) return await clientMain(Deno.args, { io: denoIo() });
  return await daemonMain();
}
