"""`python app.py` as a real server for the tests: a free port, started, waited for, stopped."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = os.environ.get("VIT_DATA_DIR", str(ROOT.parent / "shared" / "data"))  # the Train tab's pictures
QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "VIT_MODELS": "", "NO_PROXY": "127.0.0.1,localhost",
         "VIT_DATA_DIR": DATA_DIR}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Poll the app until it answers; fail with the app's own output if it exits or never answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never through a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with opener.open(url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


@contextmanager
def running_app(weights_dir: Path, log: Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
    """`python app.py --weights-dir weights_dir` until the block ends; yields (url, process).

    `env` replaces the environment (default: this one with QUIET); `prefix` runs it through another command (nice).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as output:
        process = subprocess.Popen([*prefix, sys.executable, str(ROOT / "app.py"), "--port", str(port),
                                    "--weights-dir", str(weights_dir)], cwd=ROOT, env=env or os.environ | QUIET,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_up(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
