/** Running host commands for the real-Xen E2E runner. */

export interface RunResult {
  readonly ok: boolean;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const dec = new TextDecoder();

export async function run(
  cmd: readonly string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: opts.cwd,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { ok: out.success, code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether an executable is on PATH. */
export async function onPath(name: string): Promise<boolean> {
  return (await run(["sh", "-c", `command -v ${name}`])).ok;
}
