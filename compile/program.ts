// What the built program is and how it is run: one constant per fact, shared by the build
// (build.ts), `deno task compile` (compile.ts), the .deb (packaging/build_deb.ts), the real-Xen E2E
// (e2e/xen/package.ts) and the tests.
import { v8FlagsArgs } from "./v8_flags.ts";
import { CLIENT_CLI_NAME, DAEMON_NAME, GUEST_CLI_NAME } from "../src/cli/process_name.ts";

/** The process name (argv[0] and the kernel's comm): what pgrep, pidof and journald see. */
export const PROGRAM_NAME = DAEMON_NAME;
/** The guest-side debugging CLI, the same program under another argv[0] (compile/entry.ts). */
export const GUEST_NAME = GUEST_CLI_NAME;
/** The XenStore client, likewise. */
export const CLIENT_NAME = CLIENT_CLI_NAME;
/** `deno task build`'s output, repository-relative. */
export const BUNDLE = "build/dxenstored.js";
/** `deno task compile`'s output, repository-relative. */
export const EXECUTABLE = "build/dxenstored";
/** The man page `deno task build` writes beside the program. */
export const MAN_PAGE = "build/dxenstored.8";

/**
 * `deno run` flags of the built program: every permission (libc and Xen devices through FFI), no
 * banner, and nothing looked up around it: no deno.json or lock file of whatever directory it starts
 * in, no network, no npm resolution (the bundle holds every package it uses).
 */
export const DENO_RUN_FLAGS = [
  "--allow-all",
  "--quiet",
  "--no-config",
  "--no-lock",
  "--no-remote",
  "--no-npm",
];

/** The command that runs the built program `program` with Deno binary `deno`, without arguments. */
export function runCommand(deno: string, program: string, v8Flags: readonly string[]): string[] {
  return [deno, "run", ...v8FlagsArgs(v8Flags), ...DENO_RUN_FLAGS, program];
}

export interface LauncherOptions {
  /** Installed paths of the Deno binary and the built program. */
  readonly deno: string;
  readonly program: string;
  readonly v8Flags: readonly string[];
  /** argv[0] of the process: PROGRAM_NAME or GUEST_NAME. */
  readonly name: string;
  /** Environment set before the exec (e.g. DENO_DIR). */
  readonly env?: Readonly<Record<string, string>>;
  /** Arguments before the launcher's own. */
  readonly args?: readonly string[];
  /**
   * The interpreter: a shell whose exec takes -a (bash, the default; busybox's ash also does, Debian's
   * dash does not).
   */
  readonly shell?: string;
  readonly comment: string;
}

/** A launcher script: sets the environment and execs Deno as `name`, so the launcher is the program. */
export function launcherScript(o: LauncherOptions): string {
  const env = Object.entries({ DENO_NO_UPDATE_CHECK: "1", ...o.env }).map(([k, v]) =>
    `export ${k}=${shellQuote(v)}`
  );
  const cmd = [...runCommand(o.deno, o.program, o.v8Flags), ...(o.args ?? [])].map(shellQuote).join(" ");
  return [
    `#!${o.shell ?? "/bin/bash"}`,
    ...o.comment.split("\n").map((l) => `# ${l}`.trimEnd()),
    ...env,
    `exec -a ${shellQuote(o.name)} ${cmd} "$@"`,
    "",
  ].join("\n");
}

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
