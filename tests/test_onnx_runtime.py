"""`mmib export --format onnx` and `--runtime onnx`: the exported encoders predict what PyTorch predicts."""

from __future__ import annotations

import shutil

import pytest

from mmib.cli import main
from mmib.data import load_dataset
from mmib.model.run_folder import RunFolder
from mmib.predict import Extractor
from mmib.predict.onnx_runtime import OnnxUnavailable

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported_run(tiny_ner_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("onnx") / "run"
    shutil.copytree(tiny_ner_run, run)
    return run


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["mmib", *args])
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runtime_onnx_before_export_is_a_one_line_error(exported_run, tmp_path, monkeypatch, capsys):
    with pytest.raises(OnnxUnavailable, match="mmib export"):
        Extractor.load(exported_run, detector=None, runtime="onnx")
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"id": "1", "text": "hello there"}\n')
    code, _, err = _cli(
        monkeypatch, capsys, "predict", str(exported_run), "--input", str(posts), "--output",
        str(tmp_path / "out.jsonl"), "--runtime", "onnx",
    )  # fmt: skip
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "mmib export" in err


def test_export_writes_both_networks_and_reports_their_difference(exported_run, monkeypatch, capsys):
    code, out, _ = _cli(monkeypatch, capsys, "export", str(exported_run), "--format", "onnx")
    run = RunFolder(exported_run)
    assert code == 0 and run.onnx_text_encoder.is_file() and run.onnx_image_encoder.is_file()
    differences = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "difference" in line]
    assert len(differences) == 2 and max(differences) < 1e-4


def test_onnx_runtime_predicts_the_same_entities_as_torch(exported_run, synth_ner, monkeypatch, capsys):
    if not RunFolder(exported_run).onnx_text_encoder.is_file():
        _cli(monkeypatch, capsys, "export", str(exported_run))
    posts = load_dataset(synth_ner).splits["test"][:24]
    folder = synth_ner / "synth_images"
    inputs = [(" ".join(p.tokens), folder / f"{p.image_id}.jpg" if p.image_id else None) for p in posts]
    torch_side = Extractor.load(exported_run, detector=None).analyze_many(inputs)
    onnx_side = Extractor.load(exported_run, detector=None, runtime="onnx").analyze_many(inputs)
    assert sum(len(r.entities) for r in torch_side) > 0  # the comparison covers real entities
    for expected, found in zip(torch_side, onnx_side, strict=True):
        assert [(e.text, e.type, e.start, e.end) for e in found.entities] == [
            (e.text, e.type, e.start, e.end) for e in expected.entities
        ]
        for a, b in zip(found.entities, expected.entities, strict=True):
            assert abs(a.confidence - b.confidence) <= 1e-4


def test_the_onnx_runtime_builds_no_pytorch_cnn_and_reads_older_exports(
    exported_run, sample_image, monkeypatch, capsys, tmp_path
):
    """The exported CNN carries its name, width and normalisation; a file exported before they were written
    falls back to the run's PyTorch CNN for them, with the same features."""
    import onnx

    if not RunFolder(exported_run).onnx_image_encoder.is_file():
        _cli(monkeypatch, capsys, "export", str(exported_run))
    torch_side = Extractor.load(exported_run, detector=None)

    def no_cnn(name):
        raise AssertionError(f"built the PyTorch CNN {name}")

    with monkeypatch.context() as patched:
        patched.setattr("mmib.encoders.image.build_image_encoder", no_cnn)
        patched.setattr("mmib.predict.extractor.build_image_encoder", no_cnn)
        onnx_side = Extractor.load(exported_run, detector=None, runtime="onnx")
    expected, found = torch_side.image_side.encoder, onnx_side.image_side.encoder
    assert (found.name, found.feature_dim) == (expected.name, expected.feature_dim)
    assert found.mean.equal(expected.mean) and found.std.equal(expected.std)

    older = tmp_path / "older"
    shutil.copytree(exported_run, older)
    exported = onnx.load(str(RunFolder(older).onnx_image_encoder))
    del exported.metadata_props[:]
    onnx.save(exported, str(RunFolder(older).onnx_image_encoder))
    text = "Kobe Bryant at Staples Center"
    assert (
        Extractor.load(older, detector=None, runtime="onnx").analyze(text, sample_image).as_dict()
        == onnx_side.analyze(text, sample_image).as_dict()
    )
