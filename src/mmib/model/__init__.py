"""The MMIB model, one module per component of Section III of the paper.

| equations | module |
|---|---|
| (4)-(5) APEnc | ``apenc.py`` |
| (6)-(11) variational encoding | ``variational.py`` |
| (12)-(14), (20)-(23) refinement regulariser L_rr | ``refinement.py`` |
| (15), (24)-(26) alignment regulariser L_ar | ``alignment.py`` |
| (16)-(17) coupled fusion | ``fusion.py`` |
| (18), (27) CRF; (19), (28) relation head | ``heads.py`` |
| (29) total loss, assembly | ``mmib.py`` |
"""

from mmib.model.config import MMIBConfig

__all__ = ["Batch", "MMIBConfig", "MMIBModel", "Output"]


def __getattr__(name: str):
    # Lazy, so that reading a config (the CLI builds `mmib train`'s options from MMIBConfig) loads no torch.
    if name in ("Batch", "MMIBModel", "Output"):
        from mmib.model import mmib

        return getattr(mmib, name)
    raise AttributeError(f"module 'mmib.model' has no attribute {name!r}")
