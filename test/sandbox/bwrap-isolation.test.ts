/**
 * The bwrap driver against the real bwrap, spawned through node-pty as the supervisor does:
 * identity and privileges, the TIOCSTI filter, argv/env integrity, network, file-system writes,
 * hidden paths and `rm -rf /`.
 */
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync, mkdirSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SystemTools } from "../../src/system/system-tools.js";
import { BwrapDriver, LAUNCH_SCRIPT } from "../../src/sandbox/bwrap-driver.js";
import type { SandboxSpec } from "../../src/sandbox/types.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";
import { canRunBwrap, run, scratch, spec } from "./pty-run.js";

const REPO = path.resolve(import.meta.dirname, "../..");

/** A listing hash (names, types, modes, sizes, mtimes) of a tree, to detect any change to it. */
function treeHash(root: string, depth = 8): string {
  const h = createHash("sha256");
  const walk = (p: string, d: number) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    h.update(`${p}\0${st.mode}\0${st.size}\0${st.mtimeMs}\0`);
    if (!st.isDirectory() || d === 0) return;
    let names: string[] = [];
    try {
      names = readdirSync(p).sort();
    } catch {
      return;
    }
    for (const n of names) walk(path.join(p, n), d - 1);
  };
  walk(root, depth);
  return h.digest("hex");
}

