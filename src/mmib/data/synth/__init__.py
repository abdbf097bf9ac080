"""Synthetic multimodal benchmark in the on-disk formats of Twitter-2015/2017 and MNRE."""

from mmib.data.synth.generator import SynthConfig, generate

__all__ = ["SynthConfig", "generate"]
