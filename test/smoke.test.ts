import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type GatewayHarness } from "./support/gateway-harness.js";

describe("gateway smoke", () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGateway();
  });
  afterAll(() => h.close());

  it("answers a chat completion through the Ollama double", async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen3:8b", messages: [{ role: "user", content: "hello there" }] }),
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(res.status).toBe(200);
    expect(body.choices[0]!.message.content.length).toBeGreaterThan(0);
  });

  it("streams", async () => {
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen3:8b", stream: true, messages: [{ role: "user", content: "hello there" }] }),
    });
    const text = await res.text();
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
  });
});
