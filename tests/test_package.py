"""mmib package: a run's model as a wheel; installed into a fresh virtual environment, loaded by name."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest
from typer.testing import CliRunner

from mmib.cli import app
from mmib.model.package import locate_model, package_run

TEXT = "Kobe Bryant and Shaq at Staples Center in Los Angeles"
PREDICT = f"""
import json
from mmib.predict import Extractor
from mmib.model.package import installed_models
extractor = Extractor.load("tiny-ner", detector=None)
entities = [(e.text, e.type, e.start, e.end, round(e.confidence, 6)) for e in extractor.analyze({TEXT!r}).entities]
print(json.dumps({{"installed": sorted(installed_models()), "entities": entities}}))
"""


def test_a_packaged_model_installs_into_a_fresh_venv_and_loads_by_name(tiny_ner_run, tmp_path):
    from mmib.predict import Extractor

    result = CliRunner().invoke(
        app, ["package", str(tiny_ner_run), "--name", "tiny-ner", "--version", "0.1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    wheel = tmp_path / "mmib_model_tiny_ner-0.1-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "mmib_model_tiny_ner/model/best/model.safetensors" in names
    assert not any(name.endswith(("last.pt", "metrics.jsonl", "train_config.json")) for name in names)

    # a fresh venv that sees this environment's packages (torch, mmib) but none of its installed models
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    parent = sysconfig.get_paths()["purelib"]  # its own .pth files too (mmib is installed editable)
    (tmp_path / site / "parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    before = subprocess.run([str(python), "-c", PREDICT], capture_output=True, text=True)
    assert before.returncode != 0 and "no such run folder, nor an installed mmib model" in before.stderr
    install = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        "--target",
        site,
        str(wheel),
    ]
    subprocess.run(install, check=True, capture_output=True)
    after = subprocess.run([str(python), "-c", PREDICT], capture_output=True, text=True)
    assert after.returncode == 0, after.stderr[-2000:]
    loaded = json.loads(after.stdout.strip().splitlines()[-1])
    assert loaded["installed"] == ["tiny-ner"]
    folder = Extractor.load(tiny_ner_run, detector=None).analyze(TEXT).entities
    assert loaded["entities"] == [[e.text, e.type, e.start, e.end, round(e.confidence, 6)] for e in folder]


def test_bad_names_and_unknown_models_are_one_line(tiny_ner_run, tmp_path):
    with pytest.raises(ValueError, match="--name 'Tiny NER'"):
        package_run(tiny_ner_run, "Tiny NER", "1.0", tmp_path)
    with pytest.raises(ValueError, match="--version 'v1'"):
        package_run(tiny_ner_run, "tiny", "v1", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such run folder, nor an installed mmib model"):
        locate_model("no-such-model")
    assert locate_model(tiny_ner_run) == tiny_ner_run  # a folder stays a folder
