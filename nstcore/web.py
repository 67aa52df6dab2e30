"""The local web pages: watch a run as it forms (``nstcore run --web``) and start runs from the
browser (``nstcore serve``).

Built on Starlette (routing, uploads, responses) served by uvicorn in a background thread, with
server-sent events (sse-starlette) for the updates; the pages are plain HTML, CSS and a little
JavaScript shipped in ``nstcore/webpage`` (no build step). Everything is optional
(``pip install "nstcore[web]"``) and imported only when a page is asked for.

Safe by default: the server binds to 127.0.0.1 unless told otherwise; uploads are read like any
input (size, decompression bombs, format) and stored under the output folder with generated
names, so no path from the client is ever used as a path.
"""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from nstcore.errors import InputError

PAGES = Path(__file__).resolve().parent / "webpage"
LOOPBACK = "127.0.0.1"
WEB_HINT = 'the web pages need nstcore[web]: pip install "nstcore[web]"'


def require_web() -> None:
    """Refuse in one line, before any work, when the web extra is not installed."""
    try:
        import sse_starlette  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError(WEB_HINT) from None


def parse_address(text: str | None, default_port: int = 0) -> tuple[str, int]:
    """``[HOST:]PORT`` (or empty) as (host, port); host 127.0.0.1 and port ``default_port`` (0:
    a free one) when not given."""
    text = (text or "").strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or LOOPBACK
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(f"--web takes [HOST:]PORT with a port from 0 to 65535, got '{text}'")
    return host, int(port_text)


def exposure_warning(host: str) -> str | None:
    """One line when ``host`` is not loopback: the page (and the images) is then reachable from
    other machines, with no password."""
    if host in (LOOPBACK, "localhost", "::1") or host.startswith("127."):
        return None
    return (f"binding to {host} exposes this page, its images and (for serve) the power to start"
            " runs to every machine that can reach this one; there is no password")


class Server:
    """A uvicorn server for ``app`` on (host, port) in a daemon thread; port 0 takes a free one."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(128)  # connections wait in the backlog until uvicorn serves them
        except OSError as exc:
            self.socket.close()
            raise InputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = host, self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="nstcore-web", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "Server":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


# -- the pages ------------------------------------------------------------------------------------
def run_routes(find: Callable[[str], Any]) -> list:
    """The routes of a run's page, shared by ``run --web`` and ``serve``; ``find(run_id)`` gives
    the :class:`nstcore.live.LiveRun` or None."""
    import anyio
    from sse_starlette.sse import EventSourceResponse
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    def live(request: Any) -> Any:
        run = find(request.path_params["run_id"])
        if run is None:
            raise HTTPException(404, "no such run")
        return run

    async def page(request: Any) -> Any:
        live(request)
        return FileResponse(PAGES / "run.html", media_type="text/html")

    async def snapshot(request: Any) -> Any:
        return JSONResponse(live(request).snapshot())

    async def events(request: Any) -> Any:
        run = live(request)
        after = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)

        async def stream():
            nonlocal after
            while True:
                if await request.is_disconnected():
                    return
                batch = await anyio.to_thread.run_sync(run.events, after, 1.0)
                for event in batch:
                    after = event["id"]
                    yield {"id": str(event["id"]), "event": event["type"], "data": json.dumps(event)}
                if run.done and not batch:
                    return  # the page has it all; it reconnects only to a live run

        return EventSourceResponse(stream(), ping=10)

    async def picture(request: Any) -> Any:
        data = await anyio.to_thread.run_sync(live(request).picture_jpeg)
        if data is None:
            raise HTTPException(404, "no picture yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def input_image(request: Any) -> Any:
        path = live(request).inputs.get(request.path_params["name"])
        if path is None:
            raise HTTPException(404, "no such input")
        return FileResponse(path)

    async def output(request: Any) -> Any:
        run = live(request)
        if run.output is None or not run.output.is_file():
            raise HTTPException(404, "the run has written no picture yet")
        return FileResponse(run.output, filename=run.output.name)

    return [Route("/runs/{run_id}", page), Route("/api/runs/{run_id}", snapshot),
            Route("/api/runs/{run_id}/events", events), Route("/api/runs/{run_id}/picture", picture),
            Route("/api/runs/{run_id}/inputs/{name}", input_image),
            Route("/api/runs/{run_id}/output", output)]


def static_routes() -> list:
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    return [Mount("/static", StaticFiles(directory=PAGES), name="static")]


def live_app(run: Any) -> Any:
    """The app of ``nstcore run --web``: one run's page at / (and at /runs/ID)."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    async def home(request: Any) -> Any:
        return RedirectResponse(f"/runs/{run.id}")

    routes = [Route("/", home), *run_routes(lambda run_id: run if run_id == run.id else None),
              *static_routes()]
    return Starlette(routes=routes)


def serve_app(studio: Any) -> Any:
    """The app of ``nstcore serve``: start runs from the browser, watch them, see past results."""
    import anyio
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    from nstcore.studio import FORM_OPTIONS, MAX_UPLOAD_BYTES

    async def home(request: Any) -> Any:
        return FileResponse(PAGES / "serve.html", media_type="text/html")

    async def listing(request: Any) -> Any:
        return JSONResponse(await anyio.to_thread.run_sync(studio.listing))

    async def start(request: Any) -> Any:
        try:
            async with request.form(max_files=16, max_fields=64,
                                    max_part_size=MAX_UPLOAD_BYTES) as form:
                content = await _image_field(form, "content", "the content image")
                uploads = [upload for upload in form.getlist("styles")
                           if getattr(upload, "filename", None)]
                styles = [await _store(upload, f"style image {index}")
                          for index, upload in enumerate(uploads, 1)]
                styles += [name for name in form.getlist("style_ref") if name]
                options = {key: form.get(key) for key in FORM_OPTIONS if form.get(key)}
                names = [getattr(form.get("content"), "filename", None) or content,
                         *[u.filename for u in uploads], *form.getlist("style_ref")]
            title = f"{names[0]} x {', '.join(map(str, names[1:]))}"
            live = await anyio.to_thread.run_sync(studio.submit, content, styles, options, title)
        except InputError as exc:
            return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)
        except Exception as exc:  # a malformed form: one line, never a traceback
            return JSONResponse({"error": f"the form could not be read: {type(exc).__name__}"},
                                status_code=400)
        return JSONResponse({"id": live.id, "url": f"/runs/{live.id}"}, status_code=201)

    async def _image_field(form: Any, field: str, label: str) -> str:
        upload = form.get(field)
        if upload is not None and getattr(upload, "filename", None):
            return await _store(upload, label)
        reference = form.get(f"{field}_ref")
        if not reference:
            raise InputError(f"choose {label}")
        return str(reference)

    async def _store(upload: Any, label: str) -> str:
        chunks = []
        while True:
            chunk = await upload.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_UPLOAD_BYTES:
                break  # store_upload refuses it with the size in the message
        return await anyio.to_thread.run_sync(studio.store_upload, chunks, label)

    async def upload(request: Any) -> Any:
        try:
            return FileResponse(studio.upload_path(request.path_params["name"]))
        except InputError:
            raise HTTPException(404, "no such upload") from None

    routes = [Route("/", home), Route("/api/runs", listing, methods=["GET"]),
              Route("/api/runs", start, methods=["POST"]),
              Route("/api/uploads/{name}", upload),
              *run_routes(studio.find), *static_routes()]
    return Starlette(routes=routes)
