"""The web page that reads a digit you draw or upload, and its JSON API: ``make app`` (or
``python -m mnist_utils.app``) serves it on http://127.0.0.1:8000.

    GET  /                          the page: a canvas to draw on, an upload button, the answer
    GET  /api/models                every saved model, which one is the default, and those left out (why)
    POST /api/predict?model=NAME    body: the picture's bytes (PNG, JPEG, ...); answer: the digit, its
                                    confidence, the top 3 and the 28×28 image the model saw

The picture is sent as the request body itself, not as a multipart form: it is read into memory, capped at
5 MB while it streams in, and never written to disk (a multipart parser spools large uploads to temporary
files). Bad input is answered with a 4xx status and ``{"error": message}``, which the page shows.
"""
from __future__ import annotations

import argparse
import base64
import errno
import os
import socket
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from .checkpoints import (DEFAULT_ARCHITECTURE, CheckpointError, default_checkpoint, list_checkpoints, make_command,
                          models_dir, train_one)
from .classifier import Classifier, trained_with
from .commands import CommandParser, environment_help, user_path
from .preprocess import MAX_BYTES, ImageError, pixels_png, preprocess

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000

# HTTP status for each kind of bad picture.
STATUS = {"empty": 400, "blank": 422, "too_small": 422, "not_image": 415, "too_large": 413, "too_many_pixels": 413}


def _folder_stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a file in `directory` is added, removed or rewritten: each one's name, time and size."""
    stamp = []
    for entry in os.scandir(directory):
        try:
            info = entry.stat()
        except OSError:  # removed as the folder was read, or a broken link: the listing says what it is
            continue
        stamp.append((entry.name, info.st_mtime_ns, info.st_size))
    return tuple(sorted(stamp))


class ModelShelf:
    """The checkpoints of one folder, listed afresh when the folder changes, each loaded once on first use."""

    def __init__(self, directory: Path, device: torch.device):
        self.directory = directory
        self.device = device
        self._lock = threading.Lock()
        self._stamp: tuple | None = None  # the folder's files as last listed (`_folder_stamp`)
        self._models: list[dict[str, Any]] = []  # their metadata, best first
        self._skipped: list[dict[str, str]] = []  # those left out, with why
        self._loaded: dict[str, tuple[dict[str, Any], Classifier]] = {}  # id → (metadata as listed, classifier)

    def listing(self) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Every checkpoint's metadata, best first, and those left out with what is wrong with each ({"id",
        "problem"}), from one read; re-read (and each file hashed again) only when a file in the folder is added,
        removed or changed: saving a checkpoint replaces its files, copying one over another rewrites it."""
        try:
            stamp = _folder_stamp(self.directory)
        except (FileNotFoundError, NotADirectoryError):  # `main` refuses a file; one may take the folder's place later
            return [], []
        with self._lock:
            if self._stamp != stamp:
                skipped: list[dict[str, str]] = []
                # each file hashed: one replaced by another of its size is left out, not served and refused
                self._models = list_checkpoints(self.directory, skipped, verify=True)
                self._stamp, self._skipped = stamp, skipped
            return self._models, self._skipped

    def get(self, model_id: str | None) -> Classifier:
        """The classifier of checkpoint `model_id` (the default when None); a LookupError for an unknown one."""
        listing, skipped = self.listing()
        named = next((m for m in listing if m["id"] == model_id), None)
        chosen = named if model_id else default_checkpoint(listing)
        broken = next((s["problem"] for s in skipped if s["id"] == model_id), None)
        if chosen is None and broken:
            raise LookupError(f"Model {model_id!r} cannot be loaded: {broken}")
        if chosen is None:
            known = ", ".join(m["id"] for m in listing) or f"none: {self.directory} holds no checkpoint"
            raise LookupError(f"No model {model_id!r}. Choose one of: {known}." if model_id else
                              f"No model saved in {self.directory}: train one with {make_command('app')} or "
                              f"{train_one()}.")
        with self._lock:
            cached = self._loaded.get(chosen["id"])
            if cached is None or cached[0] != chosen:  # new weights or metadata (its normalisation, say) under the name
                cached = (chosen, Classifier.load(chosen["path"], self.device))
                self._loaded[chosen["id"]] = cached
            return cached[1]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past `limit` bytes (the rest is never read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdecimal() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _summary(meta: dict[str, Any], default_id: str | None) -> dict[str, Any]:
    return {"id": meta["id"], "title": meta["title"], "model": meta["model"]["name"],
            "parameters": meta["parameters"], "test_acc": meta["metrics"].get("test_acc"), "epochs": meta.get("epochs"),
            "seed": meta.get("seed"), "source": meta.get("source"), "saved": meta.get("saved"),
            "label_smoothing": trained_with(meta, "label_smoothing"),  # the page says why such a model is less sure
            "default": meta["id"] == default_id}


def create_app(directory: Path | str | None = None, *, device: torch.device | str = "cpu") -> FastAPI:
    """The page and its API over the checkpoints in `directory` (default reports/models)."""
    shelf = ModelShelf(Path(directory or models_dir()), torch.device(device))
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    app = FastAPI(title="MNIST digit reader", docs_url="/api/docs", redoc_url=None)
    app.state.shelf = shelf  # what it serves: `main` lists it at start, so each file left out is logged once

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # An unknown path or method answers as every other refusal does, {"error": message}, not {"detail": ...}
        return JSONResponse({"error": f"{error.detail}: {request.method} {request.url.path}"},
                            status_code=error.status_code, headers=getattr(error, "headers", None))

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)  # HEAD: what uptime checks ask
    def index() -> str:
        return page

    @app.api_route("/api/models", methods=["GET", "HEAD"])  # HEAD: a health check of the API, as of the page
    def api_models() -> dict[str, Any]:
        listing, skipped = shelf.listing()
        default = default_checkpoint(listing)
        default_id = default["id"] if default else None
        return {"default": default_id, "models": [_summary(m, default_id) for m in listing],
                "skipped": skipped}  # the checkpoints left out, and why: a file broken, say

    @app.post("/api/predict")
    async def api_predict(request: Request, model: str | None = None) -> Any:
        start, content_type = time.perf_counter(), request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/"):
            return _error(415, "Send the picture as the request body itself, not as a form: e.g. curl "
                               "--data-binary @digit.png -H 'Content-Type: image/png' .../api/predict")
        try:
            data = await _read_body(request, MAX_BYTES)  # preprocess checks the same limit of a body read whole
        except ClientDisconnect:  # the sender left part-way through its upload: nobody to answer, nothing to log
            return Response(status_code=400)
        if data is None:
            return _error(413, f"The image is larger than the {MAX_BYTES / 2**20:.0f} MB allowed: "
                               "crop or scale it down.")
        try:
            classifier = await run_in_threadpool(shelf.get, model)
            digit, answer = await run_in_threadpool(_classify, classifier, data)
        except ImageError as error:
            if error.kind == "not_image" and content_type.startswith("application/x-www-form-urlencoded"):
                return _error(415, f"{error} Sent as form text (curl -d), a file loses its line breaks: send its "
                                   "bytes as they are, e.g. curl --data-binary @digit.png .../api/predict")
            return _error(STATUS[error.kind], str(error))
        except LookupError as error:
            return _error(404, str(error))
        except CheckpointError as error:  # a file changed or broke since it was listed
            return _error(409, str(error))
        return {**answer, "model": classifier.metadata["id"], "inverted": digit.inverted,
                "source_size": list(digit.source_size),
                "image": "data:image/png;base64," + base64.b64encode(pixels_png(digit.pixels)).decode(),
                "milliseconds": round(1000 * (time.perf_counter() - start), 2)}

    return app


def _classify(classifier: Classifier, data: bytes):
    digit = preprocess(data)
    return digit, classifier.answers(digit.pixels[None])[0]


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535, from the command line or $PORT."""
    if not text.strip().isdecimal() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give a number from 1 to 65535, e.g. 8000")
    return int(text)


