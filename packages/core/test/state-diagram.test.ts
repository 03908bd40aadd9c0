/// <reference types="vite/client" />
/**
 * packages/core/README.md's "Engine" diagram and rules table are generated from states.ts
 * (scripts/state-diagram.mjs prints them from the build); this keeps the README true.
 */
import { describe, expect, it } from "vitest";
import rootReadme from "../../../README.md?raw";
import readme from "../README.md?raw";
import { commandTable, stateDiagram, TRANSITIONS } from "../src/engine/states.js";

function block(text: string, start: string, end: string): string {
  const from = text.indexOf(start);
  expect(from, `README has ${JSON.stringify(start)}`).toBeGreaterThan(-1);
  const body = text.slice(from + start.length);
  return body.slice(0, body.indexOf(end));
}

describe("packages/core/README.md Engine section", () => {
  it("has an Engine heading", () => {
    expect(readme).toMatch(/^## Engine$/m);
  });

  it("the Mermaid diagram is the generated one", () => {
    expect(block(readme, "```mermaid\n", "```")).toBe(stateDiagram());
  });

  it("the repository README's Architecture diagram is the generated one too", () => {
    expect(rootReadme).toMatch(/^## Architecture$/m);
    expect(block(rootReadme, "```mermaid\n", "```")).toBe(stateDiagram());
  });

  // Biome pads Markdown tables; compare cell contents.
  const cells = (table: string) =>
    table
      .trim()
      .split("\n")
      .map((row) => row.replace(/\s*\|\s*/g, "|").replace(/-{3,}/g, "---"));
  it("the rules table is the generated one", () => {
    expect(cells(block(readme, "STARTTLS required, the call limit.\n\n", "\n\n"))).toEqual(
      cells(commandTable()),
    );
  });

  it("every transition's from-phases are real phases and every phase is reachable", () => {
    const reached = new Set(["command", "proxy"]);
    for (const t of Object.values(TRANSITIONS)) reached.add(t.to);
    expect([...reached].sort()).toEqual(
      ["authResponse", "bdat", "closed", "command", "data", "paused", "proxy", "reply"].sort(),
    );
  });
});
