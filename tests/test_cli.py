"""The `cim` command's own behaviour: one-line usage errors with exit code 2, help with 0, a busy port refused
before any work. No database: each of these fails (or helps) before one is started."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

CIM = [sys.executable, "-m", "services.cli"]
HELP = "(see python -m services.cli"


def cim(*args: str, home) -> subprocess.CompletedProcess:
    # timeout: a check that misses would start a database and a server instead of failing
    env = {**os.environ, "CIM_HOME": str(home)}
    env.pop("CIM_DATABASE_URL", None)
    return subprocess.run(CIM + list(args), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, line", [
    (["demo", "--scale", "abc"], "error: --scale: input should be a valid number, unable to parse string as a "
                                 f"number, got 'abc' {HELP} demo --help)"),
    (["tiles", "build", "--nope"], f"error: no such option: --nope {HELP} tiles build --help)"),
    (["tiles", "bild"], f"error: no such command 'bild'. Did you mean 'build'? {HELP} tiles --help)"),
    (["import", "gis"], f"error: missing argument 'files' {HELP} import gis --help)"),
    (["serve", "--workers", "0"], "error: --workers: input should be greater than or equal to 1, got '0' "
                                  f"{HELP} serve --help)"),
])
def test_a_usage_error_is_one_line_naming_the_parameter(args, line, tmp_path):
    out = cim(*args, home=tmp_path)
    assert (out.returncode, out.stderr.splitlines(), out.stdout) == (2, [line], "")


@pytest.mark.parametrize("args", [["--help"], [], ["tiles"], ["demo", "--help"]])
def test_help_exits_0(args, tmp_path):
    out = cim(*args, home=tmp_path)
    assert (out.returncode, out.stderr) == (0, "")
    assert "Usage:" in out.stdout and "Example" in out.stdout


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_is_refused_before_any_work(command, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = cim(command, "--port", str(port), home=tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another server?); choose another with --port"]
    assert list(tmp_path.iterdir()) == []  # no database started, nothing generated
