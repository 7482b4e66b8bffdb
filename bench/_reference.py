"""The least a service of this shape can cost: the issue's own reference point, served for the benchmark.

A minimal FastAPI ``async def`` endpoint holding the fraud model's ``Booster`` in memory answers one
ready-made feature row (the ``dataframe_split`` body MLflow's server takes) with one ``Booster.predict`` on
one thread: no online features, no second model, no reason codes, no policy, no decision log, no
authentication. It runs under uvicorn with the event loop and HTTP parser of ``riskgate serve`` (uvloop,
httptools), so :mod:`bench.serving` measures, side by side with riskgate and MLflow, what Python, FastAPI
and uvicorn alone cost on this machine at each load: the floor under any full decision served this way.

Run by the benchmark as ``uvicorn --factory bench._reference:create_app`` with ``MLFLOW_TRACKING_URI`` set to
the store holding ``models:/riskgate-fraud@champion``.
"""

from __future__ import annotations

import os

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response

from serving.models import MODEL_NAMES

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"


def create_app() -> FastAPI:
    """The reference service over the fraud model ``@champion`` of the store in ``$MLFLOW_TRACKING_URI``."""
    from training.tracking import load_bundle, tracking_store  # noqa: PLC0415 - MLflow is slow to import

    uri = os.environ.get(TRACKING_URI_ENV)
    if not uri:
        raise RuntimeError(f"set {TRACKING_URI_ENV} to the tracking store holding the fraud model @champion")
    with tracking_store(uri) as client:
        booster = load_bundle(client, f"models:/{MODEL_NAMES['fraud']}@champion").booster
    app = FastAPI(title="riskgate benchmark reference: one Booster.predict behind FastAPI")

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        rows = np.asarray(orjson.loads(await request.body())["dataframe_split"]["data"], dtype=np.float64)
        predictions = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        return Response(orjson.dumps({"predictions": predictions.tolist()}), media_type="application/json")

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b"{}", media_type="application/json")

    return app
