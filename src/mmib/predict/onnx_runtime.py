"""ONNX Runtime for prediction's networks: the text encoder, the frozen CNN and the MMIB layers.

    mmib export RUNS/my-run --format onnx     # writes RUN/onnx/{text_encoder,image_encoder,mmib_layers}.onnx
    mmib predict RUNS/my-run posts.jsonl --runtime onnx

Why: on a CPU, ONNX Runtime's fused kernels (depthwise convolutions, attention) run these networks faster than
PyTorch's eager ops (``benchmarks/prediction_latency.py`` measures both in one run). The MMIB layers (W_v, the
variational means, the coupled fusion; eqs. 4-17) are exported as they run at inference, from
:meth:`MMIBModel.layers` itself, so there is no second copy of the model's code; the CRF and the relation head
stay in PyTorch. A run exported before the layers were (an older ``mmib export``) runs them in PyTorch.

The encoders go through torch's TorchScript-based ``torch.onnx.export`` (``dynamo=False``): it traces them in a
second. The MMIB layers need the ``torch.export``-based exporter (``dynamo=True``, with ``onnxscript``): the
traced ``nn.MultiheadAttention`` keeps the key length it was traced with, so a post with another number of
image regions or caption tokens fails; ``torch.export`` keeps the three sizes symbolic.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from mmib.encoders.image import IMAGE_SIZE, ImageEncoder
from mmib.model.mmib import MMIBModel
from mmib.model.run_folder import RunFolder

logger = logging.getLogger(__name__)
OPSET = 17
RUNTIMES = ("torch", "onnx")


class OnnxUnavailable(RuntimeError):
    """ONNX Runtime is not installed, or the run has not been exported."""


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxUnavailable(
            "the onnx runtime needs: pip install 'mmib[onnx]' (onnx and onnxruntime)"
        ) from None
    return onnxruntime


def _session(path: Path, threads: int | None = None):
    """A CPU inference session using as many threads as torch does (the same cores, the same share).

    Its workers sleep between runs instead of spinning: prediction alternates ONNX Runtime with torch's MMIB
    layers, the detector and image decoding on the same cores, and spinning workers starve them (measured on
    2 cores, 100 synthetic posts: 74 posts/s without spinning against 56-66 with it, 38 against 31-33 with
    the detector)."""
    onnxruntime = _onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ---- export -----------------------------------------------------------------------------------------------


class _HiddenStates(nn.Module):
    """The HF encoder as (input_ids, attention_mask[, token_type_ids]) -> last_hidden_state (C, L, H)."""

    def __init__(self, model: nn.Module, with_types: bool) -> None:
        super().__init__()
        self.model = model
        self.with_types = with_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.with_types:
            inputs["token_type_ids"] = token_type_ids
        return self.model(**inputs).last_hidden_state


class _PooledFeatures(nn.Module):
    """The (folded) CNN as pixels (N, 3, 224, 224) -> pooled features (N, F)."""

    def __init__(self, encoder: ImageEncoder) -> None:
        super().__init__()
        self.backbone = encoder.backbone
        self._features_fn = encoder._features_fn

    def forward(self, pixels):
        features = self._features_fn(pixels)
        return features.mean(dim=(2, 3)) if features.dim() == 4 else features


class _FusedStates(nn.Module):
    """The MMIB layers at inference as (text_states (P, L, d), text_mask (P, L), image_features (P, R, F),
    image_mask (P, R)) -> C (P, L, d); R is m+1 regions, or a caption's tokens."""

    def __init__(self, model: MMIBModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, text_states, text_mask, image_features, image_mask):
        return self.model.layers(text_states, text_mask, image_features, image_mask, variance=False)[0]


