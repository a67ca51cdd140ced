"""The pad's model in the page: the weights the page reads while the pen moves, and the script that reads them.

The page runs the same weights as the server, sent as a safetensors file: its header is JSON and its tensors are
raw little-endian float32, which a page reads with a DataView and a Float32Array, so no runtime has to be
downloaded (onnxruntime-web's smallest WebAssembly file is 14.8 MB; the default model's weights are 0.8 MB). The
metadata carries what the page needs besides the tensors: the config, the calibration temperature, the framing of
the model's dataset, the class names, and the "not a digit" limits and the confidence under which an answer is
unsure, so that the page's verdict is the server's. Fixed position codes (sinusoidal, none) travel as a tensor too,
so the page adds positions one way for every model.

The page gets them from the app itself at `pad/model/NAME` (WEIGHTS_PATH), for a served model or a visitor's own
(whose name only that visitor knows); the script is tabs/pad_model.js, which the pad's own (tabs/pad.py) runs in a
Web Worker.
"""

import dataclasses
import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

from safetensors.torch import save
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from vit import novelty
from vit.answer import SURE
from vit.bundle import ModelBundle
from vit.registry import bundle, is_known

SCRIPT = (Path(__file__).with_name("pad_model.js")).read_text()
WEIGHTS_PATH = "pad/model/{name}"
MEDIA_TYPE = "application/octet-stream"
KEPT = 32  # encoded models kept: under 1 MB each for the models here

_encoded: OrderedDict[tuple[str, int], bytes] = OrderedDict()


def page_weights(chosen: ModelBundle) -> bytes:
    """The model as the page reads it: a safetensors file of its float32 tensors (positions included) with the
    config, temperature, framing and class names in its metadata. Kept for the models asked for last."""
    key = (chosen.name, id(chosen.model))  # the model too: a name can come back with other weights
    if key not in _encoded:
        _encoded[key] = _encode(chosen)
        while len(_encoded) > KEPT:
            _encoded.popitem(last=False)
    return _encoded[key]


def _encode(chosen: ModelBundle) -> bytes:
    model, name = chosen.model, chosen.name
    tensors = {key: value.detach().float().reshape(-1).clone() for key, value in model.state_dict().items()}
    tensors["pos_embedding"] = model.pos_embedding.detach().float().reshape(-1).clone()  # fixed codes too
    limits = chosen.limits
    metadata = {"config": json.dumps(model.config),  # config.json's: what rebuilds the model's shape
                "temperature": repr(chosen.temperature), "framing": json.dumps(dataclasses.asdict(chosen.framing)),
                "class_names": json.dumps(chosen.class_names), "name": name, "noun": chosen.noun,
                # the server's verdict (vit.novelty, vit.answer), so that the page says what the server will say
                "limits": json.dumps(novelty.as_json(limits) if limits else None), "sure": repr(SURE)}
    return save(tensors, metadata=metadata)


def weights_url(name: str | None) -> str:
    """The path, relative to the app's root, the page fetches a model's weights from ("" for none)."""
    return WEIGHTS_PATH.format(name=quote(name, safe="")) if name else ""


async def _serve(request: Request) -> Response:
    name = request.path_params["name"]
    if not is_known(name):
        return PlainTextResponse("No model of that name is served here.", status_code=404)
    body = await run_in_threadpool(page_weights, bundle(name))
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    # no-cache: the browser keeps the file but asks each visit whether it changed (a 304 is a few bytes)
    return Response(body, media_type=MEDIA_TYPE, headers={"ETag": tag, "Cache-Control": "no-cache"})


def routes() -> list[Route]:
    """The app's route for the page's weights (app.py passes it to gradio's FastAPI app)."""
    return [Route("/" + WEIGHTS_PATH, _serve, methods=["GET"])]

