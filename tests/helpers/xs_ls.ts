/**
 * What Xen 4.17's `xenstore-ls [-p] PATH` prints for a tree, when stdout is not a terminal
 * (max_width 80, desired_width 60, TAG " = \"...\""; tools/xenstore/xenstore_client.c do_ls), so tests
 * can compare the real tool's output with a text built from what the test wrote.
 */

export interface LsNode {
  readonly name: string;
  /** Raw value bytes as a Latin-1 string. */
  readonly value: string;
  /** Permission strings, e.g. ["n0"] or ["r5", "b6"]. */
  readonly perms: readonly string[];
  /** Children in the order the daemon lists them. */
  readonly children?: readonly LsNode[];
}

const MAX_WIDTH = 80;
const DESIRED_WIDTH = 60;
const TAG_LEN = 8; // strlen(" = \"...\"")

/** xenstore_client.c sanitise_value: printable ASCII as is, the rest escaped. */
export function sanitise(value: string): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) out += value[i];
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x5c) out += "\\\\";
    else if (c < 8) out += "\\" + c.toString(8).padStart(3, "0");
    else out += "\\x" + c.toString(16).padStart(2, "0");
  }
  return out;
}

/** The lines `xenstore-ls` prints for `nodes` (the children of the listed path) at `depth`. */
export function lsText(nodes: readonly LsNode[], showPerms: boolean, depth = 0): string {
  let out = "";
  for (const n of nodes) {
    let line = " ".repeat(depth);
    let width = depth;
    const name = n.name.slice(0, MAX_WIDTH - TAG_LEN - width);
    line += name;
    width += name.length;
    const v = sanitise(n.value);
    if (MAX_WIDTH < width + n.value.length + TAG_LEN) {
      line += ` = "${v.slice(0, MAX_WIDTH - TAG_LEN - width)}\\..."`;
    } else {
      const s = ` = "${v}"`;
      line += s;
      width += s.length;
      if (showPerms) {
        line += " ";
        for (width++; width < Math.min(DESIRED_WIDTH, MAX_WIDTH); width++) line += width & 1 ? "." : " ";
      }
    }
    if (showPerms) line += `  (${n.perms.join(",")})`;
    out += line + "\n";
    out += lsText(n.children ?? [], showPerms, depth + 1);
  }
  return out;
}
