import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { candidateKeys, matchPath, parsePathTemplate } from "../../src/endpoints/path-template.js";

function parseError(path: string): GatewayError {
  try {
    parsePathTemplate(path);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error(`expected ${JSON.stringify(path)} to be rejected`);
}

describe("parsePathTemplate", () => {
  it.each([
    ["/images", "/images", []],
    ["/images/{id}/thumbnail", "/images/{}/thumbnail", ["id"]],
    ["/{a}/{b}", "/{}/{}", ["a", "b"]],
    ["/a.b/~x/v1:run/@me/it's/$&()*+,;=-_", "/a.b/~x/v1:run/@me/it's/$&()*+,;=-_", []],
    ["/...", "/...", []],
    ["/1/2/3/4/5/6/7/{_8}", "/1/2/3/4/5/6/7/{}", ["_8"]],
    ["/x/{" + "p".repeat(64) + "}", "/x/{}", ["p".repeat(64)]],
    ["/openapi.jsonx", "/openapi.jsonx", []],
  ])("accepts %s", (path, key, params) => {
    const t = parsePathTemplate(path);
    expect(t.template).toBe(path);
    expect(t.key).toBe(key);
    expect(t.params).toEqual(params);
  });

  it("describes the segments", () => {
    expect(parsePathTemplate("/images/{id}/thumbnail").segments).toEqual([
      { literal: "images" },
      { param: "id" },
      { literal: "thumbnail" },
    ]);
  });

  it.each([
    ["images", /must start with "\/"/],
    ["", /must start with "\/"/],
    ["/", /at least one segment/],
    ["/images/", /must not end with "\/"/],
    ["/a//b", /empty segments/],
    ["/a/./b", /must not be "\." or "\.\."/],
    ["/a/..", /must not be "\." or "\.\."/],
    ["/1/2/3/4/5/6/7/8/9", /9 segments; at most 8/],
    ["/img{id}", /a parameter must be a whole segment/],
    ["/{id}x", /a parameter must be a whole segment/],
    ["/{1id}", /a parameter must be a whole segment/],
    ["/{}", /a parameter must be a whole segment/],
    ["/{a-b}", /a parameter must be a whole segment/],
    ["/x/{" + "p".repeat(65) + "}", /a parameter must be a whole segment/],
    ["/{id}/{id}", /"id" appears more than once/],
    ["/{__proto__}", /__proto__/],
    ["/a%20b", /percent-encoding/],
    ["/a b", /contains " "/],
    ["/a?b", /contains "\?"/],
    ["/a#b", /contains "#"/],
    ["/caf\u00e9", /contains "\u00e9"/],
    ["/openapi.json", /reserved/],
    ["/" + "a".repeat(1024), /at most 1024/],
  ])("rejects %s", (path, message) => {
    const err = parseError(path);
    expect(err.kind).toBe("invalid_argument");
    expect(err.param).toBe("path");
    expect(err.message).toMatch(message);
  });

  it("gives templates differing only in parameter names the same key", () => {
    expect(parsePathTemplate("/images/{id}/thumbnail").key).toBe(parsePathTemplate("/images/{imageId}/thumbnail").key);
    expect(parsePathTemplate("/images/{id}").key).not.toBe(parsePathTemplate("/images/id").key);
  });
});

describe("candidateKeys", () => {
  it("orders by number of parameters, then by literals earlier in the path", () => {
    expect(candidateKeys("/a/b/c")).toEqual([
      "/a/b/c",
      "/a/b/{}",
      "/a/{}/c",
      "/{}/b/c",
      "/a/{}/{}",
      "/{}/b/{}",
      "/{}/{}/c",
      "/{}/{}/{}",
    ]);
    expect(candidateKeys("/x")).toEqual(["/x", "/{}"]);
  });

  it("yields the keys of matching templates", () => {
    const keys = candidateKeys("/images/42/thumbnail");
    expect(keys).toContain(parsePathTemplate("/images/{id}/thumbnail").key);
    expect(keys).toContain(parsePathTemplate("/{kind}/{id}/{size}").key);
    expect(keys).not.toContain(parsePathTemplate("/images/{id}").key);
  });

  it("decodes percent-encoding so literals compare in template form", () => {
    expect(candidateKeys("/v1%3Arun/%7Eme")[0]).toBe(parsePathTemplate("/v1:run/~me").key);
  });

  it("lets segments that are no valid literal only match a parameter", () => {
    expect(candidateKeys("/files/a%2Fb")).toEqual(["/files/{}", "/{}/{}"]);
    expect(candidateKeys("/files/a%20b")).toEqual(["/files/{}", "/{}/{}"]);
    expect(candidateKeys("/files/%2E%2E")).toEqual(["/files/{}", "/{}/{}"]);
    expect(candidateKeys("/files/%7Bx%7D")).toEqual(["/files/{}", "/{}/{}"]);
  });

  it("returns [] for paths no template can match", () => {
    expect(candidateKeys("/")).toEqual([]);
    expect(candidateKeys("")).toEqual([]);
    expect(candidateKeys("a/b")).toEqual([]);
    expect(candidateKeys("/a/")).toEqual([]);
    expect(candidateKeys("/a//b")).toEqual([]);
    expect(candidateKeys("/a/../b")).toEqual([]);
    expect(candidateKeys("/a/%E0%A4%A")).toEqual([]);
    expect(candidateKeys("/1/2/3/4/5/6/7/8/9")).toEqual([]);
  });

  it("handles the 8-segment limit", () => {
    const keys = candidateKeys("/1/2/3/4/5/6/7/8");
    expect(keys).toHaveLength(256);
    expect(keys[0]).toBe("/1/2/3/4/5/6/7/8");
    expect(keys[1]).toBe("/1/2/3/4/5/6/7/{}");
    expect(keys[255]).toBe("/{}/{}/{}/{}/{}/{}/{}/{}");
    expect(new Set(keys).size).toBe(256);
  });
});

describe("matchPath", () => {
  const t = parsePathTemplate("/images/{id}/thumbnail");

  it("returns decoded parameter values", () => {
    expect(matchPath(t, "/images/42/thumbnail")).toEqual({ id: "42" });
    expect(matchPath(t, "/images/a%20b%C3%A9/thumbnail")).toEqual({ id: "a b\u00e9" });
  });

  it("keeps %2F inside a parameter value", () => {
    expect(matchPath(t, "/images/dir%2Ffile.png/thumbnail")).toEqual({ id: "dir/file.png" });
    expect(matchPath(t, "/images/dir/file.png/thumbnail")).toBeUndefined();
  });

  it("matches literals in decoded form", () => {
    expect(matchPath(parsePathTemplate("/v1:run/{x}"), "/v1%3Arun/y")).toEqual({ x: "y" });
    expect(matchPath(parsePathTemplate("/v1:run/{x}"), "/v1%3Arun%2F/y")).toBeUndefined();
  });

  it("rejects non-matching paths", () => {
    expect(matchPath(t, "/images/42")).toBeUndefined();
    expect(matchPath(t, "/images/42/thumbnail/x")).toBeUndefined();
    expect(matchPath(t, "/videos/42/thumbnail")).toBeUndefined();
    expect(matchPath(t, "/images/42/thumbnail/")).toBeUndefined();
    expect(matchPath(t, "/images/%ZZ/thumbnail")).toBeUndefined();
  });

  it("returns a parameter-free match as {}", () => {
    expect(matchPath(parsePathTemplate("/health"), "/health")).toEqual({});
  });
});
