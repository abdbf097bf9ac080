"""MMIB components: KL, padding, CRF decoding, negatives, optimiser coverage, overfitting, long posts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from mmib.data import load_dataset
from mmib.encoders.image import ImageFeatureCache, build_image_encoder
from mmib.encoders.text import WordTokenizer
from mmib.model import MMIBConfig
from mmib.model.alignment import AlignmentDiscriminator, negative_partners
from mmib.model.heads import CrfHead
from mmib.model.mmib import build_model
from mmib.model.refinement import gaussian_kl
from mmib.training.batching import Collator, epoch_batches, prepare_split
from mmib.training.config import TrainConfig
from mmib.training.trainer import make_optimizer
from tests.conftest import image_side_of


def _model(tiny_encoder, task="ner", labels=None, **overrides):
    config = MMIBConfig(
        task=task,
        labels=labels or ["O", "B-PER", "I-PER"],
        text_encoder=tiny_encoder,
        image_encoder="random-cnn",
        image_feature_dim=32,
        num_heads=4,
        **overrides,
    )
    torch.manual_seed(0)
    return build_model(config)


@pytest.fixture(scope="module")
def prepared(synth_ner, synth_re, tmp_path_factory):
    cache = ImageFeatureCache(build_image_encoder("random-cnn"), tmp_path_factory.mktemp("features"))
    out = {}
    for name, folder in (("ner", synth_ner), ("re", synth_re)):
        dataset = load_dataset(folder)
        out[name] = (dataset, prepare_split(dataset, "train", image_side_of(cache, 32), progress=False))
    return out


def test_kl_equals_torch_distributions():
    torch.manual_seed(1)
    mu, logvar = torch.randn(4, 7, 16), torch.randn(4, 7, 16)
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    assert torch.allclose(gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))


@pytest.mark.parametrize("task", ["ner", "re"])
def test_padding_never_leaks(tiny_encoder, prepared, task):
    dataset, split = prepared[task]
    model, tokenizer = _model(
        tiny_encoder, "ner" if task == "ner" else "mre", list(dataset.label_vocab().labels)
    )
    model.eval()
    collator = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)
    lengths = [len(split.records[split.post_records[p][0]].tokens) for p in range(split.num_posts)]
    short, long = lengths.index(min(lengths)), lengths.index(max(lengths))
    assert lengths[long] > lengths[short]
    with torch.no_grad():
        alone = model.encode(collator(split, [short])).fused[0]
        together = model.encode(collator(split, [long, short])).fused[1]
    n = alone.size(0)
    assert torch.allclose(alone, together[:n], atol=1e-5)
    if task == "re":
        with torch.no_grad():
            assert (
                model.predict(collator(split, [short])) == model.predict(collator(split, [long, short]))[-1:]
            )


def test_posts_without_any_image_give_finite_loss(tiny_encoder, prepared):
    dataset, split = prepared["ner"]
    model, tokenizer = _model(tiny_encoder, labels=list(dataset.label_vocab().labels))
    batch = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)(split, [0, 1, 2])
    batch.image_mask[:] = False
    batch.image_features[:] = 0
    output = model(batch)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _brute_force_best(head: CrfHead, emissions: torch.Tensor) -> list[int]:
    crf = head.crf
    best, best_score = None, -float("inf")
    for tags in itertools.product(range(crf.num_tags), repeat=emissions.size(0)):
        score = crf.start_transitions[tags[0]] + crf.end_transitions[tags[-1]]
        score = score + sum(emissions[i, t] for i, t in enumerate(tags))
        score = score + sum(crf.transitions[a, b] for a, b in itertools.pairwise(tags))
        if score > best_score:
            best, best_score = list(tags), score
    return best


def test_crf_viterbi_equals_brute_force():
    torch.manual_seed(3)
    head = CrfHead(hidden_size=4, num_tags=3)
    with torch.no_grad():
        for parameter in head.crf.parameters():
            parameter.normal_()
    for length in (1, 2, 3, 4, 5):
        for _ in range(10):
            emissions = torch.randn(1, length, 3)
            decoded = head.crf.decode(emissions, mask=torch.ones(1, length, dtype=torch.bool))[0]
            assert decoded == _brute_force_best(head, emissions[0])


def _path_score(head: CrfHead, emissions: torch.Tensor, tags: tuple[int, ...]) -> torch.Tensor:
    crf = head.crf
    score = crf.start_transitions[tags[0]] + crf.end_transitions[tags[-1]]
    score = score + sum(emissions[i, t] for i, t in enumerate(tags))
    return score + sum(crf.transitions[a, b] for a, b in itertools.pairwise(tags))


def test_crf_marginals_equal_brute_force_in_a_padded_batch():
    torch.manual_seed(5)
    head = CrfHead(hidden_size=4, num_tags=3, dropout=0.0).eval()
    with torch.no_grad():
        for parameter in head.crf.parameters():
            parameter.normal_()
    lengths = [4, 1, 3]
    fused = torch.randn(3, 6, 4)  # C with [CLS] + 4 words + [SEP]
    word_mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    with torch.no_grad():
        marginals = head.marginals(fused, word_mask)
        emissions = head.word_emissions(fused, word_mask)
    for row, length in enumerate(lengths):
        paths = list(itertools.product(range(3), repeat=length))
        weights = torch.stack([_path_score(head, emissions[row], tags) for tags in paths]).softmax(0)
        expected = torch.zeros(length, 3)
        for weight, tags in zip(weights, paths, strict=True):
            for i, t in enumerate(tags):
                expected[i, t] += weight
        assert torch.allclose(marginals[row, :length], expected, atol=1e-5)
        assert torch.all(marginals[row, length:] == 0)


def test_negatives_are_mismatched_pairs():
    post_ids = torch.tensor([5, 5, 7, 9, 9, 9, 2])
    partners = negative_partners(post_ids)
    assert (partners >= 0).all()
    assert (post_ids[partners] != post_ids).all()
    assert (negative_partners(torch.tensor([4, 4, 4])) == -1).all()  # no other post: no negative


def _train_discriminator(score: str, pooling: str, steps: int = 400) -> tuple[float, float]:
    """(first, last) L_ar of a discriminator trained on images that depend on their own text."""
    torch.manual_seed(0)
    discriminator = AlignmentDiscriminator(8, score, pooling)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-2)
    text = torch.randn(16, 5, 8)
    image = text[:, :3] * 2 + 0.1  # images that depend on their own text
    masks = (torch.ones(16, 5, dtype=torch.bool), torch.ones(16, 3, dtype=torch.bool))
    ids = torch.arange(16)
    first = discriminator(text, masks[0], image, masks[1], ids).item()
    for _ in range(steps):
        loss = discriminator(text, masks[0], image, masks[1], ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, loss.item()


@pytest.mark.parametrize(("score", "pooling"), [("mlp", "mean"), ("bilinear", "mean"), ("mlp", "first")])
def test_discriminator_learns_to_separate_matched_from_mismatched(score, pooling):
    first, last = _train_discriminator(score, pooling)
    assert first > 0.6 and last < 0.05


def test_the_additive_discriminator_cannot_get_below_chance():
    """The released code's default: logits additive in text and image. Matched and rolled pairs use the
    same texts and the same images, so by Jensen's inequality the mean BCE never falls below ln 2."""
    first, last = _train_discriminator("additive", "first")
    assert first > math.log(2) and last >= math.log(2) - 1e-6
    assert _train_discriminator("bilinear", "first")[1] < 0.05  # the same data, first pooling: learnable


