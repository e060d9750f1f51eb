"""The common way to serve a model: FastAPI + uvicorn, one session.run per request, no batching.

Run: MODEL=path.onnx [DEVICE=cuda:0] uvicorn bench.naive_server:app --port 8100
It takes the same V2 JSON body as FlashML so the load generator sends identical requests.
"""

from __future__ import annotations

import os

import numpy as np
from fastapi import FastAPI, Request

from bench import raw_ort

# Without spinning threads, as raw_ort measures (fairer: spinning hurts it, NOTES.md).
session = raw_ort.session(os.environ["MODEL"], os.environ.get("DEVICE", "cpu"))
out_names = [o.name for o in session.get_outputs()]
app = FastAPI()


@app.post("/v2/models/{model}/infer")
async def infer(model: str, request: Request) -> dict:
    body = await request.json()
    feeds = {t["name"]: np.asarray(t["data"], dtype=np.float32).reshape(t["shape"]) for t in body["inputs"]}
    outs = session.run(out_names, feeds)
    return {"model_name": model, "outputs": [
        {"name": n, "datatype": "FP32", "shape": list(o.shape), "data": o.ravel().tolist()}
        for n, o in zip(out_names, outs, strict=False)]}
