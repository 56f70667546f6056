"""The learnable rail: a TTT-E2E language model whose prime MLPs learn at run time."""

from tworail.rails.ttt.config import InnerLoopConfig, ModelConfig, preset
from tworail.rails.ttt.rail import LearnableRail
from tworail.rails.ttt.train import train_from_config

__all__ = ["InnerLoopConfig", "LearnableRail", "ModelConfig", "preset", "train_from_config"]