def serving_problem(host: str, port: int) -> tuple[str, str] | None:
    """Why `host`:`port` cannot be served on and what to do, (reason, fix), or None: asked before the page says it
    serves there. An address this machine does not have, or a name that does not resolve, is the host's fault; any
    other (in use, say) the port's."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        if os.name != "nt":  # as the server binds; on Windows the option would let two programs share a port
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = error.strerror or str(error)
            if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
                return reason, "check the host (HOST=127.0.0.1 serves this machine only, 0.0.0.0 every network)"
            other = DEFAULT_PORT if port != DEFAULT_PORT else DEFAULT_PORT + 1
            return reason, f"choose another port (e.g. `make app PORT={other}`), or check the host"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python -m mnist_utils.app", description=__doc__.split("\n\n")[0],
                           epilog=environment_help())
    parser.add_argument("--host", default=os.environ.get("HOST", DEFAULT_HOST),
                        help=f"the address to serve on (default: $HOST, else {DEFAULT_HOST}, this machine only; "
                             "0.0.0.0 serves other machines too)")
    parser.add_argument("--port", type=port_number, help=f"default: $PORT, else {DEFAULT_PORT}")
    parser.add_argument("--models", type=user_path, help="folder of checkpoints (default: REPORTS/models)")
    parser.add_argument("--check", action="store_true",
                        help="only say whether a Step 3 model (Model_3) is saved: exit status 0 if so, 1 if not")
    args = parser.parse_args(argv)
    if args.port is None:  # read here, where --port is not given, so that a bad one is named as what it is
        try:
            args.port = port_number(os.environ.get("PORT", str(DEFAULT_PORT)))
        except argparse.ArgumentTypeError as error:
            parser.error(f"the environment's PORT: {error} (or unset PORT)")
    directory = args.models or models_dir()
    if directory.exists() and not directory.is_dir():
        fix = "give --models the folder that holds them" if args.models else "move that file away"
        parser.error(f"{directory} is a file, not a folder of checkpoints: {fix}")
    app = create_app(directory)
    listing, _ = app.state.shelf.listing()  # none where the folder is not there
    if args.check:
        return 0 if any(m["model"]["name"] == DEFAULT_ARCHITECTURE for m in listing) else 1
    if not listing:
        fix = (f"{make_command('app')} trains one, or {train_one()}" if args.models is None else  # serves the default
               f"train one with {train_one()} and copy its .safetensors and .json there, or leave --models out")
        print(f"error: no saved model in {directory}: {fix}.", file=sys.stderr)
        return 2
    if (problem := serving_problem(args.host, args.port)) is not None:
        reason, fix = problem
        print(f"error: cannot serve on {args.host}:{args.port} ({reason}): {fix}.", file=sys.stderr)
        return 2
    import uvicorn

    # One thread per prediction: requests are many and small, so they run side by side rather than each
    # splitting a tiny convolution over every core.
    torch.set_num_threads(1)
    print(f"Serving {len(listing)} model(s) from {directory} on http://{args.host}:{args.port} (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
