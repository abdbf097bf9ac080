"""mmib: multimodal named entity recognition and relation extraction with MMIB (Cui et al., TASLP 2024)."""

__version__ = "0.1.0"

__all__ = ["Extractor", "Span"]


def __getattr__(name: str):
    # Lazy, so that `import mmib` (and the CLI's start-up) does not load torch and transformers.
    if name == "Extractor":
        from mmib.predict.extractor import Extractor

        return Extractor
    if name == "Span":
        from mmib.spans import Span

        return Span
    raise AttributeError(f"module 'mmib' has no attribute {name!r}")
