"""The least a service of this shape can cost: the issue's own reference point, served for the benchmark.

A minimal FastAPI ``async def`` endpoint holding the fraud model's ``Booster`` in memory answers one
ready-made feature row (the ``dataframe_split`` body MLflow's server takes) with one ``Booster.predict`` on
one thread: no online features, no second model, no reason codes, no policy, no decision log, no
authentication. It runs under uvicorn with the event loop and HTTP parser of ``riskgate serve`` (uvloop,
httptools), so :mod:`bench.serving` measures, side by side with riskgate and MLflow, what Python, FastAPI
and uvicorn alone cost on this machine at each load: the floor under any full decision served this way.

Run by the benchmark as ``uvicorn --factory bench._reference:create_app`` (and ``create_asgi_app``, the
same without FastAPI) with ``MLFLOW_TRACKING_URI`` set to
the store holding ``models:/riskgate-fraud@champion``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

from registry.names import MODEL_NAMES

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
_JSON = [(b"content-type", b"application/json")]


def predictor() -> Callable[[bytes], bytes]:
    """Body in, body out: the fraud ``@champion`` Booster (of the store in ``$MLFLOW_TRACKING_URI``) held in
    memory, predicting the rows of a ``dataframe_split`` body on one thread."""
    from registry.store import load_bundle, tracking_store  # noqa: PLC0415 - MLflow is slow to import

    uri = os.environ.get(TRACKING_URI_ENV)
    if not uri:
        raise RuntimeError(f"set {TRACKING_URI_ENV} to the tracking store holding the fraud model @champion")
    with tracking_store(uri) as client:
        booster = load_bundle(client, f"models:/{MODEL_NAMES['fraud']}@champion").booster

    def predict(body: bytes) -> bytes:
        rows = np.asarray(orjson.loads(body)["dataframe_split"]["data"], dtype=np.float64)
        predictions = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        return orjson.dumps({"predictions": predictions.tolist()})

    return predict


def create_app() -> FastAPI:
    """The issue's reference: a FastAPI ``async def`` endpoint (``POST /invocations``, ``GET /ping``)."""
    predict = predictor()
    app = FastAPI(title="riskgate benchmark reference: one Booster.predict behind FastAPI")

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        return Response(predict(await request.body()), media_type="application/json")

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def create_asgi_app() -> Callable[..., Any]:
    """The same two routes as a bare ASGI callable: no framework at all between uvicorn and the Booster (the
    least this stack can do per request; riskgate's own ``POST /v1/score`` runs on such a handler too)."""
    predict = predictor()

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":  # nothing to set up or tear down
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = b"{}" if scope["path"] == "/ping" else predict(body)
        headers = [*_JSON, (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app
