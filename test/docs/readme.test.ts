import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configTableMarkdown } from "../../src/config/config-table.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("shows the configuration table the code actually reads", () => {
    const m = /<!-- config-table:start[^>]*-->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
    expect(m, "README.md lacks the config-table markers").not.toBeNull();
    expect(m![1]).toBe(configTableMarkdown());
  });

  it("gives the set-up and test commands", () => {
    expect(readme).toContain("npm install");
    expect(readme).toContain("npm start");
    expect(readme).toContain("npm test");
  });
});
