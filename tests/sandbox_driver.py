"""Attacks on the grading sandbox, run from inside a real kernel.

tests/test_sandbox.py uses the attacks directly, and runs this file as a script under an
unprivileged uid (the non-root modes cannot be had otherwise when the tests run as root):

    python sandbox_driver.py CONFIG_JSON

CONFIG_JSON names a Jupyter data dir to install kernelspecs in, the limits of each mode to
attack, and the target: the kernel's mounts, env and working dir, and the files to attack.
For each mode it starts the sandbox kernel, runs the attacks and looks at what they left on
the host; it prints one line of JSON with all of it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SYSTEM = ["/", "/dev", "/etc", "/usr/lib"]  # folders no kernel may write in

# Helpers defined in the kernel before each attack.
HELPERS = r'''
import errno, json, os, stat, sys

def _outcome(action, *args):
    """'ok', or the errno name of the OSError the action raised."""
    try:
        action(*args)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def _read(path):
    with open(path, "rb") as f:
        f.read()

def _append(path):
    with open(path, "ab") as f:
        f.write(b"# written by the sandboxed kernel\n")

def _plant(directory):
    with open(os.path.join(directory, "planted-by-kernel"), "x") as f:
        f.write("x")
'''

# Every way to a secret file: by path, through /proc's views of other processes' roots
# and working dirs, by listing FOLDERS; then everything readable that is not the system or
# Python itself is searched for the secrets' contents.
READ_ATTACK = r'''
found, reads, skip = [], {}, {"/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix}
for path in SECRETS:
    rel = os.path.relpath(path, os.getcwd())
    for way in (path, "/proc/1/root" + path, "/proc/self/root" + path, "/proc/1/cwd/" + rel,
                "/proc/self/cwd/" + rel):
        reads[way] = _outcome(_read, way)
for folder in FOLDERS:
    reads[folder + "/"] = _outcome(os.listdir, folder)
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
    for name in files:
        try:
            if not stat.S_ISREG(os.stat(os.path.join(top, name)).st_mode):
                continue  # a socket or FIFO
            with open(os.path.join(top, name), "rb") as f:
                data = f.read(2**20)
        except OSError:
            continue
        found += [os.path.join(top, name) for s in SECRETS.values() if s.encode() in data]
print(json.dumps(dict(reads=reads, found=found,
                      root=sorted(os.listdir("/root")) if os.path.isdir("/root") else [])))
'''

# Writes that must fail (VICTIMS: files; SEALED: folders, and the system's), writes that
# must work without reaching the host (in the working dir), and writes to the folders that
# the WRITABLE environment variables name (writable mounts), which must reach it.
WRITE_ATTACK = r'''
print(json.dumps(dict(
    append={p: _outcome(_append, p) for p in VICTIMS},
    unlink={p: _outcome(os.unlink, p) for p in VICTIMS},
    plant={d: _outcome(_plant, d) for d in SEALED + SYSTEM + [sys.prefix]},
    cwd=[_outcome(_plant, "."), _outcome(os.symlink, "/etc/passwd", "planted-link")],
    writable=[_outcome(_plant, os.environ[v]) for v in WRITABLE])))
'''

# /proc/self/environ: the environment the kernel started with, before IPython added to it.
IDENTITY = r'''
import json, os
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
start_env = dict(v.split("=", 1) for v in open("/proc/self/environ").read().split("\0") if v)
print(json.dumps(dict(uid=os.getuid(), gid=os.getgid(), cwd=os.getcwd(), env=dict(os.environ), start_env=start_env,
                      caps={k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")})))
'''

IMPORTS = r'''
import importlib, json
outcome = {}
for name in ("jenalab", "jenalab.sandbox", "grader_tests", "grader_tests.collect"):
    try:
        importlib.import_module(name)
        outcome[name] = "imported"
    except ImportError as e:
        outcome[name] = type(e).__name__
print(json.dumps(outcome))
'''

FORK_BOMB = r'''
import json, os, signal
pids, error = [], None
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        pids.append(pid)
except OSError as e:
    error = type(e).__name__
for pid in pids:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(json.dumps([len(pids), error]))
'''


def read_attack(secrets: dict[str, str], folders: list[str]) -> str:
    """Code looking for secrets ({host path: a string only that file holds}) and folders."""
    return f"{HELPERS}\nSECRETS, FOLDERS = {secrets!r}, {folders!r}\n{READ_ATTACK}"


def write_attack(victims: list[str], sealed: list[str], writable: list[str]) -> str:
    return (f"{HELPERS}\nVICTIMS, SEALED, SYSTEM, WRITABLE = {victims!r}, {sealed!r}, {SYSTEM!r}, {writable!r}\n"
            f"{WRITE_ATTACK}")


def host_traces(target: dict) -> dict:
    """What the attacks left on the host: the victims' contents (None: gone), planted files
    and what the writable mount holds."""
    sealed = [*target["sealed"], *SYSTEM, sys.prefix, target["cwd"]]
    return dict(victims={p: Path(p).read_text() if os.path.isfile(p) else None for p in target["victims"]},
                planted=[p for p in (*(os.path.join(d, "planted-by-kernel") for d in sealed),
                                     os.path.join(target["cwd"], "planted-link")) if os.path.lexists(p)],
                written=sorted(os.listdir(target["rw"])))


def run(kc, code: str, timeout: float = 60) -> tuple[str, str | None]:
    """Execute code; return (stdout, name of the error or None)."""
    out, errors = [], []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(msg["content"]["ename"])

    kc.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
    return "".join(out), (errors[0] if errors else None)


def value(kc, code: str):
    """Run code whose last line prints JSON; return the parsed value (fails on error)."""
    out, error = run(kc, code)
    assert error is None, (error, out)
    return json.loads(out.strip().splitlines()[-1])


def start_kernel(jupyter_dir: str, cwd: str):
    """A started, ready kernel client of the sandbox kernelspec installed in jupyter_dir."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    from jenalab.sandbox import KERNEL_NAME

    km = KernelManager(kernel_name=KERNEL_NAME,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[f"{jupyter_dir}/kernels"]))
    km.start_kernel(cwd=cwd)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except BaseException:
        stop_kernel(km, kc)
        raise
    return km, kc


def stop_kernel(km, kc) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def attack(target: dict, jupyter_dir: str, limits: dict) -> dict:
    """Everything the attacks find in a kernel with these limits, and leave on the host."""
    from jenalab.sandbox import Mount, SandboxLimits, active_protections, filesystem_isolated, install_kernelspec

    limits = SandboxLimits(**limits)
    install_kernelspec(jupyter_dir, limits, [Mount(**m) for m in target["mounts"]], target["env"])
    km, kc = start_kernel(jupyter_dir, target["cwd"])
    try:
        result = dict(protections=active_protections(limits), isolated=filesystem_isolated(limits),
                      identity=value(kc, IDENTITY), imports=value(kc, IMPORTS),
                      writes=value(kc, write_attack(target["victims"], target["sealed"], target["writable"])))
        if result["isolated"]:  # without isolation the search would read the whole host
            result["reads"] = value(kc, read_attack(target["secrets"], target["folders"]))
            result["fork"] = value(kc, FORK_BOMB)
    finally:
        stop_kernel(km, kc)
    return {**result, "host": host_traces(target)}


def main() -> None:
    config = json.loads(sys.argv[1])
    print(json.dumps({name: attack(config["target"], os.path.join(config["jupyter_dir"], name), limits)
                      for name, limits in config["modes"].items()}))


if __name__ == "__main__":
    main()