def test_weights_saved_before_the_scores_still_load():
    discriminator = AlignmentDiscriminator(8)
    saved = {key.replace("scorer.", ""): value for key, value in discriminator.state_dict().items()}
    assert "mlp.0.weight" in saved
    loaded = AlignmentDiscriminator(8)
    loaded.load_state_dict(saved)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in discriminator.state_dict().items())


def test_alignment_weight_scales_l_ar_in_the_total_loss(tiny_encoder, prepared):
    dataset, split = prepared["ner"]
    model, tokenizer = _model(tiny_encoder, labels=list(dataset.label_vocab().labels))
    model.eval()  # z = mu, no dropout: two passes see the same numbers
    batch = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)(split, list(range(8)))
    with torch.no_grad():
        once = model(batch)
        model.config.alignment_weight = 3.0
        thrice = model(batch)
    assert thrice.parts["alignment"] == pytest.approx(once.parts["alignment"])
    assert float(thrice.loss - once.loss) == pytest.approx(2.0 * once.parts["alignment"], rel=1e-4)


@pytest.mark.parametrize(
    ("key", "value"),
    [("discriminator", "concat"), ("discriminator_pooling", "max"), ("alignment_weight", -1)],
)
def test_impossible_discriminator_settings_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        MMIBConfig(task="ner", **{key: value})


@pytest.mark.parametrize(
    ("task", "overrides"),
    [
        ("ner", {}),
        ("re", {}),
        ("ner", {"text_only": True}),
        ("re", {"use_refinement": False, "use_alignment": False}),
        ("ner", {"discriminator": "bilinear", "discriminator_pooling": "first", "logvar_head": "apenc"}),
        ("re", {"discriminator": "additive"}),
    ],
)
def test_every_parameter_is_optimised_and_moves(tiny_encoder, prepared, task, overrides):
    dataset, split = prepared[task]
    model, tokenizer = _model(
        tiny_encoder, "ner" if task == "ner" else "mre", list(dataset.label_vocab().labels), **overrides
    )
    optimizer = make_optimizer(model, TrainConfig())
    in_optimizer = [p for group in optimizer.param_groups for p in group["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(in_optimizer) == len({id(p) for p in in_optimizer}) == len(trainable)
    assert {id(p) for p in in_optimizer} == {id(p) for p in trainable}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    batch = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)(split, list(range(8)))
    for _ in range(2):  # the linear log-variance head starts with zero weights: APEnc_sigma moves from step 2
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, before[name])]
    assert unchanged == []
    head_name = "head.emissions.weight" if task == "ner" else "head.classifier.weight"
    assert head_name in before