@contextlib.contextmanager
def _quiet_exporter():
    """The torch.export-based exporter logs notes meant for its developers (optional torchvision ops it
    skips, constant folding it leaves out); ``mmib export`` prints its own summary instead."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [one.level for one in loggers]
    for one in loggers:
        one.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for one, level in zip(loggers, levels, strict=True):
            one.setLevel(level)


@contextlib.contextmanager
def _exportable_attention():
    """nn.MultiheadAttention's inference fast path is one fused op the ONNX exporter cannot translate; the
    plain path computes the same attention from exportable ops."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def _export(module: nn.Module, inputs: tuple, names: list[str], dynamic: dict, path: Path) -> None:
    """Writes ``path`` atomically: a killed export leaves no half file that a later load would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes (transformers' mask helpers) and slices it cannot
        # fold; export_differences checks the result at two sequence lengths instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            inputs,
            str(temporary),
            input_names=names,
            output_names=["output"],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    temporary.replace(path)


def _export_layers(model: MMIBModel, path: Path) -> None:
    """The MMIB layers at inference, with posts, text length and regions symbolic; written atomically."""
    d, features = model.config.hidden_size, model.image_projection.in_features
    inputs = (torch.zeros(2, 9, d), torch.ones(2, 9, dtype=torch.bool))  # no size 1: it would be fixed
    inputs += (torch.zeros(2, 4, features), torch.ones(2, 4, dtype=torch.bool))
    posts, length, regions = (torch.export.Dim(name) for name in ("posts", "length", "regions"))
    sizes = ({0: posts, 1: length}, {0: posts, 1: length}, {0: posts, 1: regions}, {0: posts, 1: regions})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with torch.no_grad(), _exportable_attention(), _quiet_exporter(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dynamic-axis renaming notes of the exporter
        program = torch.onnx.export(
            _FusedStates(model).eval(),
            inputs,
            input_names=["text_states", "text_mask", "image_features", "image_mask"],
            output_names=["output"],
            dynamic_shapes=sizes,
            dynamo=True,
            verbose=False,
        )
    program.save(str(temporary))
    temporary.replace(path)


def uses_token_types(model: MMIBModel) -> bool:
    """Whether the text encoder reads segment ids (the caption-pair baseline on a BERT-style encoder)."""
    return model.config.caption_pair and model.text_encoder.reads_segment_ids


def export_onnx(model: MMIBModel, image_encoder: ImageEncoder | None, run: RunFolder) -> list[Path]:
    """Exports the run's fine-tuned text encoder, (pixel runs) its folded CNN and (multimodal runs) its MMIB
    layers; returns the files written."""
    model = model.float().cpu().eval()
    text_model = model.text_encoder.model
    with_types = uses_token_types(model)
    ids = torch.ones(2, 16, dtype=torch.long)
    inputs = (ids, torch.ones_like(ids), *((torch.zeros_like(ids),) if with_types else ()))
    names = ["input_ids", "attention_mask", *(["token_type_ids"] if with_types else [])]
    dynamic = {name: {0: "chunks", 1: "length"} for name in names} | {"output": {0: "chunks", 1: "length"}}
    _export(_HiddenStates(text_model, with_types), inputs, names, dynamic, run.onnx_text_encoder)
    written = [run.onnx_text_encoder]
    if image_encoder is not None:
        pixels = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
        dynamic = {"pixels": {0: "regions"}, "output": {0: "regions"}}
        _export(
            _PooledFeatures(image_encoder.folded()), (pixels,), ["pixels"], dynamic, run.onnx_image_encoder
        )
        written.append(run.onnx_image_encoder)
    if not model.config.text_only:
        _export_layers(model, run.onnx_mmib_layers)
        written.append(run.onnx_mmib_layers)
    return written


def export_run(run_dir: Path | str) -> tuple[list[Path], dict[str, float]]:
    """``mmib export RUN --format onnx``: the files written and :func:`export_differences`."""
    from mmib.encoders.image import build_image_encoder
    from mmib.model.run_folder import from_pretrained

    run = RunFolder(run_dir).require()
    model, _ = from_pretrained(run_dir)
    config = model.config
    image_encoder = build_image_encoder(config.image_encoder) if config.reads_pixels else None
    written = export_onnx(model, image_encoder, run)
    return written, export_differences(model, image_encoder, run)


def export_differences(
    model: MMIBModel, image_encoder: ImageEncoder | None, run: RunFolder
) -> dict[str, float]:
    """Largest absolute difference between each exported network's output and PyTorch's, on a fixed input
    (token ids drawn from the vocabulary past its first special tokens, two chunk lengths; random pixels;
    random states and features at two text lengths and region counts, one post image-absent)."""
    generator = torch.Generator().manual_seed(0)
    text = model.text_encoder.model.eval()
    session = OnnxHiddenStates(run.onnx_text_encoder, text.config)
    differences = {}
    for length in (7, 40):
        ids = torch.randint(5, text.config.vocab_size, (3, length), generator=generator)  # past the specials
        mask = torch.ones_like(ids)
        mask[0, length // 2 :] = 0
        with torch.no_grad():
            expected = text(input_ids=ids, attention_mask=mask).last_hidden_state
        found = session(ids, mask).last_hidden_state
        difference = (found - expected)[mask.bool()].abs().max().item()
        differences["text encoder"] = max(differences.get("text encoder", 0.0), difference)
    if image_encoder is not None:
        pixels = torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
        expected = image_encoder(pixels)
        found = OnnxImageEncoder(run.onnx_image_encoder, image_encoder)(pixels)
        differences["image encoder"] = (found - expected).abs().max().item()
    if not model.config.text_only:
        layers = OnnxLayers(run.onnx_mmib_layers)
        for length, regions in ((7, 4), (23, 11)):
            text_states = torch.randn(3, length, model.config.hidden_size, generator=generator)
            text_mask = torch.ones(3, length, dtype=torch.bool)
            text_mask[0, length // 2 :] = False
            features = torch.randn(3, regions, model.image_projection.in_features, generator=generator)
            image_mask = torch.ones(3, regions, dtype=torch.bool)
            image_mask[1], image_mask[2, 1:] = False, False  # no image; the whole image only
            with torch.inference_mode():
                expected = model.layers(text_states, text_mask, features, image_mask, variance=False)[0]
            found = layers(text_states, text_mask, features, image_mask)
            difference = (found - expected)[text_mask].abs().max().item()
            differences["MMIB layers"] = max(differences.get("MMIB layers", 0.0), difference)
    return differences


# ---- running ----------------------------------------------------------------------------------------------


class OnnxHiddenStates(nn.Module):
    """Stands in for the HF encoder inside :class:`mmib.encoders.text.TextEncoder`: same call, same output
    attribute, so the word gathering after it is the PyTorch runtime's own code."""

    def __init__(self, path: Path, config, threads: int | None = None) -> None:
        super().__init__()
        self.session = _session(path, threads)
        self.config = config
        self.with_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        feed = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        if self.with_types:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            feed["token_type_ids"] = types.cpu().numpy()
        (hidden,) = self.session.run(None, feed)
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))


