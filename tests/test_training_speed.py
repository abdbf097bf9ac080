"""The training speed-ups change no result beyond float noise: length-bucketed batches still see every post
once per epoch, evaluation in length order returns file order, the fused optimiser takes AdamW's step, and
scoring test after every epoch never changes what dev selects."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from mmib.data import load_dataset
from mmib.encoders.image import ImageFeatureCache, build_image_encoder
from mmib.encoders.text import WordTokenizer
from mmib.model import MMIBConfig
from mmib.model.mmib import build_model
from mmib.model.run_folder import RunFolder
from mmib.training import TrainConfig, Trainer
from mmib.training.batching import Collator, PreparedSplit, epoch_batches, prepare_split
from mmib.training.evaluation import predict_split
from mmib.training.trainer import make_optimizer
from tests.conftest import image_side_of


def _split(posts: int, pairs_per_post: int = 1) -> PreparedSplit:
    post_records = [list(range(p * pairs_per_post, (p + 1) * pairs_per_post)) for p in range(posts)]
    post_of_record = [p for p, records in enumerate(post_records) for _ in records]
    return PreparedSplit(
        "train", [None] * len(post_of_record), post_of_record, post_records, torch.zeros(0), torch.zeros(0)
    )


def test_bucketed_epochs_see_every_post_once_and_pad_to_their_own_length():
    split = _split(2000)
    lengths = [int(x) for x in torch.randint(3, 80, (2000,), generator=torch.Generator().manual_seed(0))]
    plain = epoch_batches(split, 16, seed=3)
    bucketed = epoch_batches(split, 16, seed=3, lengths=lengths)
    assert sorted(p for b in bucketed for p in b) == list(range(2000)) and len(bucketed) == len(plain)
    assert bucketed == epoch_batches(split, 16, seed=3, lengths=lengths)  # a resumed run sees the same
    assert bucketed != epoch_batches(split, 16, seed=4, lengths=lengths)

    def padding(batches):  # padded positions per post
        return sum(max(lengths[p] for p in b) * len(b) - sum(lengths[p] for p in b) for b in batches) / 2000

    assert padding(bucketed) < padding(plain) / 5
    # batch order stays shuffled: the longest posts are not all at the end of the epoch
    longest = [statistics.mean(lengths[p] for p in b) for b in bucketed]
    assert longest != sorted(longest)
    evaluation = epoch_batches(split, 64, seed=None, lengths=lengths)
    firsts = [lengths[b[0]] for b in evaluation]
    assert firsts == sorted(firsts) and sorted(p for b in evaluation for p in b) == list(range(2000))


@pytest.fixture(scope="module")
def ner_model_and_split(tiny_encoder, synth_ner, tmp_path_factory):
    dataset = load_dataset(synth_ner)
    cache = ImageFeatureCache(build_image_encoder("random-cnn"), tmp_path_factory.mktemp("features"))
    split = prepare_split(dataset, "dev", image_side_of(cache, 32), progress=False)
    config = MMIBConfig(
        task="ner",
        labels=list(dataset.label_vocab().labels),
        text_encoder=tiny_encoder,
        image_encoder="random-cnn",
        image_feature_dim=32,
        num_heads=4,
    )
    torch.manual_seed(0)
    model, tokenizer = build_model(config)
    return model.eval(), Collator.for_model(WordTokenizer.for_model(tokenizer, config), config), split


def test_length_ordered_evaluation_returns_file_order(ner_model_and_split):
    model, collator, split = ner_model_and_split
    lengths = collator.lengths(split)
    assert len(set(lengths)) > 1
    predicted = predict_split(model, collator, split, 8)
    with torch.no_grad():  # one post at a time, in file order: no padding, no reordering
        one_by_one = [model.predict(collator(split, [post]))[0] for post in range(split.num_posts)]
    labels = model.config.labels
    assert predicted == [[labels[i] for i in tags] for tags in one_by_one]


def test_fused_optimiser_takes_adamws_step(ner_model_and_split):
    model, collator, split = ner_model_and_split
    settings = TrainConfig(learning_rate=1e-3, head_learning_rate=1e-2)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    after = {}
    for device_type in ("cpu", "meta"):  # "meta": no fused kernel asked for, PyTorch's default update
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(start[name])
        optimizer = make_optimizer(model, settings, device_type)
        assert all(
            group["fused"] is (True if device_type == "cpu" else None) for group in optimizer.param_groups
        )
        model.train()
        torch.manual_seed(0)
        model(collator(split, [0, 1, 2])).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        after[device_type] = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.eval()
    for name in start:
        assert torch.allclose(after["cpu"][name], after["meta"][name], atol=1e-6), name
    assert not torch.equal(after["cpu"]["head.crf.transitions"], start["head.crf.transitions"])


@pytest.mark.slow
def test_scoring_test_each_epoch_never_changes_selection(tiny_encoder, synth_ner, tmp_path):
    runs = {}
    for watched in (False, True):
        settings = TrainConfig.create(
            data=str(synth_ner),
            output_dir=str(tmp_path / f"run-{watched}"),
            text_encoder=tiny_encoder,
            image_encoder="random-cnn",
            feature_cache=str(tmp_path / "cache"),
            epochs=2,
            batch_size=16,
            max_train_samples=48,
            patience=0,
            learning_rate=1e-3,
            head_learning_rate=3e-3,
            score_test_each_epoch=watched,
        )
        summary = Trainer(settings, progress=False).fit()
        lines = [json.loads(x) for x in RunFolder(settings.output_dir).metrics.read_text().splitlines()]
        runs[watched] = (summary["best_epoch"], [x["dev"] for x in lines], lines)
    assert runs[True][:2] == runs[False][:2]
    assert all("test_each_epoch" in x for x in runs[True][2])
    assert not any("test_each_epoch" in x for x in runs[False][2])


def test_runs_recorded_before_bucketing_read_back_unbucketed(tmp_path):
    run = RunFolder(tmp_path)
    recorded = TrainConfig().to_dict()
    del recorded["bucket_by_length"]
    del recorded["model"]["caption_extends_window"]
    run.write_json(run.train_config, recorded)
    read = TrainConfig.from_dict(run.read_train_config())
    assert read.bucket_by_length is False and read.model.caption_extends_window is False
    assert TrainConfig().bucket_by_length is True and TrainConfig().model.caption_extends_window is True
