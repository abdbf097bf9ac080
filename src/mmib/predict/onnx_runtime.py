"""ONNX Runtime for the two networks that take prediction's time: the text encoder and the frozen CNN.

    mmib export RUNS/my-run --format onnx          # writes RUN/onnx/{text_encoder,image_encoder}.onnx
    mmib predict RUNS/my-run posts.jsonl --runtime onnx

Why: on a CPU, ONNX Runtime's fused kernels (depthwise convolutions, attention) run these networks faster than
PyTorch's eager ops (``benchmarks/prediction_latency.py`` measures both in one run). Only the encoders are
exported; the MMIB layers after them (W_v, APEnc, fusion, CRF; eqs. 4-29) are small and stay in PyTorch, so
both runtimes share every line of the model's own code and differ only in float rounding of the encoders.

The exporter is torch's TorchScript-based ``torch.onnx.export`` (``dynamo=False``): it traces these two
networks in a second without the extra ``onnxscript`` dependency the newer exporter needs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from mmib.encoders.image import IMAGE_SIZE, ImageEncoder
from mmib.errors import UserError
from mmib.model.config import MMIBConfig
from mmib.model.mmib import MMIBModel
from mmib.model.run_folder import RunFolder

OPSET = 17
# What a pixel run's prediction needs of its CNN besides the network itself, written into the exported file
# so that the ONNX runtime never builds the PyTorch CNN only to read them.
PREPROCESSING_KEYS = ("mmib.image_encoder", "mmib.feature_dim", "mmib.mean", "mmib.std")


class OnnxUnavailable(UserError, RuntimeError):
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
    """A CPU inference session using half the threads torch does (at least one): prediction runs the CNN
    beside the text encoder (Extractor._tag_in_batches), so each of the two sessions gets half the cores.

    Its workers sleep between runs instead of spinning: prediction alternates ONNX Runtime with torch's MMIB
    layers, the detector and image decoding on the same cores, and spinning workers starve them (measured on
    2 cores, 100 synthetic posts: 74 posts/s without spinning against 56-66 with it, 38 against 31-33 with
    the detector)."""
    onnxruntime = _onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or max(1, torch.get_num_threads() // 2)
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


def _export(
    module: nn.Module,
    inputs: tuple,
    names: list[str],
    dynamic: dict,
    path: Path,
    metadata: dict[str, str] | None = None,
) -> None:
    """Writes ``path`` atomically: a killed export leaves no half file that a later load would trust.
    ``metadata``: key/value pairs stored in the file (ONNX ``metadata_props``)."""
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
    if metadata:
        import onnx

        exported = onnx.load(str(temporary))
        for key, value in metadata.items():
            exported.metadata_props.add(key=key, value=value)
        onnx.save(exported, str(temporary))
    temporary.replace(path)


def uses_token_types(model: MMIBModel) -> bool:
    """Whether the text encoder reads segment ids (the caption-pair baseline on a BERT-style encoder)."""
    return model.config.caption_pair and model.text_encoder.reads_segment_ids


def export_onnx(model: MMIBModel, image_encoder: ImageEncoder | None, run: RunFolder) -> list[Path]:
    """Exports the run's fine-tuned text encoder and (pixel runs) its folded CNN; returns the files written."""
    text_model = model.text_encoder.model.float().cpu().eval()
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
        preprocessing = (
            image_encoder.name,
            str(image_encoder.feature_dim),
            json.dumps(image_encoder.mean.flatten().tolist()),
            json.dumps(image_encoder.std.flatten().tolist()),
        )
        _export(
            _PooledFeatures(image_encoder.folded()), (pixels,), ["pixels"], dynamic, run.onnx_image_encoder,
            dict(zip(PREPROCESSING_KEYS, preprocessing, strict=True)),
        )  # fmt: skip
        written.append(run.onnx_image_encoder)
    return written


def export_run(run_dir: Path | str) -> tuple[list[Path], dict[str, float]]:
    """``mmib export RUN --format onnx``: the files written and :func:`export_differences`."""
    from mmib.encoders.image import build_image_encoder
    from mmib.model.mmib import from_pretrained

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
    (token ids drawn from the vocabulary past its first special tokens, two chunk lengths; random pixels)."""
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
        found = OnnxImageEncoder.load(run.onnx_image_encoder, model.config)(pixels)
        differences["image encoder"] = (found - expected).abs().max().item()
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

    def __init__(self, session, name: str, feature_dim: int, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__(nn.Identity(), name, feature_dim, None, mean, std)
        self.session = session

    @classmethod
    def load(cls, path: Path, config: MMIBConfig, threads: int | None = None) -> OnnxImageEncoder:
        """The exported CNN with the preprocessing written into its file; a file exported before that was
        written takes it from the PyTorch CNN of the run's config, built once for the purpose."""
        session = _session(path, threads)
        stored = session.get_modelmeta().custom_metadata_map
        if all(key in stored for key in PREPROCESSING_KEYS):
            name, width, mean, std = (stored[key] for key in PREPROCESSING_KEYS)
            statistics = [torch.tensor(json.loads(v), dtype=torch.float32).view(3, 1, 1) for v in (mean, std)]
            return cls(session, name, int(width), *statistics)
        from mmib.encoders.image import build_image_encoder

        like = build_image_encoder(config.image_encoder)
        return cls(session, like.name, like.feature_dim, like.mean, like.std)

    def folded(self) -> OnnxImageEncoder:  # already folded when exported
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.detach().cpu().numpy(), dtype=np.float32)
        (features,) = self.session.run(None, {"pixels": array})
        return torch.from_numpy(features)


def use_onnx(model: MMIBModel, run: RunFolder, threads: int | None = None) -> OnnxImageEncoder | None:
    """Puts the exported text encoder in place of the PyTorch one; returns the exported CNN (pixel runs) or
    None. ``threads``: each session's intra-op threads (default: half of torch's, see :func:`_session`)."""
    reads_pixels = model.config.reads_pixels
    needed = [run.onnx_text_encoder, *([run.onnx_image_encoder] if reads_pixels else [])]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise OnnxUnavailable(
            f"{run}: no {' / '.join(missing)} in {run.onnx_folder}; run `mmib export {run} --format onnx` first"
        )
    text = model.text_encoder
    text.model = OnnxHiddenStates(run.onnx_text_encoder, text.model.config, threads)
    return OnnxImageEncoder.load(run.onnx_image_encoder, model.config, threads) if reads_pixels else None