class OnnxImageEncoder(ImageEncoder):
    """The exported CNN behind :class:`ImageEncoder`'s interface (preprocessing, name and width unchanged)."""

    def __init__(self, path: Path, like: ImageEncoder, threads: int | None = None) -> None:
        super().__init__(nn.Identity(), like.name, like.feature_dim, None, like.mean, like.std)
        self.session = _session(path, threads)

    def folded(self) -> OnnxImageEncoder:  # already folded when exported
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.detach().cpu().numpy(), dtype=np.float32)
        (features,) = self.session.run(None, {"pixels": array})
        return torch.from_numpy(features)


class OnnxLayers:
    """The exported MMIB layers, called as :meth:`MMIBModel.layers` is at inference (C only). Not a module:
    the model holds it beside its own layers, which stay its saved weights."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.session = _session(path, threads)

    def __call__(self, text_states, text_mask, image_features, image_mask) -> torch.Tensor:
        feed = {
            "text_states": text_states.detach().cpu().float().numpy(),
            "text_mask": text_mask.cpu().bool().numpy(),
            "image_features": image_features.detach().cpu().float().numpy(),
            "image_mask": image_mask.cpu().bool().numpy(),
        }
        (fused,) = self.session.run(None, feed)
        return torch.from_numpy(fused).to(text_states.device)


def use_onnx(model: MMIBModel, image_encoder: ImageEncoder | None, run: RunFolder):
    """Puts the exported networks in place of the PyTorch ones; returns the image encoder to use."""
    needed = [run.onnx_text_encoder, *([run.onnx_image_encoder] if image_encoder is not None else [])]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise OnnxUnavailable(
            f"{run}: no {' / '.join(missing)} in {run.onnx_folder}; run `mmib export {run} --format onnx` first"
        )
    text = model.text_encoder
    text.model = OnnxHiddenStates(run.onnx_text_encoder, text.model.config)
    if not model.config.text_only:
        if run.onnx_mmib_layers.is_file():
            model.exported_layers = OnnxLayers(run.onnx_mmib_layers)
        else:
            logger.warning(
                "%s: no %s (exported by an older mmib); the MMIB layers run in PyTorch. "
                "`mmib export %s --format onnx` exports them too",
                run,
                run.onnx_mmib_layers.name,
                run,
            )
    return OnnxImageEncoder(run.onnx_image_encoder, image_encoder) if image_encoder is not None else None