describe.skipIf(!canRunBwrap())("bwrap sandbox: isolation (real bwrap under node-pty)", () => {
  const area = scratch("agentgate-sbx-iso-");
  const driver = new BwrapDriver(new SystemTools());
  const pool = new UidPool({ first: 231000, last: 231999 });
  let n = 0;
  afterAll(() => area.remove());

  /** Prepares and runs `argv` in a fresh workspace under a pool uid. */
  async function sandboxed(argv: string[], over: Partial<SandboxSpec> = {}, deadlineMs?: number) {
    const uid = pool.acquire();
    const workspace = over.workspace ?? area.dir(`ws-${n++}`);
    try {
      const launch = driver.prepare(spec({ argv, workspace, uid, ...over }));
      return { uid, workspace, launch, ...(await run(launch, deadlineMs)) };
    } finally {
      pool.release(uid);
    }
  }

  it("runs as the pool's uid with no capabilities, no_new_privs, seccomp mode 2 and no nested user namespaces", async () => {
    const r = await sandboxed([
      "sh",
      "-c",
      'id -u; id -G; grep -E "^(CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status; ' +
        "unshare -U true 2>/dev/null || echo nested-userns-refused; hostname; echo cwd=$(pwd); sleep 0.2",
    ]);
    expect(r.exitCode).toBe(0);
    const lines = r.output.split(/\r?\n/);
    expect(lines[0]).toBe(String(r.uid));
    expect(lines[1]).toBe(String(r.uid)); // gid = uid, no supplementary groups
    expect(r.output).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.output).toMatch(/CapPrm:\s+0000000000000000/);
    expect(r.output).toMatch(/NoNewPrivs:\s+1/);
    expect(r.output).toMatch(/Seccomp:\s+2/);
    expect(r.output).toContain("nested-userns-refused");
    expect(r.output).toContain("sandbox\r\n");
    expect(r.output).toContain("cwd=/workspace");
  });

  it("TIOCSTI and TIOCLINUX fail with EPERM inside", async () => {
    const py = [
      "import fcntl, termios",
      "for name, req in (('TIOCSTI', termios.TIOCSTI), ('TIOCLINUX', 0x541C)):",
      "    try:",
      "        fcntl.ioctl(0, req, b'x')",
      "        print(name, 'allowed')",
      "    except OSError as e:",
      "        print(name, 'errno', e.errno)",
    ].join("\n");
    const r = await sandboxed(["python3", "-c", py]);
    expect(r.output).toContain("TIOCSTI errno 1");
    expect(r.output).toContain("TIOCLINUX errno 1");
    expect(r.output).not.toContain("allowed");
  });

  it("argv and env reach the program intact; the -c script holds none of it; the host env does not leak", async () => {
    const hostile = [
      "it's",
      'say "hi"',
      "$(touch /workspace/pwned)",
      "`id`",
      "a\nb\n",
      "; exit 9",
      "--help",
      "$HOME",
      "*",
      "",
      " lead",
    ];
    const weird = "x'y\"z $(id) `id` \\ \n end";
    const py =
      "import json, os, sys; json.dump({'argv': sys.argv[1:], 'weird': os.environ.get('WEIRD'), " +
      "'leak': os.environ.get('SECRET_FROM_HOST'), 'home': os.environ.get('HOME')}, open('/workspace/out.json', 'w'))";
    const uid = pool.acquire();
    const workspace = area.dir("ws-argv");
    try {
      const launch = driver.prepare(
        spec({ argv: ["python3", "-c", py, ...hostile], workspace, uid, env: { WEIRD: weird } }),
      );
      expect(launch.file).toBe("/bin/sh");
      expect(launch.args[1]).toBe(LAUNCH_SCRIPT);
      for (const h of hostile.filter((x) => x.trim())) expect(launch.args[1]).not.toContain(h);
      const r = await run({ ...launch, env: { ...launch.env, SECRET_FROM_HOST: "leaked" } });
      expect(r.exitCode).toBe(0);
      const got = JSON.parse(readFileSync(path.join(workspace, "out.json"), "utf8"));
      expect(got).toEqual({ argv: hostile, weird, leak: null, home: "/workspace" });
      expect(existsSync(path.join(workspace, "pwned"))).toBe(false);
    } finally {
      pool.release(uid);
    }
  });

  it("descriptors inherited by the launch do not reach the program", async () => {
    // A wrapper opens fd 7 without close-on-exec, as a parent of agentgate might leave one; bwrap passes
    // inherited fds through, and the foreground step must close them.
    const uid = pool.acquire();
    try {
      const launch = driver.prepare(
        spec({
          argv: ["python3", "-c", "import os; print('fds', sorted(int(f) for f in os.listdir('/proc/self/fd')))"],
          workspace: area.dir("ws-fds"),
          uid,
        }),
      );
      const r = await run({
        ...launch,
        file: "/bin/sh",
        args: ["-c", 'exec 7</etc/hostname; exec "$@"', "sh", launch.file, ...launch.args],
      });
      expect(r.output).toContain("fds [0, 1, 2, 3]"); // 3 is listdir's own
    } finally {
      pool.release(uid);
    }
  });

  it("no network unless allowed: a loopback server on the host is unreachable, then reachable with network", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const py = [
      "import socket",
      "print('ifaces', [n for _, n in socket.if_nameindex()])",
      "try:",
      `    socket.create_connection(('127.0.0.1', ${port}), timeout=3).close(); print('connected')`,
      "except OSError as e:",
      "    print('failed', type(e).__name__)",
    ].join("\n");
    try {
      const closed = await sandboxed(["python3", "-c", py]);
      expect(closed.output).toContain("failed ConnectionRefusedError");
      expect(closed.output).toContain("ifaces ['lo']");
      expect(connections).toBe(0);
      const open = await sandboxed(["python3", "-c", py], { network: true });
      expect(open.output).toContain("connected");
      expect(connections).toBe(1);
    } finally {
      server.close();
    }
  });

  it("writes outside /workspace fail; the workspace is writable and the writes land on the host", async () => {
    const r = await sandboxed([
      "sh",
      "-c",
      'for f in /x /usr/x /etc/x /bin/x /dev/x /proc/x /sys/x /etc/passwd; do (echo > "$f") 2>/dev/null && echo "WROTE $f" || echo "denied $f"; done; ' +
        "echo hello > /workspace/ok && echo ws-ok; sleep 0.2",
    ]);
    expect(r.output).not.toContain("WROTE");
    expect(r.output.match(/denied /g)).toHaveLength(8);
    expect(r.output).toContain("ws-ok");
    expect(readFileSync(path.join(r.workspace, "ok"), "utf8")).toBe("hello\n");
    expect(statSync(path.join(r.workspace, "ok")).uid).toBe(r.uid);
  });

  it("hidden paths, /root and home directories are not visible", async () => {
    const data = area.dir("data"); // agentgate's data directory (not bound: absent)
    writeFileSync(path.join(data, "secret"), "TOPSECRET-data\n");
    const workspace = area.dir("ws-hidden");
    mkdirSync(path.join(workspace, ".agentgate"));
    writeFileSync(path.join(workspace, ".agentgate", "secret"), "TOPSECRET-in-workspace\n");
    const extra = area.dir("extra"); // a read-only extra with a hidden file and directory in it
    writeFileSync(path.join(extra, "visible"), "CANARY-VISIBLE\n");
    writeFileSync(path.join(extra, "token"), "TOPSECRET-token\n");
    mkdirSync(path.join(extra, "keys"));
    writeFileSync(path.join(extra, "keys", "k"), "TOPSECRET-key\n");
    const script = [
      "test -e /root && echo ROOT-VISIBLE || echo no-root",
      "ls -A /home | grep -q . && echo HOME-NOT-EMPTY || echo home-empty",
      `cat ${data}/secret 2>/dev/null || echo data-absent`,
      "cat /workspace/.agentgate/secret 2>/dev/null || echo ws-data-hidden",
      "touch /workspace/.agentgate/x 2>/dev/null && echo WROTE-HIDDEN || echo hidden-read-only",
      `cat ${extra}/visible`,
      `cat ${extra}/token 2>/dev/null || echo token-hidden`,
      `cat ${extra}/keys/k 2>/dev/null || echo keys-hidden`,
      "ls -A /etc/ssl 2>/dev/null | grep -q . && echo SSL-VISIBLE || echo ssl-hidden",
      "sleep 0.2",
    ].join("; ");
    const r = await sandboxed(["sh", "-c", script], {
      workspace,
      readOnlyPaths: [extra],
      hiddenPaths: [
        data,
        path.join(workspace, ".agentgate"),
        path.join(extra, "token"),
        path.join(extra, "keys"),
        "/etc/ssl",
      ],
    });
    expect(r.output).not.toMatch(/TOPSECRET|ROOT-VISIBLE|HOME-NOT-EMPTY|WROTE|SSL-VISIBLE/);
    for (const s of ["no-root", "home-empty", "data-absent", "ws-data-hidden", "hidden-read-only", "CANARY-VISIBLE"]) {
      expect(r.output).toContain(s);
    }
    for (const s of ["token-hidden", "keys-hidden", "ssl-hidden"]) expect(r.output).toContain(s);
    // The hidden directory inside the workspace stays agentgate's on the host.
    expect(statSync(path.join(workspace, ".agentgate")).uid).toBe(0);
    expect(statSync(workspace).uid).toBe(r.uid);
  });

  it(
    "`rm -rf --no-preserve-root /` empties the workspace and leaves the host untouched",
    { timeout: 120_000 },
    async () => {
      const extra = area.dir("extra-rm");
      writeFileSync(path.join(extra, "canary"), "canary\n");
      const watched = [
        "/usr/bin",
        "/etc",
        extra,
        path.join(REPO, "node_modules", "node-pty"),
        path.join(REPO, "package.json"),
      ];
      const before = watched.map((p) => treeHash(p));
      const workspace = area.dir("ws-rm");
      mkdirSync(path.join(workspace, "sub", "deeper"), { recursive: true });
      writeFileSync(path.join(workspace, "a.txt"), "a");
      writeFileSync(path.join(workspace, "sub", "deeper", "b.txt"), "b");
      const r = await sandboxed(
        [
          "sh",
          "-c",
          "rm -rf --no-preserve-root / 2>/dev/null; echo rc=$?; echo left=$(ls -A /workspace | wc -l); sleep 0.2",
        ],
        { workspace, readOnlyPaths: [extra] },
        100_000,
      );
      expect(r.output).toContain("rc=1"); // rm reports the EROFS/EACCES failures
      expect(r.output).toContain("left=0");
      expect(readdirSync(workspace)).toEqual([]);
      expect(watched.map((p) => treeHash(p))).toEqual(before);
    },
  );
});
