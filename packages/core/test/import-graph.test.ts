/// <reference types="vite/client" />
/**
 * Module structure of packages/core/src (madge-style, no dependency): no import cycles (type-only
 * imports included), the engine never imports the server, and no file over 450 lines.
 */
import { describe, expect, it } from "vitest";

const SOURCES = import.meta.glob<string>("../src/**/*.ts", {
  query: "?raw",
  import: "default",
  eager: true,
});

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)"/g;

function resolve(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const part of spec.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/").replace(/\.js$/, ".ts");
}

const graph = new Map<string, string[]>();
for (const [path, source] of Object.entries(SOURCES)) {
  const deps = [...source.matchAll(IMPORT)].map((m) => resolve(path, m[1] as string));
  graph.set(path, deps);
}

/** Every cycle through an edge back to a node on the stack (one per back edge). */
function findCycles(): string[] {
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, "open");
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === "open") {
        cycles.push([...stack.slice(stack.indexOf(dep)), dep].join(" -> "));
      } else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

function findCycle(): string[] | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === "done") return null;
    if (state.get(node) === "open") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "open");
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

describe("packages/core/src import graph", () => {
  it("reads the sources and their imports", () => {
    expect(graph.size).toBeGreaterThan(25);
    expect(graph.get("../src/engine/connection.ts")).toContain("../src/engine/core.ts");
    for (const deps of graph.values()) {
      for (const dep of deps) expect(graph.has(dep), dep).toBe(true);
    }
  });

  it("has no import cycle anywhere, type-only imports included", () => {
    expect(findCycles()).toEqual([]);
  });

  it("finds a cycle when there is one (the checker itself)", () => {
    graph.set("../src/x.ts", ["../src/y.ts"]);
    graph.set("../src/y.ts", ["../src/x.ts"]);
    try {
      expect(findCycle()).not.toBeNull();
    } finally {
      graph.delete("../src/x.ts");
      graph.delete("../src/y.ts");
    }
  });

  it("the engine and the grammars never import the server", () => {
    for (const [path, deps] of graph) {
      if (path.includes("/server/")) continue;
      expect(
        deps.filter((dep) => dep.includes("/server/")),
        path,
      ).toEqual([]);
    }
  });

  it.each(Object.entries(SOURCES).filter(([path]) => !path.includes("/server/")))(
    "%s has at most 450 lines",
    (_path, source) => {
      expect(source.split("\n").length).toBeLessThanOrEqual(450);
    },
  );
});
