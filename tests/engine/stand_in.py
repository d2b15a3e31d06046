"""A stand-in for vLLM's server, for the tests of how vLLM is started, watched and stopped: it starts in a
blink, answers /health, and can be made to hang, or to have a worker of its own as vLLM has its engine
core."""

import sys
from dataclasses import dataclass
from pathlib import Path

from ragserve.engine.vllm_process import VllmSpec

__all__ = ["StandInSpec"]

# argv: port, a file whose existence makes every request hang, and a notes file ("" for none). With notes, it
# starts a worker and writes its pid there; on SIGTERM it stops the worker, notes it, and exits with code 3.
_SERVER = """
import http.server, os, pathlib, signal, subprocess, sys, time
port, hang_flag, notes = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if notes:
    notes = pathlib.Path(notes)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    notes.write_text(f"worker {worker.pid}\\n")
    def stop(sig, frame):
        worker.terminate()
        worker.wait()
        with notes.open("a") as f:
            f.write(f"stopped on {signal.Signals(sig).name}\\n")
        sys.exit(3)
    signal.signal(signal.SIGTERM, stop)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        while os.path.exists(hang_flag):
            time.sleep(0.05)
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@dataclass(frozen=True)
class StandInSpec(VllmSpec):
    hang_flag: Path = Path("/nonexistent")
    notes: Path | None = None

    def command(self) -> list[str]:
        notes = str(self.notes) if self.notes is not None else ""
        return [sys.executable, "-c", _SERVER, str(self.port), str(self.hang_flag), notes]
