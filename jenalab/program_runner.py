"""Runs exported models inside the sandboxed evaluator (`jenalab.evaluator`): numbers in, numbers out.

    python program_runner.py JOB_FOLDER

It is started as a file (nothing of the grader is importable in the sandbox) and needs only torch
and numpy. JOB_FOLDER holds ``job.json`` (the programs as `grader_tests.archive.Program` wrote them,
the runs to make), ``<program>.bin`` (its tensors' bytes, one after another) and ``inputs.npz``.
It interprets each program's operations itself, from an allowlist, on the tensors it was given:
no torch loader, no pickle, no code from the archive. After ``ready`` on stderr it writes, for each
program in turn, an 8-byte length and an ``.npz`` of that program's outputs (``<run>``) and errors
(``<run>:error``) to stdout, so what one program does cannot take another's results with it.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch

DTYPES = {"int64": torch.int64, "int32": torch.int32, "float16": torch.float16, "float32": torch.float32,
          "float64": torch.float64, "bool": torch.bool, "bfloat16": torch.bfloat16}
FORMATS = {"contiguous_format": torch.contiguous_format, "preserve_format": torch.preserve_format}
MAX_OUTPUTS_PER_WINDOW = 16


def _operation(name: str):
    packet, overload = name.rsplit(".", 1)
    return getattr(getattr(torch.ops.aten, packet), overload)


def _value(arg, env: dict):
    kind, value = arg
    if kind in ("tensor", "optional_tensor"):
        return None if value is None else env[value]
    if kind in ("tensors", "optional_tensors"):
        return [None if v is None else env[v] for v in value]
    if kind == "symint":
        return env[value[1]] if isinstance(value, list) else value
    if kind == "symints":
        return [env[v[1]] if isinstance(v, list) else v for v in value]
    if kind == "dtype":
        return DTYPES[value]
    if kind == "layout":
        return torch.strided
    if kind == "memory_format":
        return FORMATS[value]
    if kind == "device":
        return torch.device("cpu")
    return value  # none, int(s), float(s), bool(s)


def _ablate(op: str, kwargs: dict, ablation: str) -> dict:
    """The LSTM switched off: every weight zero ("zero_all"), or only its recurrent weights ("zero_recurrent")."""
    if op == "lstm.input":
        params = list(kwargs["params"])
        group = 4 if kwargs.get("has_biases", True) else 2
        for i, p in enumerate(params):
            if ablation == "zero_all" or i % group == 1:
                params[i] = torch.zeros_like(p)
        return {**kwargs, "params": params}
    keys = ("w_ih", "w_hh", "b_ih", "b_hh") if ablation == "zero_all" else ("w_hh",)
    return {**kwargs, **{k: torch.zeros_like(kwargs[k]) for k in keys if kwargs.get(k) is not None}}


class Program:
    def __init__(self, spec: dict, blob: bytes):
        self.spec, self.tensors, start = spec, {}, 0
        for key, meta in spec["tensors"].items():
            count = int(np.prod(meta["shape"], dtype=np.int64))
            size = count * torch.tensor([], dtype=DTYPES[meta["dtype"]]).element_size()
            data = bytearray(blob[start:start + size])
            start += size
            tensor = torch.frombuffer(data, dtype=DTYPES[meta["dtype"]]) if size else torch.empty(0, dtype=DTYPES[meta["dtype"]])
            self.tensors[key] = tensor.reshape(meta["shape"])
        self.operations = {node["op"]: _operation(node["op"]) for node in spec["nodes"]}

    def __call__(self, x: torch.Tensor, ablation: str | None) -> torch.Tensor:
        env = {p["name"]: x if p.get("input") else self.tensors[p["tensor"]] for p in self.spec["placeholders"]}
        for node in self.spec["nodes"]:
            kwargs = {name: _value(arg, env) for name, arg in node["args"].items()}
            if ablation and node["op"] in ("lstm.input", "lstm_cell.default"):
                kwargs = _ablate(node["op"], kwargs, ablation)
            result = self.operations[node["op"]](**kwargs)
            outputs = node["outputs"]
            if len(outputs) == 1:
                env[outputs[0]] = result[0] if isinstance(result, (tuple, list)) else result
            else:
                env.update(zip(outputs, result))
        return env[self.spec["output"]]


def run(program: Program, x: np.ndarray, batch: int, ablation: str | None) -> np.ndarray:
    parts = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(x[start:start + batch])
            out = program(chunk, ablation)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"the model returned a {type(out).__name__}, not a tensor")
            if out.numel() > MAX_OUTPUTS_PER_WINDOW * len(chunk):
                raise ValueError(f"the model returned {out.numel()} numbers for {len(chunk)} windows")
            parts.append(out.detach().to(torch.float64).numpy())
    if any(p.ndim == 0 or p.shape[1:] != parts[0].shape[1:] for p in parts):
        raise ValueError(f"the model's output shapes differ from batch to batch: {[p.shape for p in parts][:4]}")
    return np.concatenate(parts)


def main(folder: str) -> int:
    job = json.loads((Path(folder) / "job.json").read_text())
    torch.set_num_threads(job.get("threads", 1))
    inputs = np.load(Path(folder) / "inputs.npz", allow_pickle=False)
    print("ready", file=sys.stderr, flush=True)
    for name, spec in job["programs"].items():
        results = {}
        try:
            program = Program(spec, (Path(folder) / f"{name}.bin").read_bytes())
        except Exception as err:  # the program's own fault: every run of it fails with the reason
            program, failure = None, f"{type(err).__name__}: {err}"
        for request in (r for r in job["requests"] if r["program"] == name):
            try:
                if program is None:
                    raise RuntimeError(failure)
                results[request["id"]] = run(program, inputs[request["input"]], request["batch"], request.get("ablation"))
            except Exception as err:
                results[f"{request['id']}:error"] = np.array(f"{type(err).__name__}: {err}"[:500])
        buffer = io.BytesIO()
        np.savez(buffer, **results)
        sys.stdout.buffer.write(struct.pack("<Q", buffer.tell()) + buffer.getvalue())
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
