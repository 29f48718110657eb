"""OGC API - Processes (Part 1: Core) over the analyses: /api/processes, one description per process,
and synchronous execution with JSON inputs and outputs.

Each analysis family registers its processes from a module of this package (`network_qa.py`, ...):
a `Process` with its inputs and outputs as JSON Schema, the access layers it reads, and an `execute`
that calls the analysis (a plain Python call in `analyses/`) and returns its outputs. Inputs are
validated against the declared schemas before execution; every error is problem+json.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jsonschema
import orjson
from fastapi import APIRouter, Body, Depends, Request, Response

from cim_core.errors import InputError, NotFoundError
from services import auth

router = APIRouter(tags=["OGC API - Processes"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/ogc-process-description",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/oas30",
]


@dataclass(frozen=True)
class Context:
    """What an execution knows of its caller: who asked (for provenance) and how to require a layer."""
    who: auth.Caller
    request: Request

    @property
    def requested_by(self) -> str:
        return self.who.role if self.who.key_id is None else f"{self.who.role} (key {self.who.key_id})"

    def require(self, *layers: str) -> None:
        """401/403 unless the caller may read every one of `layers` (restricted analysis inputs)."""
        auth.require_layers(self.request, self.who, list(layers))


@dataclass(frozen=True)
class Process:
    id: str
    title: str
    description: str
    inputs: dict[str, dict[str, Any]]  # id -> {"title", "description", "schema", "minOccurs"?}
    outputs: dict[str, dict[str, Any]]  # id -> {"title", "description", "schema"}
    execute: Callable[[dict[str, Any], Context], dict[str, Any]]
    version: str = "1.0.0"
    keywords: tuple[str, ...] = field(default_factory=tuple)

    def summary(self, base: str) -> dict:
        return {"id": self.id, "title": self.title, "description": self.description, "version": self.version,
                "keywords": list(self.keywords), "jobControlOptions": ["sync-execute"],
                "outputTransmission": ["value"],
                "links": [{"href": f"{base}/processes/{self.id}", "rel": "self", "type": "application/json",
                           "title": "process description"}]}

    def validate(self, inputs: Any) -> dict:
        """The inputs, checked against the description; an InputError names the input and the problem."""
        if not isinstance(inputs, dict):
            raise InputError("inputs: expected an object of input values")
        unknown = sorted(set(inputs) - set(self.inputs))
        if unknown:
            raise InputError(f"inputs: unknown input {unknown[0]!r} for process {self.id!r}",
                             hint=f"inputs: {', '.join(self.inputs)}")
        for name, spec in self.inputs.items():
            if name not in inputs:
                if spec.get("minOccurs", 1) > 0:
                    raise InputError(f"inputs.{name}: required by process {self.id!r}")
                continue
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(spec["schema"]).iter_errors(inputs[name]))
            if error is not None:
                where = "".join(f"[{p!r}]" for p in error.absolute_path)
                raise InputError(f"inputs.{name}{where}: {error.message[:300]}")
        return inputs


PROCESSES: dict[str, Process] = {}


def register(process: Process) -> Process:
    PROCESSES[process.id] = process
    return process


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api"


def _json(doc, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _get(process_id: str) -> Process:
    p = PROCESSES.get(process_id)
    if p is None:
        raise NotFoundError(f"no process {process_id!r}", hint="/api/processes lists them")
    return p


@router.get("/processes", summary="The processes (analyses) this server runs")
def processes(request: Request):
    b = _base(request)
    return _json({"processes": [p.summary(b) for p in PROCESSES.values()],
                  "links": [{"href": f"{b}/processes", "rel": "self", "type": "application/json"}]})


@router.get("/processes/{processId}", summary="Description of a process: its inputs and outputs")
def process(request: Request, processId: str):
    p = _get(processId)
    return _json({**p.summary(_base(request)), "inputs": p.inputs, "outputs": p.outputs})


@router.post("/processes/{processId}/execution", summary="Run a process synchronously",
             responses={200: {"description": "the outputs, by output id"}})
def execute(request: Request, who: Caller, processId: str,
            body: dict[str, Any] = Body(..., examples=[{"inputs": {}}])):
    p = _get(processId)
    mode = body.get("response", "document")
    if mode not in ("document", "raw"):
        raise InputError(f"response: {mode!r} is not document or raw")
    outputs = p.execute(p.validate(body.get("inputs", {})), Context(who, request))
    if mode == "raw" and len(outputs) == 1:
        return _json(next(iter(outputs.values())))
    return _json(outputs)


# The analysis families register their processes on import.
from . import drainage, healthcheck, network_qa, underground, water  # noqa: F401
