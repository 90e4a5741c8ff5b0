"""Exporting a forecaster as a graph of tensor operations (``torch.export``).

Your final model is graded from its export, on data your notebook never sees: the export records
the tensor operations ``forward`` performs and the model's weights, for inputs of shape
``(B, 12, F)`` with any batch size B. ``forward`` must therefore compute with tensor operations on
its input only: no file reads, no Python numbers or numpy arrays taken from tensors (``.item()``,
``.numpy()``, ``.tolist()``), no ``if``/``for`` that depends on tensor values, no state kept from
one call to the next.
"""

from __future__ import annotations

import io
import warnings

import torch

from jena_weather.pipeline import INPUT_STEPS

# What a failed export usually means, by words in torch's message.
HINTS = (
    (("data-dependent", "data dependent", "GuardOnDataDependent", ".item()", "item()", "SymBool", "SymInt", "SymFloat"),
     "forward turns tensor values into Python numbers or branches on them (.item(), .tolist(), if/while on a "
     "tensor): compute with tensor operations instead"),
    (("Constraints violated", "specialized", "batch"),
     "forward works only for one batch size: take sizes from the input (x.shape[0]), never fixed numbers"),
    (("numpy",), "forward converts tensors to numpy: keep everything in torch"),
    (("open", "file", "read"), "forward reads files: a model may only compute with its input and its weights"),
)


class ExportError(RuntimeError):
    """The model cannot be exported; the message says why and what to change."""


def export_forecaster(model: torch.nn.Module, n_features: int) -> bytes:
    """The model (put in evaluation mode) exported for inputs (B, 12, F) with any batch size B, as the
    bytes of a ``.pt2`` archive; raises ExportError with a hint when that is not possible."""
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"only an nn.Module can be exported; found a {type(model).__name__}")
    model.eval()
    example = torch.zeros(4, INPUT_STEPS, n_features)  # a batch size other than 1, which export would fix
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    try:
        with warnings.catch_warnings():  # torch's notes on how it traced nn.LSTM say nothing about the student's model
            warnings.simplefilter("ignore")
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
    except Exception as err:  # whatever torch raises, the student needs the reason
        message = f"{type(err).__name__}: {err}".strip()
        hint = next((text for words, text in HINTS if any(w in message for w in words)),
                    "forward must be tensor operations on its input only")
        first = message.splitlines()[0][:300]
        raise ExportError(f"torch.export could not export the model: {hint}. (torch said: {first})") from None
    return buffer.getvalue()
