"""The benchmark's second baseline: the server core before issue 13, uvicorn, running the same app.

The inference app is an ASGI app, so uvicorn (httptools + uvloop, as the server ran until it got its own
HTTP layer) can serve it unchanged. This script forks ``--workers`` workers on one shared socket, as the
real supervisor does, so that the two cores differ in nothing but the HTTP layer:

    SM_MODEL_DIR=<dir> python benchmarks/uvicorn_core.py --port 0 --workers 2

It binds the port itself (0: any free one) and prints ``listening on port N`` before the workers start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference_image"))

import uvicorn
import uvloop
from sklearn_server.app import InferenceApp
from sklearn_server.config import ServerConfig
from sklearn_server.model import find_model_file, load_model
from sklearn_server.supervisor import bind


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    config = ServerConfig.from_env()
    model = load_model(find_model_file(config.model_dir), config)
    listener = bind(args.port)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    workers = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            app = InferenceApp(config)
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    http="httptools",
                    loop="none",
                    lifespan="off",
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    timeout_keep_alive=75,
                )
            )

            async def serve(app: InferenceApp = app, server: uvicorn.Server = server) -> None:
                app.model_loaded(model)
                await server.serve(sockets=[listener])

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve())
            os._exit(0)
        workers.append(pid)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    for pid in workers:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    sys.exit(main())