@pytest.mark.slow
def test_overfits_eight_samples(tiny_encoder, prepared):
    dataset, split = prepared["ner"]
    model, tokenizer = _model(tiny_encoder, labels=list(dataset.label_vocab().labels), dropout=0.0)
    collator = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)
    batch = collator(split, list(range(8)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(300):
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()  # z = mu: the deterministic model that is evaluated
    with torch.no_grad():
        assert model(batch).parts["task"] < 0.2  # -log p(Y|X) per post (~10 words): under 0.02 a word
    gold = [[model.config.labels.index(t) for t in split.records[p].tags] for p in range(8)]
    assert model.predict(batch) == gold


def test_long_posts_keep_every_word(tiny_encoder):
    model, tokenizer = _model(tiny_encoder)
    words = [f"word{i}" for i in range(60)]  # about 6 sub-words each: far beyond a 32-sub-word window
    word_tokenizer = WordTokenizer(tokenizer, max_length=32)
    text = word_tokenizer([words, words[:3]])
    assert text.input_ids.size(0) > 2  # the long post was cut into several chunks
    assert text.input_ids.size(1) <= 32
    assert text.mask.sum(1).tolist() == [62, 5]  # every word plus the two special tokens
    states = model.text_encoder(text)
    assert states.shape == (2, 62, 32) and torch.isfinite(states).all()


def test_mre_batches_encode_each_post_once(prepared):
    _, split = prepared["re"]
    assert split.num_posts <= len(split.records)
    for posts in epoch_batches(split, 8, seed=0):
        records = [r for p in posts for r in split.post_records[p]]
        assert len(records) == len(set(records))


def test_linear_logvar_head_starts_at_the_small_variance():
    from mmib.model.variational import VariationalEncoder

    torch.manual_seed(0)
    inputs, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    literal = VariationalEncoder(16, 4, dropout=0.0)(inputs, mask)
    linear = VariationalEncoder(16, 4, dropout=0.0, logvar_head="linear", initial_logvar=-4.0)(inputs, mask)
    assert torch.allclose(linear.logvar, torch.full_like(linear.logvar, -4.0))
    assert literal.logvar.std() > 0.5  # the literal reading: unit-scale log-variances out of the LayerNorm


@pytest.mark.parametrize("logvar_head", ["apenc", "linear"])
def test_prediction_encode_skips_the_losses_and_gives_the_same_fused_states(
    tiny_encoder, prepared, logvar_head
):
    dataset, split = prepared["ner"]
    model, tokenizer = _model(
        tiny_encoder, "ner", list(dataset.label_vocab().labels), logvar_head=logvar_head
    )
    model.eval()
    collator = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)
    batch = collator(split, list(range(6)))
    with torch.no_grad():
        full, lean = model.encode(batch), model.encode(batch, losses=False)
    assert set(full.parts) == {"refinement", "alignment"} and lean.parts == {}
    assert full.text_latent.logvar is not None and lean.text_latent.logvar is None
    assert torch.equal(full.fused, lean.fused)


def test_image_side_padding_beyond_a_batch_s_widest_post_changes_nothing(tiny_encoder, prepared):
    """Batches cut the image side to the widest position their posts use (a split pads its caption states
    to its longest caption); the padding they drop never reaches a result."""
    import dataclasses

    dataset, split = prepared["ner"]
    extra = torch.zeros(split.image_features.size(0), 6, split.image_features.size(2))
    padded = dataclasses.replace(
        split,
        image_features=torch.cat([split.image_features, extra], dim=1),
        image_mask=torch.cat([split.image_mask, torch.zeros(extra.shape[:2], dtype=torch.bool)], dim=1),
    )
    model, tokenizer = _model(tiny_encoder, labels=list(dataset.label_vocab().labels))
    model.eval()
    collator = Collator.for_model(WordTokenizer(tokenizer, 128), model.config)
    posts = list(range(8))
    cut = collator(padded, posts)
    assert cut.image_features.size(1) == split.image_features.size(1) < padded.image_features.size(1)
    whole = dataclasses.replace(
        cut, image_features=padded.image_features[posts], image_mask=padded.image_mask[posts]
    )
    with torch.no_grad():
        first, second = model(cut), model(whole)
    assert torch.allclose(first.fused, second.fused, atol=1e-5)
    assert first.parts == pytest.approx(second.parts, rel=1e-5)
    assert model.predict(cut) == model.predict(whole)
