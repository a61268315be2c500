// The names the program runs under. The launchers (bin/dxenstored, the .deb's /usr/sbin/dxenstored,
// compile/program.ts) exec Deno with argv[0] set to the name, which pidof and `ps -o args` see; the
// daemon sets the kernel's comm name itself, which pgrep, `ps -o comm`, top and journald's _COMM see
// (an exec'd binary's comm is its file name, "deno", whatever argv[0] says).
import { setCommName } from "./sys.ts";

/** The daemon, its export/import subcommands and the built program. */
export const DAEMON_NAME = "dxenstored";
/** The guest-side debugging CLI (src/client/guest_cli.ts), the same built program under another name. */
export const GUEST_CLI_NAME = "dxenstore-guest";
/** The XenStore command-line client (src/client/cli/main.ts), likewise. */
export const CLIENT_CLI_NAME = "dxenstore";

/** Give this process the daemon's comm name (the main thread is the process's task). */
export function nameProcess(name: string = DAEMON_NAME): void {
  setCommName(name);
}
