// checkStore: the invariants of a tree, verified by walking it (iteratively). Tests run it after
// randomized sequences; CONTROL check will expose it. Returns the list of violations (empty = sound).
import { childrenCheck } from "./node.ts";
import { joinPath } from "./path.ts";
import { ABS_PATH_MAX } from "../protocol/wire.ts";
import type { Node } from "./tree.ts";

const NAME = /^[A-Za-z0-9\-_@]+$/;

export function checkStore(root: Node, maxGen: number): string[] {
  const problems: string[] = [];
  const paths: string[] = ["/"];
  const nodes: Node[] = [root];
  const seen = new Set<Node>();
  while (nodes.length > 0) {
    const path = paths.pop()!;
    const n = nodes.pop()!;
    if (seen.has(n)) problems.push(`${path}: node object shared by two paths`);
    seen.add(n);
    if (n.gen > maxGen) problems.push(`${path}: generation ${n.gen} above the counter ${maxGen}`);
    if (path.length > ABS_PATH_MAX) problems.push(`${path.slice(0, 40)}…: path longer than ${ABS_PATH_MAX}`);
    if (n.perms.count < 1) problems.push(`${path}: empty permission list`);
    for (let i = 0; i < n.value.length; i++) {
      if (n.value.charCodeAt(i) > 0xff) {
        problems.push(`${path}: value holds a non-byte character`);
        break;
      }
    }
    for (const h of childrenCheck(n.children)) problems.push(`${path}: children: ${h}`);
    const names = new Set<string>();
    n.forEachChild((name, child) => {
      if (!NAME.test(name)) problems.push(`${path}: bad child name "${name}"`);
      if (names.has(name)) problems.push(`${path}: duplicate child "${name}"`);
      names.add(name);
      paths.push(joinPath(path, name));
      nodes.push(child);
    });
  }
  return problems;
}
