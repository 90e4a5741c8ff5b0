"""Exported models as the kernel hands them over, checked before anything runs them.

A ``.pt2`` archive is a zip of a JSON graph, raw weight files and, among others, files that torch's
own loader would unpickle (weights or constants marked ``use_pickle``, opaque objects, the sample
inputs) or evaluate (guard code and symbolic expressions). The kernel can write such an archive
byte by byte. So no archive is ever given to torch: `read_program` reads the zip and the JSON
itself, accepts only plain tensor operations from an allowlist on plain raw tensors, and turns them
into a small program of its own making (`Program`) that the sandboxed evaluator interprets
(`jenalab/program_runner.py`). Anything else is refused with the reason, before anything runs.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO

MAX_ARCHIVE_BYTES = 48 * 1024**2  # unpacked; a WeatherLSTM of several million weights fits
MAX_MEMBERS = 1000
MAX_NODES = 5000
DTYPES = {5: ("int64", 8), 4: ("int32", 4), 6: ("float16", 2), 7: ("float32", 4), 8: ("float64", 8), 12: ("bool", 1),
          13: ("bfloat16", 2)}
LAYOUT_STRIDED, FORMATS = 7, {1: "contiguous_format", 4: "preserve_format"}
RECURRENT = ("lstm.input", "lstm_cell.default")  # the LSTM's operations: what the ablations switch off
# Tensor operations a forecaster is made of: shapes, arithmetic, activations, normalisation, linear and
# recurrent layers. No randomness but dropout (eval mode), no uninitialised memory, files or printing.
OPERATIONS = frozenset("""
sym_size.int view.default reshape.default _unsafe_view.default unsqueeze.default squeeze.dim squeeze.dims
squeeze.default flatten.using_ints transpose.int permute.default t.default contiguous.default select.int
slice.Tensor narrow.default expand.default clone.default alias.default detach.default cat.default stack.default
split.Tensor split_with_sizes.default unbind.int chunk.default flip.default _to_copy.default to.dtype
to.dtype_layout type_as.default lift_fresh_copy.default index_select.default
zeros.default ones.default zeros_like.default ones_like.default full.default full_like.default scalar_tensor.default
add.Tensor add.Scalar sub.Tensor sub.Scalar rsub.Scalar mul.Tensor mul.Scalar div.Tensor div.Scalar neg.default
abs.default pow.Tensor_Scalar sqrt.default rsqrt.default exp.default log.default clamp.default clamp_min.default
clamp_max.default where.self maximum.default minimum.default square.default reciprocal.default
mean.dim mean.default sum.dim_IntList sum.default amax.default amin.default var.correction std.correction
linear.default addmm.default mm.default bmm.default matmul.default baddbmm.default
relu.default leaky_relu.default gelu.default elu.default silu.default selu.default tanh.default sigmoid.default
softplus.default hardtanh.default mish.default softmax.int _softmax.default log_softmax.int
dropout.default native_dropout.default feature_dropout.default alpha_dropout.default
layer_norm.default native_layer_norm.default batch_norm.default _native_batch_norm_legit_no_training.default
group_norm.default conv1d.default
lstm.input lstm_cell.default gru.input gru_cell.default rnn_tanh.input rnn_relu.input
""".split())
# Operations that can pick rows by value: legitimate in a model, and what a look-up needs (a hint for a person).
LOOKUP = frozenset({"index_select.default", "where.self", "amax.default", "amin.default", "softmax.int",
                    "_softmax.default"})
MEMBER = re.compile(r"[^/]+/(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                    r"|models/model\.json|data/weights/model_weights_config\.json|data/weights/[\w.-]+"
                    r"|data/constants/model_constants_config\.json|data/constants/[\w.-]+"
                    r"|data/sample_inputs/[\w.-]+|extra/[\w.-]+)")


class Refused(ValueError):
    """The archive is not a plain export of tensor operations; the message says what it holds."""


@dataclass
class Tensor:
    dtype: str
    shape: tuple[int, ...]
    data: bytes


@dataclass
class Program:
    """An exported model as the evaluator runs it: placeholders (parameters, buffers and constants by name,
    then the one input), nodes in order, the one output, and the raw tensors."""

    placeholders: list[dict]  # {"name": graph name, "tensor": key of tensors} or {"name": ..., "input": True}
    nodes: list[dict]  # {"op": "linear.default", "args": {name: normalised argument}, "outputs": [graph names]}
    output: str
    tensors: dict[str, Tensor] = field(default_factory=dict)

    @property
    def operations(self) -> set[str]:
        return {node["op"] for node in self.nodes}

    def recurrent_layers(self) -> list[tuple[int, int]]:
        """(hidden size, layers) of each LSTM operation; the hidden size is read from its recurrent weights
        (-1 when the graph computes them instead of taking them from a parameter)."""
        found = []
        for node in self.nodes:
            if node["op"] == "lstm.input":
                w_hh, layers = node["args"]["params"][1][1], node["args"]["num_layers"][1]
            elif node["op"] == "lstm_cell.default":
                w_hh, layers = node["args"]["w_hh"][1], 1
            else:
                continue
            tensor = next((p.get("tensor") for p in self.placeholders if p["name"] == w_hh), None)
            found.append((self.tensors[tensor].shape[-1] if tensor in self.tensors else -1, layers))
        return found

    def weight_count(self) -> int:
        return sum(math.prod(t.shape) for t in self.tensors.values())

    def to_json(self) -> dict:
        return {"placeholders": self.placeholders, "nodes": self.nodes, "output": self.output,
                "tensors": {k: {"dtype": t.dtype, "shape": list(t.shape)} for k, t in self.tensors.items()}}


def _members(archive: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(BytesIO(archive)) as zipped:
            infos = zipped.infolist()
            if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_ARCHIVE_BYTES:
                raise Refused(f"the archive holds more than {MAX_MEMBERS} files or {MAX_ARCHIVE_BYTES // 1024**2} MiB")
            names = [i.filename for i in infos]
            unknown = [n for n in names if not MEMBER.fullmatch(n)]
            if unknown:
                raise Refused(f"the archive holds files an export does not make ({unknown[0][:80]!r})")
            roots = {n.split("/", 1)[0] for n in names}
            if len(roots) != 1:
                raise Refused("the archive is not one export")
            wanted = [n for n in names if "/sample_inputs/" not in n and "/extra/" not in n]  # never read
            return {n.split("/", 1)[1]: zipped.read(n) for n in wanted}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, Refused):
            raise
        raise Refused(f"the archive cannot be read as a zip file ({type(err).__name__})") from None


def _json(members: dict, name: str):
    if name not in members:
        raise Refused(f"the archive has no {name}")
    try:
        return json.loads(members[name])
    except ValueError:
        raise Refused(f"{name} is not JSON") from None


def _int(value) -> int:
    if type(value) is not dict or set(value) != {"as_int"} or type(value["as_int"]) is not int:
        raise Refused("a tensor has a size that is not a plain number")
    return value["as_int"]


def _tensor(meta: dict, data: bytes, what: str) -> Tensor:
    """A raw, dense, contiguous CPU tensor; its bytes must be exactly its size."""
    if type(meta) is not dict or meta.get("dtype") not in DTYPES or meta.get("layout") != LAYOUT_STRIDED:
        raise Refused(f"{what} is not a plain dense tensor")
    if (meta.get("device") or {}).get("type") != "cpu" or _int(meta.get("storage_offset")) != 0:
        raise Refused(f"{what} is not a plain CPU tensor")
    shape = tuple(_int(s) for s in meta.get("sizes", []))
    strides, expected = [_int(s) for s in meta.get("strides", [])], []
    step = 1
    for size in reversed(shape):
        expected.insert(0, step)
        step *= max(size, 1)
    if any(size < 0 for size in shape) or (math.prod(shape) > 1 and strides != expected):
        raise Refused(f"{what} is not stored contiguously")
    dtype, itemsize = DTYPES[meta["dtype"]]
    if len(data) != math.prod(shape) * itemsize:
        raise Refused(f"{what} has {len(data)} bytes where its shape needs {math.prod(shape) * itemsize}")
    return Tensor(dtype, shape, data)


def _payloads(members: dict, kind: str) -> dict[str, Tensor]:
    """Weights or constants by name: raw tensors only, never a pickle."""
    config = _json(members, f"data/{kind}/model_{kind}_config.json")
    entries = config.get("config") if type(config) is dict else None
    if type(entries) is not dict:
        raise Refused(f"the {kind} configuration is not a table of tensors")
    found = {}
    for name, entry in entries.items():
        if type(entry) is not dict or entry.get("use_pickle") is not False or "tensor_meta" not in entry:
            raise Refused(f"{kind[:-1]} {name[:60]!r} is stored as a pickle or an object, not as a raw tensor")
        path = f"data/{kind}/{entry.get('path_name')}"
        if type(entry.get("path_name")) is not str or path not in members:
            raise Refused(f"{kind[:-1]} {name[:60]!r} has no data in the archive")
        found[name] = _tensor(entry["tensor_meta"], members[path], f"{kind[:-1]} {name[:60]!r}")
    return found


def _argument(arg, defined: set[str], sym_ints: set[str]):
    """A graph argument in the evaluator's own small form: [kind, value]."""
    if type(arg) is not dict or len(arg) != 1:
        raise Refused("an operation has an argument of an unknown form")
    (kind, value), = arg.items()

    def tensor(t):
        if type(t) is not dict or set(t) != {"name"} or t["name"] not in defined:
            raise Refused("an operation uses a tensor the graph does not define")
        return t["name"]

    def sym(s):
        if type(s) is dict and set(s) == {"as_int"} and type(s["as_int"]) is int:
            return s["as_int"]
        if type(s) is dict and set(s) == {"as_name"} and s["as_name"] in sym_ints:
            return ["sym", s["as_name"]]
        raise Refused("an operation has a size that is neither a number nor a size of its input")

    if kind == "as_none":
        return ["none", None]
    if kind == "as_tensor":
        return ["tensor", tensor(value)]
    if kind == "as_tensors" and type(value) is list:
        return ["tensors", [tensor(t) for t in value]]
    if kind == "as_optional_tensors" and type(value) is list:
        return ["optional_tensors", [None if t == {"as_none": True} else tensor(t.get("as_tensor")) for t in value]]
    if kind == "as_optional_tensor":
        return ["optional_tensor", None if value == {"as_none": True} else tensor(value.get("as_tensor"))]
    if kind == "as_int" and type(value) is int:
        return ["int", value]
    if kind == "as_ints" and type(value) is list and all(type(v) is int for v in value):
        return ["ints", value]
    if kind == "as_float" and type(value) in (int, float):
        return ["float", float(value)]
    if kind == "as_floats" and type(value) is list and all(type(v) in (int, float) for v in value):
        return ["floats", [float(v) for v in value]]
    if kind == "as_bool" and type(value) is bool:
        return ["bool", value]
    if kind == "as_bools" and type(value) is list and all(type(v) is bool for v in value):
        return ["bools", value]
    if kind == "as_sym_int":
        return ["symint", sym(value)]
    if kind == "as_sym_ints" and type(value) is list:
        return ["symints", [sym(v) for v in value]]
    if kind == "as_scalar_type" and value in DTYPES:
        return ["dtype", DTYPES[value][0]]
    if kind == "as_layout" and value == LAYOUT_STRIDED:
        return ["layout", "strided"]
    if kind == "as_memory_format" and value in FORMATS:
        return ["memory_format", FORMATS[value]]
    if kind == "as_device" and type(value) is dict and value.get("type") == "cpu":
        return ["device", "cpu"]
    raise Refused(f"an operation has an argument the evaluator does not accept ({kind})")


