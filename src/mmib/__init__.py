"""mmib: multimodal named entity recognition and relation extraction with MMIB (Cui et al., TASLP 2024)."""

__version__ = "0.1.0"
