"""Reading benchmark files and images: the first stage of the data flow.

`records` holds the typed records, `readers` parses the on-disk formats, `images` finds and decodes
images and object crops, `discover` locates split files inside a dataset folder, `stats` summarises a
dataset, and `synth` writes the synthetic multimodal benchmark in the same formats.
"""

from mmib.data.discover import Dataset, load_dataset
from mmib.data.errors import DataFormatError, SkippedRecord
from mmib.data.records import LabelVocab, NerPost, ReInstance
from mmib.spans import Span

__all__ = [
    "DataFormatError",
    "Dataset",
    "LabelVocab",
    "NerPost",
    "ReInstance",
    "SkippedRecord",
    "Span",
    "load_dataset",
]
