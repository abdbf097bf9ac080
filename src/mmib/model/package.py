"""A trained model as an installable Python package (as ``spacy package`` makes one): ``mmib package RUN
--name NAME --version V`` writes ``mmib_model_NAME-V-py3-none-any.whl``; after ``pip install`` of it,
``Extractor.load("NAME")`` (or ``mmib predict NAME ...``) finds it by name, offline.

The wheel holds the run's model artifact only (``MODEL_PARTS``: the model config, the text encoder's config
and tokenizer, the best-dev weights, and the ONNX files where exported), never its training state
(``last.pt``, metrics, scores, recorded paths). It announces itself under the entry-point group
``mmib.models``; its module's ``FOLDER`` is where the files are installed. The pretrained encoders a model
names by hub name or offline package (the CNN, a caption encoder) are not copied: they are found as at
training time.

Why the wheel is written here rather than by a build backend: a build backend needs setuptools 70.1 or
newer (or the ``wheel`` package) in the environment, which an offline virtual environment may lack, and a
wheel is a plain zip archive (PEP 427) of a few listed files.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from importlib import metadata
from pathlib import Path

from mmib.errors import SettingError
from mmib.model.run_folder import RunFolder

ENTRY_POINTS = "mmib.models"
MODEL_PARTS = (RunFolder.MODEL_CONFIG, RunFolder.TEXT_ENCODER, RunFolder.BEST_WEIGHTS, RunFolder.ONNX_FOLDER)
NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def module_name(name: str) -> str:
    return "mmib_model_" + name.replace("-", "_")


def package_run(run_dir: Path | str, name: str, version: str, out_dir: Path | str) -> Path:
    """Write the wheel of ``run_dir``'s model into ``out_dir``; returns its path."""
    if not NAME.match(name):
        raise SettingError(
            f"--name {name!r}: lower-case letters, digits, '-' and '_' only (e.g. twitter17-ner)"
        )
    if not VERSION.match(version):
        raise SettingError(f"--version {version!r}: numbers separated by dots (e.g. 1.0)")
    run = RunFolder(run_dir).require()
    if not run.best_weights.is_file():
        raise FileNotFoundError(f"{run.best_weights}: the run has no best-dev weights to package")
    module = module_name(name)
    files: dict[str, bytes] = {
        f"{module}/__init__.py": (
            f'"""The mmib model {name!r} {version}: load it with mmib.Extractor.load({name!r})."""\n\n'
            "from pathlib import Path\n\nFOLDER = Path(__file__).parent / 'model'\n"
        ).encode()
    }
    for part in MODEL_PARTS:  # the ONNX folder only where the run was exported
        source = run.path / part
        for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
            if path.is_file():
                files[f"{module}/model/{path.relative_to(run.path).as_posix()}"] = path.read_bytes()
    info = f"{module}-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {module}\nVersion: {version}\n"
        f"Summary: mmib model {name} (MMIB, Cui et al. TASLP 2024), packaged from a run folder\n"
        "Requires-Dist: mmib\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mmib package\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = f"[{ENTRY_POINTS}]\n{name} = {module}\n".encode()
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = Path(out_dir) / f"{module}-{version}-py3-none-any.whl"
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def installed_models() -> dict[str, metadata.EntryPoint]:
    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINTS)}


def locate_model(run: Path | str) -> Path:
    """A run folder as given, or the folder of the installed model of that name."""
    path = Path(run)
    if path.exists() or not NAME.match(str(run)):
        return path
    installed = installed_models()
    if str(run) not in installed:
        names = ", ".join(sorted(installed)) or "none"
        raise FileNotFoundError(
            f"{run}: no such run folder, nor an installed mmib model of that name (installed: {names})"
        )
    return Path(installed[str(run)].load().FOLDER)