def read_program(archive: bytes) -> Program:
    """The export as a `Program`, or Refused saying what it holds that a plain export does not."""
    members = _members(archive)
    if members.get("byteorder", b"little").strip() != b"little":
        raise Refused("the archive's tensors are not little-endian")
    document = _json(members, "models/model.json")
    try:
        graph_module = document["graph_module"]
        graph, signature = graph_module["graph"], graph_module["signature"]
    except (TypeError, KeyError):
        raise Refused("models/model.json is not an exported program") from None
    if graph.get("custom_obj_values") or graph.get("sym_bool_values") or graph.get("sym_float_values"):
        raise Refused("the graph holds custom objects or symbolic values an export of a forecaster does not make")
    weights, constants = _payloads(members, "weights"), _payloads(members, "constants")
    placeholders, defined, tensors = [], set(), {}
    for spec, arg in zip(signature.get("input_specs", []), graph.get("inputs", [])):
        (kind, detail), = spec.items() if type(spec) is dict and len(spec) == 1 else (("?", {}),)
        name = ((arg or {}).get("as_tensor") or {}).get("name")
        if type(name) is not str or type(detail) is not dict:
            raise Refused("an input of the graph is not a tensor")
        if kind == "user_input":
            placeholders.append({"name": name, "input": True})
        elif kind in ("parameter", "buffer", "tensor_constant"):
            key = detail.get("parameter_name") or detail.get("buffer_name") or detail.get("tensor_constant_name")
            source = constants if kind == "tensor_constant" else weights
            if key not in source:
                if kind == "buffer" and key in constants:  # a non-persistent buffer is stored with the constants
                    source = constants
                else:
                    raise Refused(f"the graph's input {str(key)[:60]!r} has no stored tensor")
            tensors[key] = source[key]
            placeholders.append({"name": name, "tensor": key})
        else:
            raise Refused(f"the graph takes an input of a kind a forecaster does not have ({kind})")
        defined.add(name)
    if len(placeholders) != len(graph.get("inputs", [])) or sum("input" in p for p in placeholders) != 1:
        raise Refused("the graph does not take exactly one input tensor besides its weights")
    nodes, sym_ints = [], set()
    raw_nodes = graph.get("nodes", [])
    if type(raw_nodes) is not list or len(raw_nodes) > MAX_NODES:
        raise Refused(f"the graph has more than {MAX_NODES} operations")
    for node in raw_nodes:
        target = node.get("target") if type(node) is dict else None
        op = target.removeprefix("torch.ops.aten.") if type(target) is str else None
        if op not in OPERATIONS:
            raise Refused(f"the graph uses {str(target)[:80]!r}, an operation the grader does not run")
        args = {}
        for named in node.get("inputs", []):
            if type(named) is not dict or type(named.get("name")) is not str:
                raise Refused("an operation has an unnamed argument")
            args[named["name"]] = _argument(named.get("arg"), defined, sym_ints)
        outputs = []
        for out in node.get("outputs", []):
            (kind, value), = out.items() if type(out) is dict and len(out) == 1 else (("?", None),)
            if kind == "as_tensor" and type(value) is dict and type(value.get("name")) is str:
                outputs.append(value["name"])
                defined.add(value["name"])
            elif kind == "as_tensors" and type(value) is list:
                for item in value:
                    outputs.append(item.get("name") if type(item) is dict else None)
                    defined.add(outputs[-1])
            elif kind == "as_sym_int" and op == "sym_size.int" and type(value) is dict and type(value.get("as_name")) is str:
                outputs.append(value["as_name"])
                sym_ints.add(value["as_name"])
            else:
                raise Refused(f"{op} has an output of a kind the evaluator does not accept ({kind})")
        if None in outputs:
            raise Refused(f"{op} has an unnamed output")
        nodes.append({"op": op, "args": args, "outputs": outputs})
    user_outputs = [spec.get("user_output") for spec in signature.get("output_specs", []) if type(spec) is dict]
    graph_outputs = graph.get("outputs", [])
    if (len(user_outputs) != 1 or len(graph_outputs) != 1
            or type(graph_outputs[0]) is not dict or "as_tensor" not in graph_outputs[0]):
        raise Refused("the graph does not return exactly one tensor (a model that changes its own state between calls "
                      "returns more)")
    output = graph_outputs[0]["as_tensor"].get("name")
    if output not in defined:
        raise Refused("the graph returns a tensor it does not define")
    return Program(placeholders, nodes, output, tensors)


def lookup_operations(program: Program) -> set[str]:
    return program.operations & LOOKUP
