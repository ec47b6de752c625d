/**
 * The size of the byte automaton a language compiles to, estimated before compiling it, so that
 * schema.ts refuses a schema too large for the planner.
 */
import type { Lang } from "./language.ts";

/** Number of NFA states the Thompson construction makes for a node (shared nodes per use). */
export function stateEstimate(root: Lang): number {
  const memo = new Map<Lang, number>();
  const count = (node: Lang): number => {
    const known = memo.get(node);
    if (known !== undefined) return known;
    let n: number;
    switch (node.kind) {
      case "lit":
        n = new TextEncoder().encode(node.text).length;
        break;
      case "bytes":
        n = 0;
        break;
      case "char":
        n = count(node.bytes);
        break;
      case "rule":
        n = count(node.body);
        break;
      case "loop":
        n = 1 + node.items.reduce((sum, item) => sum + 1 + count(item), 0) + count(node.end);
        break;
      case "step":
        n =
          1 +
          node.items.reduce((sum, item) => sum + count(item), 0) +
          count(node.next) +
          (node.end ? count(node.end) : 0);
        break;
      case "seq":
      case "alt":
        n = node.items.reduce((sum, item) => sum + 1 + count(item), 0);
        break;
      case "rep":
        n = (node.max === Infinity ? node.min + 2 : node.max) * (1 + count(node.item)) + 2;
        break;
    }
    memo.set(node, n);
    return n;
  };
  return count(root);
}
